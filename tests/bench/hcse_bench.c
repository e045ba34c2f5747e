/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed load: contentInstance creates (1 KiB, 1 MiB) and la retrievals per second at 1, 8 and 32
 * connections (libcurl multi). */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

static const char *base = "http://127.0.0.1:8080/cse-in";
static char origin[64];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static CURL *handle(const char *url, const char *body, int ty, struct curl_slist **hdrs)
{
	CURL *e = curl_easy_init();
	char h[128];

	*hdrs = NULL;
	snprintf(h, sizeof(h), "X-M2M-Origin: %s", origin);
	*hdrs = curl_slist_append(*hdrs, h);
	*hdrs = curl_slist_append(*hdrs, "X-M2M-RI: bench");
	*hdrs = curl_slist_append(*hdrs, "X-M2M-RVI: 3");
	/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
	*hdrs = curl_slist_append(*hdrs, "Expect:");
	if (ty) {
		snprintf(h, sizeof(h), "Content-Type: application/json;ty=%d", ty);
		*hdrs = curl_slist_append(*hdrs, h);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	/* no SIGPIPE handler swapped in and out around every transfer */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	return e;
}

/* One blocking request for the setup; returns the HTTP status. */
static long once(const char *url, const char *body, int ty)
{
	struct curl_slist *h;
	CURL *e = handle(url, body, ty, &h);
	long status = 0;

	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return status;
}

/* One client thread: its connections, each re-issuing its request. */
struct worker {
	pthread_t thread;
	const char *url, *body;
	int ty, conns;
	long want;
	double t0, secs;
	long done, bad;
};

static void *work(void *userdata)
{
	struct worker *w = userdata;
	CURLM *m = curl_multi_init();
	CURL **e = calloc((size_t)w->conns, sizeof(*e));
	struct curl_slist **h = calloc((size_t)w->conns, sizeof(*h));
	int running;

	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)w->conns);
	for (int i = 0; i < w->conns; i++) {
		e[i] = handle(w->url, w->body, w->ty, &h[i]);
		curl_multi_add_handle(m, e[i]);
	}
	while (now() - w->t0 < w->secs) {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result == CURLE_OK && status == w->want)
				w->done++;
			else
				w->bad++;
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_multi_add_handle(m, msg->easy_handle);
		}
		curl_multi_poll(m, NULL, 0, 50, NULL);
	}
	for (int i = 0; i < w->conns; i++) {
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
		curl_slist_free_all(h[i]);
	}
	free(e);
	free(h);
	curl_multi_cleanup(m);
	return NULL;
}

/* client threads: up to this many, sharing the connections out; several,
 * so that on a shared machine the client is not held to one thread's
 * CPU share (as wrk's threads) */
static int max_threads = 4;

/* Runs `conns` connections, each re-issuing its request, for `secs`. */
static double run(const char *url, const char *body, int ty, long want, int conns, double secs,
		  long *ret_bad)
{
	int n = conns < max_threads ? conns : max_threads;
	struct worker *w = calloc((size_t)n, sizeof(*w));
	double t0 = now();
	long done = 0, bad = 0;

	for (int i = 0; i < n; i++) {
		w[i] = (struct worker){
		    .url = url, .body = body, .ty = ty, .want = want, .t0 = t0, .secs = secs,
		    /* conns spread as evenly as they go */
		    .conns = conns / n + (i < conns % n),
		};
		if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0)
			w[i].conns = 0, w[i].bad = 1;
	}
	for (int i = 0; i < n; i++) {
		if (w[i].conns)
			pthread_join(w[i].thread, NULL);
		done += w[i].done;
		bad += w[i].bad;
	}
	free(w);
	*ret_bad = bad;
	return (double)done / (now() - t0);
}

/* -s HCSED: runs a fresh hcsed on a temporary database and a port the
 * kernel picks (loopback only); the port is read from its log. */
