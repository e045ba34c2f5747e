/* SPDX-License-Identifier: Apache-2.0 */
/* Reachability of a peer daemon: logs when it stops answering and when it answers again, counting
 * in between. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/outage.h"

struct outage {
	pthread_mutex_t lock;
	char *peer, *where;
	bool down;
	uint64_t since_ns;   /* CLOCK_MONOTONIC when the outage began */
	uint64_t n_requests; /* exchanges unanswered during this outage */
	uint64_t n_failed;   /* operations callers saw fail during it */
	uint64_t n_outages;
	size_t (*pending)(void *arg);
	void *pending_arg;
	const char *pending_what;
};

int outage_new(const char *peer, const char *where, struct outage **ret)
{
	struct outage *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->peer = strdup(peer ? peer : "peer");
	o->where = strdup(where ? where : "");
	if (!o->peer || !o->where) {
		free(o->peer);
		free(o->where);
		free(o);
		return -ENOMEM;
	}
	pthread_mutex_init(&o->lock, NULL);
	*ret = o;
	return 0;
}

struct outage *outage_free(struct outage *o)
{
	if (!o)
		return NULL;
	pthread_mutex_destroy(&o->lock);
	free(o->peer);
	free(o->where);
	free(o);
	return NULL;
}

void outage_set_pending(struct outage *o, size_t (*fn)(void *arg), void *arg, const char *what)
{
	pthread_mutex_lock(&o->lock);
	o->pending = fn;
	o->pending_arg = arg;
	o->pending_what = what;
	pthread_mutex_unlock(&o->lock);
}

void outage_unreachable(struct outage *o, int reason, const char *detail, const char *request,
			uint64_t waited_ms)
{
	bool began;

	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	began = !o->down;
	if (began) {
		o->down = true;
		/* a request that timed out met the outage when it was sent */
		o->since_ns = monotonic_ns() - waited_ms * 1000000u;
		o->n_requests = 0;
		o->n_failed = 0;
		o->n_outages++;
	}
	o->n_requests++;
	pthread_mutex_unlock(&o->lock);
	if (!began) {
		log_debug("%s: %s%s%s", o->peer, request ? request : "", request ? ": " : "",
			  detail ? detail : "no answer");
		return;
	}
	/* the reason first (what an operator acts on), the request that met it second */
	log_warning(
	    "%s at '%s' is unreachable: %s%s%s%s%s%s; further failures are counted until it "
	    "answers",
	    o->peer, o->where, reason ? strerrordesc_np(-reason) : (detail ? detail : "no answer"),
	    request ? " (" : "", request ? request : "", request && detail && reason ? ": " : "",
	    request && detail && reason ? detail : "", request ? ")" : "");
}

void outage_reachable(struct outage *o)
{
	uint64_t ns, n_requests, n_failed;
	size_t (*pending)(void *arg);
	void *arg;
	const char *what;
	size_t n_pending;
	char tail[128] = "";

	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	if (!o->down) {
		pthread_mutex_unlock(&o->lock);
		return;
	}
	o->down = false;
	ns = monotonic_ns() - o->since_ns;
	n_requests = o->n_requests;
	n_failed = o->n_failed;
	pending = o->pending;
	arg = o->pending_arg;
	what = o->pending_what;
	pthread_mutex_unlock(&o->lock);
	if (pending) {
		n_pending = pending(arg);
		snprintf(tail, sizeof(tail), "; %zu %s", n_pending, what ? what : "waiting");
	}
	log_info("%s at '%s' answers again after %" PRIu64 ".%" PRIu64 " s down: %" PRIu64
		 " request%s and %" PRIu64 " operation%s failed meanwhile%s",
		 o->peer, o->where, ns / 1000000000u, ns / 100000000u % 10, n_requests,
		 n_requests == 1 ? "" : "s", n_failed, n_failed == 1 ? "" : "s", tail);
}

bool outage_note_failed(struct outage *o)
{
	bool first;

	if (!o)
		return false;
	pthread_mutex_lock(&o->lock);
	first = o->down && o->n_failed == 0;
	if (o->down)
		o->n_failed++;
	pthread_mutex_unlock(&o->lock);
	return first;
}

bool outage_is_down(struct outage *o)
{
	bool down;

	if (!o)
		return false;
	pthread_mutex_lock(&o->lock);
	down = o->down;
	pthread_mutex_unlock(&o->lock);
	return down;
}

uint64_t outage_count(struct outage *o)
{
	uint64_t n;

	pthread_mutex_lock(&o->lock);
	n = o->n_outages;
	pthread_mutex_unlock(&o->lock);
	return n;
}
