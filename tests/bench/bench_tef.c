/* SPDX-License-Identifier: Apache-2.0 */
/* Load program for tefd: Key Retrieval req/s and p50/p99 at 1, 4, 16 clients, and Key
 * Registration/s. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atrest/tef_client.h"

#define MAX_SAMPLES 2000000

struct worker {
	const char *sock;
	const char *method;
	const char *path;
	const char *body;
	double seconds;
	double *lat; /* microseconds */
	size_t n;
	size_t errors;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bench_tef: socket path too long: %s\n", path);
		exit(2);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One keep-alive HTTP/1.1 exchange; returns the status or -1. Lean on purpose: tefd is measured. */
static int exchange(int fd, const char *req, size_t req_len, char *buf, size_t cap)
{
	size_t got = 0, need = 0;
	char *hdr_end = NULL;

	if (write(fd, req, req_len) != (ssize_t)req_len)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got - 1);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "Content-Length:");

			need = (size_t)(hdr_end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (hdr_end && got >= need)
			break;
		if (got + 1 >= cap)
			return -1;
	}
	return atoi(buf + 9);
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	char req[1024], buf[8192];
	int fd = connect_unix(w->sock);
	size_t len;
	double end;

	if (fd < 0) {
		w->errors++;
		return NULL;
	}
	len = (size_t)snprintf(req, sizeof(req),
			       "%s %s HTTP/1.1\r\nHost: tef\r\nContent-Type: application/json\r\n"
			       "Content-Length: %zu\r\n\r\n%s",
			       w->method, w->path, w->body ? strlen(w->body) : 0,
			       w->body ? w->body : "");
	end = now_us() + w->seconds * 1e6;
	while (w->n < MAX_SAMPLES) {
		double t0 = now_us();
		int status = exchange(fd, req, len, buf, sizeof(buf));
		double t1 = now_us();

		if (status < 200 || status >= 300) {
			w->errors++;
			close(fd);
			fd = connect_unix(w->sock);
			if (fd < 0)
				break;
		} else {
			w->lat[w->n++] = t1 - t0;
		}
		if (t1 >= end)
			break;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Runs `clients` workers for `seconds` and prints one result line. */
static void measure(const char *what, const char *sock, const char *method, const char *path,
		    const char *body, int clients, double seconds)
{
	struct worker *w = calloc((size_t)clients, sizeof(*w));
	pthread_t *th = calloc((size_t)clients, sizeof(*th));
	double *all, t0, t1;
	size_t total = 0, errors = 0, k = 0;

	for (int i = 0; i < clients; i++) {
		w[i] = (struct worker){sock, method, path, body, seconds, NULL, 0, 0};
		w[i].lat = malloc(sizeof(double) * MAX_SAMPLES / (size_t)clients);
	}
	t0 = now_us();
	for (int i = 0; i < clients; i++)
		pthread_create(&th[i], NULL, run_worker, &w[i]);
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	t1 = now_us();
	all = malloc(sizeof(double) * (total ? total : 1));
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof(double));
		k += w[i].n;
		free(w[i].lat);
	}
	qsort(all, total, sizeof(double), cmp_double);
	printf("%-22s clients=%-3d %9.0f req/s  p50=%7.1f us  p99=%7.1f us  n=%zu errors=%zu\n",
	       what, clients, (double)total / ((t1 - t0) / 1e6), total ? all[total / 2] : 0.0,
	       total ? all[(size_t)((double)total * 0.99)] : 0.0, total, errors);
	fflush(stdout);
	free(all);
	free(w);
	free(th);
}

/* The same retrieval through lib/tef_client (libcurl), as atrestfs does it. */
struct client_worker {
	struct tef_client *c;
	const char *id;
	double seconds;
	size_t n, errors;
};

static void *run_client_worker(void *arg)
{
	struct client_worker *w = arg;
	double end = now_us() + w->seconds * 1e6;

	while (now_us() < end) {
		struct tef_registration *r = NULL;

		if (tef_retrieve(w->c, NULL, w->id, &r, NULL) == 0)
			w->n++;
		else
			w->errors++;
		tef_registration_free(r);
	}
	return NULL;
}