static pid_t spawn(const char *hcsed, char *dir, char *url, size_t url_len)
{
	char db[128], log[160];
	pid_t pid;

	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof(db), "%s/hcse.db", dir);
	snprintf(log, sizeof(log), "%s/hcsed.log", dir);
	pid = fork();
	if (pid == 0) {
		FILE *f;

		/* the daemon goes with the benchmark, however that ends */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		f = freopen(log, "a", stderr);
		(void)f;
		execl(hcsed, hcsed, "--listen", "127.0.0.1:0", "--db", db, "-d", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && pid > 0; i++) {
		char line[512];
		FILE *f = fopen(log, "r");
		unsigned port = 0;

		while (f && fgets(line, sizeof(line), f)) {
			char *p = strstr(line, " on http://127.0.0.1:");

			if (p)
				port = (unsigned)strtoul(p + strlen(" on http://127.0.0.1:"), NULL,
							 10);
		}
		if (f)
			fclose(f);
		if (port) {
			snprintf(url, url_len, "http://127.0.0.1:%u/cse-in", port);
			return pid;
		}
		usleep(50000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const int all_conns[] = {1, 8, 32};
	const int *conns = all_conns;
	size_t n_conns = 3;
	int one_conns[1];
	const char *only = NULL; /* "1k", "la" or "1m": that figure alone */
	double secs = 3;
	char url[512], cnt[600], la[700], *small, *big;
	char dir[] = "/tmp/hcse-bench.XXXXXX", spawned[128];
	const char *hcsed = NULL;
	pid_t child = 0;
	long bad;
	int c;

	while ((c = getopt(argc, argv, "u:t:s:n:o:j:h")) != -1) {
		switch (c) {
		case 'j':
			max_threads = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		case 'n':
			one_conns[0] = atoi(optarg);
			conns = one_conns;
			n_conns = 1;
			break;
		case 'o':
			only = optarg;
			break;
		case 'u':
			base = optarg;
			break;
		case 's':
			hcsed = optarg;
			break;
		case 't':
			secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: hcse_bench [-u http://HOST:PORT/cse-in | -s HCSED] "
					"[-t SECONDS] [-n CONNECTIONS] [-o 1k|la|1m] [-j THREADS]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (hcsed) {
		child = spawn(hcsed, dir, spawned, sizeof(spawned));
		if (child <= 0) {
			fprintf(stderr, "cannot start %s\n", hcsed);
			return 1;
		}
		base = spawned;
	}
	snprintf(origin, sizeof(origin), "Cbench%d", (int)getpid());
	if (once(base,
		 "{\"m2m:ae\":{\"rn\":\"bench\",\"api\":\"Nbench\",\"rr\":false,\"srv\":[\"3\"]}}",
		 2) != 201) {
		/* a second run reuses the AE: register under a fresh name */
		char body[256];

		snprintf(
		    body, sizeof(body),
		    "{\"m2m:ae\":{\"rn\":\"%s\",\"api\":\"Nbench\",\"rr\":false,\"srv\":[\"3\"]}}",
		    origin);
		if (once(base, body, 2) != 201) {
			fprintf(stderr, "cannot register an AE at %s\n", base);
			return 1;
		}
		snprintf(url, sizeof(url), "%s/%s", base, origin);
	} else
		snprintf(url, sizeof(url), "%s/bench", base);

	small = malloc(2048);
	snprintf(small, 2048,
		 "{\"m2m:cin\":{\"cnf\":\"application/octet-stream:0:1\",\"con\":\"%s\"}}", "");
	big = malloc(1100000);
	for (int k = 0; k < 2; k++) {
		size_t n = k ? 1048576 : 1024;
		char *b = k ? big : small, *p;

		p = b +
		    sprintf(b, "{\"m2m:cin\":{\"cnf\":\"application/octet-stream:0:1\",\"con\":\"");
		memset(p, 'A', n);
		strcpy(p + n, "\"}}");
	}

	printf("hcsed benchmark against %s, %.1f s per figure, up to %d client threads\n", base,
	       secs, max_threads);
	for (int k = 0; k < 2; k++) {
		if (only && strcmp(only, k ? "1m" : "1k") != 0 && (k || strcmp(only, "la") != 0))
			continue;
		for (size_t i = 0; i < n_conns; i++) {
			/* a fresh container per run; mni keeps the database bounded */
			snprintf(cnt, sizeof(cnt), "{\"m2m:cnt\":{\"rn\":\"c%d-%zu\",\"mni\":%d}}",
				 k, i, k ? 64 : 10000);
			if (once(url, cnt, 3) != 201) {
				fprintf(stderr, "cannot create a container\n");
				return 1;
			}
			snprintf(cnt, sizeof(cnt), "%s/c%d-%zu", url, k, i);
			/* la alone still needs something to retrieve */
			double r = run(cnt, k ? big : small, 4, 201, conns[i],
				       only && !strcmp(only, "la") ? 0.2 : secs, &bad);
			if (!only || strcmp(only, "la") != 0)
				printf("create %s con, %2d connections: %9.1f /s%s\n",
				       k ? "1 MiB" : "1 KiB", conns[i], r,
				       bad ? " (with errors)" : "");
			if (k == 0 && (!only || !strcmp(only, "la"))) {
				snprintf(la, sizeof(la), "%s/la", cnt);
				r = run(la, NULL, 0, 200, conns[i], secs, &bad);
				printf("retrieve la (1 KiB), %2d connections: %9.1f /s%s\n",
				       conns[i], r, bad ? " (with errors)" : "");
			}
			fflush(stdout);
		}
	}
	free(small);
	free(big);
	curl_global_cleanup();
	if (child > 0) {
		char cmd[64];

		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return 0;
}
