/* SPDX-License-Identifier: Apache-2.0 */
/* Subscription notifications over HTTP (TS-0004 7.5.1, TS-0009 binding), sent off the request path.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/outage.h"
#include "resource.h"

#define QUEUE_MAX 10000
#define NOTIFY_TIMEOUT_MS 3000
#define TARGETS_MAX 64

/* A notification URL's reachability (lib/outage.c): a receiver that stops
 * answering is logged once, and once more when it answers again. So is one
 * that answers but refuses (an error status or RSC): the first refusal is
 * logged, the next ones counted until it accepts one. */
struct target {
	char *url;
	struct outage *o;
	bool refusing;
	uint64_t refused, refusing_since_ns;
	struct target *next;
};

struct item {
	char *url;
	char *body;
	struct item *next;
};

struct notifier {
	char *csi;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct item *head, *tail;
	size_t len;
	bool stop;
	struct target *targets; /* most recently used first; only run() touches them */
	size_t n_targets;
};

static size_t discard(char *ptr, size_t size, size_t n, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * n;
}

static size_t header_rsc(char *buf, size_t size, size_t n, void *userdata)
{
	long *rsc = userdata;
	size_t len = size * n;

	if (len > 11 && strncasecmp(buf, "X-M2M-RSC:", 10) == 0)
		*rsc = strtol(buf + 10, NULL, 10);
	return len;
}

/* POSTs one m2m:sgn as a Notify (TS-0009 6.2.1: POST without ty). -EHOSTUNREACH when
 * nothing answered, with *ret_detail (if given) the transport's reason. */
static int post(const char *csi, const char *url, const char *body, const char *originator,
		const char **ret_detail, long *ret_status, long *ret_rsc)
{
	_cleanup_curl_ CURL *c = curl_easy_init();
	_cleanup_curl_slist_ struct curl_slist *h = NULL;
	char hdr[512], rqi[64];
	long status = 0, rsc = 0;
	CURLcode cc;

	if (!c)
		return -ENOMEM;
	snprintf(rqi, sizeof(rqi), "X-M2M-RI: ntf%08x", arc4random());
	snprintf(hdr, sizeof(hdr), "X-M2M-Origin: %s", originator ? originator : csi);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, hdr);
	h = curl_slist_append(h, rqi);
	h = curl_slist_append(h, "X-M2M-RVI: 3");
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NOTIFY_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_rsc);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &rsc);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		log_debug("notification to \"%s\": %s", url, curl_easy_strerror(cc));
		if (ret_detail)
			*ret_detail = curl_easy_strerror(cc);
		return -EHOSTUNREACH;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (ret_status)
		*ret_status = status;
	if (ret_rsc)
		*ret_rsc = rsc;
	if (status < 200 || status >= 300 || (rsc && (rsc < 2000 || rsc >= 3000)))
		return -EPROTO;
	return 0;
}

/* A receiver answered: a refusal is logged when it begins and counted after,
 * an acceptance after refusals says how long and how many. */
static void target_answered(struct target *t, bool accepted, long status, long rsc)
{
	if (!accepted && !t->refusing) {
		t->refusing = true;
		t->refused = 1;
		t->refusing_since_ns = monotonic_ns();
		log_warning("notification target '%s' refuses notifications: HTTP %ld, RSC %ld; "
			    "further refusals are counted until it accepts one",
			    t->url, status, rsc);
	} else if (!accepted)
		t->refused++;
	else if (t->refusing) {
		uint64_t ns = monotonic_ns() - t->refusing_since_ns;

		t->refusing = false;
		log_info("notification target '%s' accepts notifications again after %" PRIu64
			 ".%" PRIu64 " s: %" PRIu64 " notification%s refused meanwhile",
			 t->url, ns / 1000000000u, ns / 100000000u % 10, t->refused,
			 t->refused == 1 ? "" : "s");
	}
}

static void target_free(struct target *t)
{
	outage_free(t->o);
	free(t->url);
	free(t);
}

/* The state of url, made on first use; the least recently used one goes
 * beyond TARGETS_MAX. NULL when out of memory (then failures log plainly). */
static struct target *target_get(struct notifier *n, const char *url)
{
	struct target **pp, *t;

	for (pp = &n->targets; (t = *pp); pp = &t->next)
		if (strcmp(t->url, url) == 0) {
			*pp = t->next;
			t->next = n->targets;
			n->targets = t;
			return t;
		}
	if (n->n_targets >= TARGETS_MAX) {
		for (pp = &n->targets; (*pp)->next; pp = &(*pp)->next)
			;
		target_free(*pp);
		*pp = NULL;
		n->n_targets--;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->url = strdup(url);
	if (!t->url || outage_new("notification target", url, &t->o) < 0) {
		free(t->url);
		free(t);
		return NULL;
	}
	t->next = n->targets;
	n->targets = t;
	n->n_targets++;
	return t;
}

static void *run(void *userdata)
{
	struct notifier *n = userdata;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->head && !n->stop)
			pthread_cond_wait(&n->cond, &n->lock);
		if (n->stop)
			break;
		struct item *it = n->head;
		n->head = it->next;
		if (!n->head)
			n->tail = NULL;
		n->len--;
		pthread_mutex_unlock(&n->lock);
		const char *detail = NULL;
		long status = 0, rsc = 0;
		int r = post(n->csi, it->url, it->body, NULL, &detail, &status, &rsc);
		struct target *t = target_get(n, it->url);

		/* one line per outage or refusal of a receiver, not one per notification */
		if (r == -EHOSTUNREACH && t) {
			outage_unreachable(t->o, 0, detail, "POST (notification)", 0);
			outage_note_failed(t->o); /* this notification is lost */
		} else if (t && (r == 0 || r == -EPROTO)) {
			outage_reachable(t->o);
			target_answered(t, r == 0, status, rsc);
		} else if (r < 0)
			log_warning_errno(r, "notification to \"%s\" failed", it->url);
		free(it->url);
		free(it->body);
		free(it);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int notifier_new(const char *csi, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->csi = strdup(csi);
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	if (!n->csi || pthread_create(&n->thread, NULL, run, n) != 0) {
		free(n->csi);
		free(n);
		return -ENOMEM;
	}
	*ret = n;
	return 0;
}

struct notifier *notifier_free(struct notifier *n)
{
	if (!n)
		return NULL;
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	while (n->targets) {
		struct target *t = n->targets;

		n->targets = t->next;
		target_free(t);
	}
	while (n->head) {
		struct item *it = n->head;

		n->head = it->next;
		free(it->url);
		free(it->body);
		free(it);
	}
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->cond);
	free(n->csi);
	free(n);
	return NULL;
}

void notifier_send(struct notifier *n, const char *url, const json_t *body)
{
	struct item *it;

	if (!n || !url)
		return;
	it = calloc(1, sizeof(*it));
	if (!it)
		return;
	it->url = strdup(url);
	it->body = json_dumps(body, JSON_COMPACT);
	pthread_mutex_lock(&n->lock);
	if (!it->url || !it->body || n->len >= QUEUE_MAX) {
		pthread_mutex_unlock(&n->lock);
		log_warning("notification queue full or out of memory: dropping one for \"%s\"",
			    url);
		free(it->url);
		free(it->body);
		free(it);
		return;
	}
	if (n->tail)
		n->tail->next = it;
	else
		n->head = it;
	n->tail = it;
	n->len++;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

int notifier_send_sync(struct notifier *n, const char *url, const json_t *body,
		       const char *originator)
{
	_cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);

	if (!text)
		return -ENOMEM;
	return post(n ? n->csi : "/", url, text, originator, NULL, NULL, NULL);
}