static void measure_client(const char *sock, const char *id, int clients, double seconds)
{
	struct tef_client *c = NULL;
	struct client_worker w[16];
	pthread_t th[16];
	size_t total = 0, errors = 0;
	double t0, t1;

	if (tef_client_new_unix(sock, &c) < 0)
		return;
	t0 = now_us();
	for (int i = 0; i < clients; i++) {
		w[i] = (struct client_worker){c, id, seconds, 0, 0};
		pthread_create(&th[i], NULL, run_client_worker, &w[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	t1 = now_us();
	printf("%-22s clients=%-3d %9.0f req/s  (mean %.1f us)  n=%zu errors=%zu\n",
	       "retrieval tef_client", clients, (double)total / ((t1 - t0) / 1e6),
	       total ? (t1 - t0) * clients / (double)total : 0.0, total, errors);
	tef_client_free(c);
}

static int run(const char *argv0, char *const cmd[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execv(argv0, cmd);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
	const char *tefd = argc > 1 ? argv[1] : TEFD_PATH;
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	char dir[] = "/tmp/bench-tef.XXXXXX", mk[128], db[128], sock[128], pidf[128], path[128];
	char buf[8192], reg[256];
	struct tef_client *c = NULL;
	struct tef_registration *r = NULL;
	struct tef_registration_req req = {.suid = TEF_SUID_ENCRYPTION};
	pid_t pid;
	int fd;

	if (!mkdtemp(dir))
		return 1;
	snprintf(mk, sizeof(mk), "%s/master.key", dir);
	snprintf(db, sizeof(db), "%s/tef.db", dir);
	snprintf(sock, sizeof(sock), "%s/tef.sock", dir);
	snprintf(pidf, sizeof(pidf), "%s/tefd.pid", dir);
	if (run(tefd, (char *const[]){(char *)tefd, "--init", "--master-key", mk, NULL}) != 0) {
		fprintf(stderr, "bench: tefd --init failed\n");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		char *args[32] = {(char *)tefd, "--socket",
				  sock,		"--db",
				  db,		"--master-key",
				  mk,		"--pidfile",
				  pidf,		"--max-registrations",
				  "0",		"-d"};
		int n = 12;

		/* extra arguments after the duration go to tefd ("--threads 2") */
		for (int i = 3; i < argc && n < 31; i++)
			args[n++] = argv[i];
		args[n] = NULL;
		execv(tefd, args);
		_exit(127);
	}
	for (int i = 0; i < 100 && access(pidf, F_OK) < 0; i++)
		usleep(50000);

	if (tef_client_new_unix(sock, &c) < 0 || tef_register(c, NULL, &req, &r, NULL) < 0) {
		fprintf(stderr, "bench: cannot register with tefd\n");
		kill(pid, SIGTERM);
		return 1;
	}
	snprintf(path, sizeof(path), "/keys/%s", r->relative_key_id);
	/* sanity: the raw client gets a key back */
	fd = connect_unix(sock);
	snprintf(reg, sizeof(reg), "GET %s HTTP/1.1\r\nHost: tef\r\n\r\n", path);
	if (fd < 0 || exchange(fd, reg, strlen(reg), buf, sizeof(buf)) != 200 ||
	    !strstr(buf, "\"keyValue\"")) {
		fprintf(stderr, "bench: retrieval does not work\n");
		kill(pid, SIGTERM);
		return 1;
	}
	close(fd);

	printf("tefd benchmark over %s (%.1f s per figure, %ld CPUs)\n", sock, seconds,
	       sysconf(_SC_NPROCESSORS_ONLN));
	for (int n = 1; n <= 16; n *= 4)
		measure("Key Retrieval", sock, "GET", path, NULL, n, seconds);
	measure_client(sock, r->relative_key_id, 4, seconds);
	measure("Key Registration", sock, "POST", "/keys", "{\"suid\":34}", 1, seconds);
	measure("Key Registration", sock, "POST", "/keys", "{\"suid\":34}", 4, seconds);

	tef_registration_free(r);
	tef_client_free(c);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(buf, sizeof(buf), "rm -rf '%s'", dir);
	return system(buf) == 0 ? 0 : 1;
}
