/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed: options and config, then the CSE, the HTTP server and the expiry sweeper, torn down in
 * reverse. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "atrest-config.h"
#include "atrest/cleanup.h"
#include "atrest/conf.h"
#include "atrest/httpd.h"
#include "atrest/log.h"
#include "atrest/sd_notify.h"
#include "hcse.h"
#include "http.h"

struct settings {
	char *listen;
	char *db;
	char *cse_rn;
	char *cse_ri;
	char *csi;
	char *admin;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	uint64_t max_body;
	uint64_t threads;
	uint64_t max_depth;
	uint64_t max_resources;
	uint64_t max_labels;
	uint64_t max_label_len;
	uint64_t timeout;
	uint64_t max_connections;
	int log_level; /* syslog level: the most verbose one logged */
	bool allow_plain;
	bool notify;
	bool foreground;
};

static void usage(FILE *f)
{
	fputs("usage: hcsed [--listen HOST:PORT] [--db FILE] [--cse-rn NAME] [--cse-ri ID]\n"
	      "             [--csi /ID] [--admin ORIGINATOR] [--max-body BYTES]\n"
	      "             [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--threads N]\n"
	      "             [--allow-plain] [-c CONFIG] [-d] [-v]\n",
	      f);
}

static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},	{"db", required_argument, NULL, 'D'},
    {"cse-rn", required_argument, NULL, 'n'},	{"cse-ri", required_argument, NULL, 'i'},
    {"csi", required_argument, NULL, 's'},	{"admin", required_argument, NULL, 'a'},
    {"max-body", required_argument, NULL, 'm'}, {"tls-cert", required_argument, NULL, 'C'},
    {"tls-key", required_argument, NULL, 'K'},	{"tls-ca", required_argument, NULL, 'A'},
    {"threads", required_argument, NULL, 't'},	{"allow-plain", no_argument, NULL, 'P'},
    {"verbose", no_argument, NULL, 'v'},	{"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},	{NULL, 0, NULL, 0},
};

/* log-level values: syslog levels by name */
static const char *const log_level_names[] = {
    [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/* One setting, from the config file or the command line (same names). */
static int apply(struct settings *s, const char *key, const char *value)
{
	if (strcmp(key, "listen") == 0)
		return conf_set_string(value, &s->listen);
	if (strcmp(key, "db") == 0)
		return conf_set_string(value, &s->db);
	if (strcmp(key, "cse-rn") == 0)
		return conf_set_string(value, &s->cse_rn);
	if (strcmp(key, "cse-ri") == 0)
		return conf_set_string(value, &s->cse_ri);
	if (strcmp(key, "csi") == 0)
		return conf_set_string(value, &s->csi);
	if (strcmp(key, "admin") == 0)
		return conf_set_string(value, &s->admin);
	if (strcmp(key, "tls-cert") == 0)
		return conf_set_string(value, &s->tls_cert);
	if (strcmp(key, "tls-key") == 0)
		return conf_set_string(value, &s->tls_key);
	if (strcmp(key, "tls-ca") == 0)
		return conf_set_string(value, &s->tls_ca);
	if (strcmp(key, "max-body") == 0)
		return conf_parse_u64(value, 1024, UINT64_C(1) << 32, &s->max_body);
	if (strcmp(key, "threads") == 0)
		return conf_parse_u64(value, 1, 256, &s->threads);
	if (strcmp(key, "max-depth") == 0)
		return conf_parse_u64(value, 2, 64, &s->max_depth);
	if (strcmp(key, "max-resources") == 0)
		return conf_parse_u64(value, 2, UINT64_C(1) << 40, &s->max_resources);
	if (strcmp(key, "max-labels") == 0)
		return conf_parse_u64(value, 1, 4096, &s->max_labels);
	if (strcmp(key, "max-label-len") == 0)
		return conf_parse_u64(value, 1, 65536, &s->max_label_len);
	if (strcmp(key, "timeout") == 0)
		return conf_parse_u64(value, 1, 3600, &s->timeout);
	if (strcmp(key, "max-connections") == 0)
		return conf_parse_u64(value, 1, 65536, &s->max_connections);
	if (strcmp(key, "allow-plain") == 0)
		return conf_parse_bool(value, &s->allow_plain);
	if (strcmp(key, "notify") == 0)
		return conf_parse_bool(value, &s->notify);
	if (strcmp(key, "log-level") == 0) {
		for (int i = 0; i < (int)ELEMENTSOF(log_level_names); i++)
			if (log_level_names[i] && strcmp(value, log_level_names[i]) == 0) {
				s->log_level = i;
				return 0;
			}
		return -EINVAL;
	}
	return -ENOENT;
}

static int conf_item(const char *key, const char *value, void *userdata)
{
	int r = apply(userdata, key, value);

	if (r == -ENOENT)
		log_error("unknown setting \"%s\"", key);
	else if (r < 0)
		log_error("bad value for \"%s\"", key);
	return r;
}

static bool is_loopback(const char *listen)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
	unsigned char a[16];

	if (n >= sizeof(host))
		return false;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (host[0] == '[' && n > 1 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	return false;
}

static atomic_bool stopping; /* set by main, read by the sweeper */

static void *sweeper(void *userdata)
{
	struct hcse *cse = userdata;

	/* expirationTime (TS-0004 9.6.1.3): expired resources are removed */
	while (!atomic_load(&stopping)) {
		int r = hcse_expire(cse, time(NULL));

		if (r < 0)
			log_warning_errno(r, "expiry sweep failed");
		else if (r > 0)
			log_debug("%d expired resource(s) removed", r);
		sleep(1);
	}
	return NULL;
}

static void settings_free(struct settings *s)
{
	free(s->listen);
	free(s->db);
	free(s->cse_rn);
	free(s->cse_ri);
	free(s->csi);
	free(s->admin);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->tls_ca);
}

/* The default settings, then the config file, then the command line (which
 * wins): at start and on every reload. 1 to go on, 0 when an option asked
 * only for help or the version, -EINVAL (logged) for a bad setting. */
static int settings_load(struct settings *s, const char *config, int argc, char **argv)
{
	unsigned line;
	int c, r;

	*s = (struct settings){
	    .max_body = 64 * 1024 * 1024, /* issue 4: default 64 MiB */
	    /* requests mostly wait on a commit's fsync: a thread per
	     * connection the benchmark opens (32) and more, so one group
	     * commit covers them all (store_write) */
	    .threads = 64,
	    .notify = true,
	    .log_level = LOG_INFO,
	};
	if (conf_set_string("127.0.0.1:8080", &s->listen) < 0 ||
	    conf_set_string("hcsed.db", &s->db) < 0 || conf_set_string("cse-in", &s->cse_rn) < 0 ||
	    conf_set_string("id-in", &s->cse_ri) < 0 || conf_set_string("/id-in", &s->csi) < 0 ||
	    conf_set_string("CAdmin", &s->admin) < 0)
		return log_error_errno(ENOMEM, "cannot set the defaults");
	if (config) {
		r = conf_parse_file(config, conf_item, s, &line);
		if (r < 0) {
			log_error_errno(r, "cannot use config \"%s\" (line %u)", config, line);
			return -EINVAL;
		}
	}
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:dhv", opts, NULL)) != -1) {
		const char *key = NULL;

		switch (c) {
		case 'l':
			key = "listen";
			break;
		case 'D':
			key = "db";
			break;
		case 'n':
			key = "cse-rn";
			break;
		case 'i':
			key = "cse-ri";
			break;
		case 's':
			key = "csi";
			break;
		case 'a':
			key = "admin";
			break;
		case 'm':
			key = "max-body";
			break;
		case 'C':
			key = "tls-cert";
			break;
		case 'K':
			key = "tls-key";
			break;
		case 'A':
			key = "tls-ca";
			break;
		case 't':
			key = "threads";
			break;
		case 'P':
			s->allow_plain = true;
			break;
		case 'v':
			s->log_level = LOG_DEBUG;
			break;
		case 'c':
		case 'd':
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("hcsed " ATREST_VERSION);
			return 0;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (key && apply(s, key, optarg) < 0) {
			log_error("bad value for --%s: \"%s\"", key, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 1;
}

/* Appends "name old -> new" to the list in f (a change or a restart note). */
static void note_change(FILE *f, const char *name, const char *old, const char *new)
{
	fprintf(f, "%s%s %s -> %s", ftell(f) > 0 ? ", " : "", name, old ? old : "(none)",
		new ? new : "(none)");
}

static void note_u64(FILE *f, const char *name, uint64_t old, uint64_t new)
{
	char a[32], b[32];

	snprintf(a, sizeof(a), "%" PRIu64, old);
	snprintf(b, sizeof(b), "%" PRIu64, new);
	note_change(f, name, a, b);
}

static bool str_differ(const char *a, const char *b)
{
	return (!a || !b) ? a != b : strcmp(a, b) != 0;
}

/*
 * SIGHUP: reads the configuration again and applies what can change while
 * requests run (max-body, admin, log-level); what cannot (listen, db, the
 * CSE's identity, TLS, threads, limits the store was opened with) is
 * reported as needing a restart. One log line says what changed. s holds
 * the running settings and is updated for what was applied.
 */
static void reload(struct settings *s, uint64_t started_max_body, const char *config, int argc,
		   char **argv, struct hcse *cse)
{
	_cleanup_free_ char *done = NULL, *later = NULL;
	size_t done_len = 0, later_len = 0;
	struct settings n;
	FILE *d, *l;

	if (!config) {
		log_notice("SIGHUP: no configuration file (-c) to reload");
		return;
	}
	if (settings_load(&n, config, argc, argv) <= 0) {
		log_error("configuration reload failed: the running configuration stays");
		settings_free(&n);
		return;
	}
	d = open_memstream(&done, &done_len);
	l = open_memstream(&later, &later_len);
	if (!d || !l) {
		if (d)
			fclose(d);
		if (l)
			fclose(l);
		settings_free(&n);
		log_error_errno(ENOMEM, "configuration reload failed");
		return;
	}
	if (n.max_body != s->max_body) {
		/* the server collects bodies up to the cap it started with */
		uint64_t cap = n.max_body < started_max_body ? n.max_body : started_max_body;

		note_u64(d, "max-body", s->max_body, cap);
		if (cap != n.max_body)
			note_u64(l, "max-body", cap, n.max_body);
		http_set_max_body(cap);
		s->max_body = cap;
	}
	if (str_differ(n.admin, s->admin)) {
		if (hcse_set_admin(cse, n.admin) < 0)
			note_change(l, "admin (out of memory)", s->admin, n.admin);
		else {
			note_change(d, "admin", s->admin, n.admin);
			free(s->admin);
			s->admin = n.admin;
			n.admin = NULL;
		}
	}
	if (n.log_level != s->log_level) {
		note_change(d, "log-level", log_level_names[s->log_level],
			    log_level_names[n.log_level]);
		log_set_max_level(n.log_level);
		s->log_level = n.log_level;
	}
#define STR_RESTART(name, field)                                                                    \
	if (str_differ(n.field, s->field))                                                          \
		note_change(l, name, s->field, n.field);
#define U64_RESTART(name, field)                                                                    \
	if (n.field != s->field)                                                                    \
		note_u64(l, name, (uint64_t)s->field, (uint64_t)n.field);
	STR_RESTART("listen", listen)
	STR_RESTART("db", db)
	STR_RESTART("cse-rn", cse_rn)
	STR_RESTART("cse-ri", cse_ri)
	STR_RESTART("csi", csi)
	STR_RESTART("tls-cert", tls_cert)
	STR_RESTART("tls-key", tls_key)
	STR_RESTART("tls-ca", tls_ca)
	U64_RESTART("threads", threads)
	U64_RESTART("max-depth", max_depth)
	U64_RESTART("max-resources", max_resources)
	U64_RESTART("max-labels", max_labels)
	U64_RESTART("max-label-len", max_label_len)
	U64_RESTART("timeout", timeout)
	U64_RESTART("max-connections", max_connections)
	U64_RESTART("allow-plain", allow_plain)
	U64_RESTART("notify", notify)
#undef STR_RESTART
#undef U64_RESTART
	fclose(d);
	fclose(l);
	log_info("configuration reloaded: %s%s%s", done_len ? done : "nothing applied",
		 later_len ? "; needs restart: " : "", later_len ? later : "");
	settings_free(&n);
}

int main(int argc, char **argv)
{
	struct settings s;
	const char *config = NULL;
	bool foreground = false;
	struct hcse_config hc;
	struct httpd_config http;
	struct hcse *cse = NULL;
	struct httpd *h = NULL;
	pthread_t sweep;
	sigset_t mask;
	int c, r, sig;

	log_open("hcsed", LOG_TARGET_STDERR);
	/* first pass: -c and -d only; the config is read before the options
	 * so that the command line wins */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:dhv", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'd')
			foreground = true;
	}
	r = settings_load(&s, config, argc, argv);
	if (r <= 0) {
		settings_free(&s);
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	s.foreground = foreground;
	log_set_max_level(s.log_level);
	if (!!s.tls_cert != !!s.tls_key || (s.tls_ca && !s.tls_cert)) {
		log_error("--tls-cert and --tls-key go together (and --tls-ca needs them)");
		settings_free(&s);
		return EXIT_FAILURE;
	}
	/* issue 4 / DESIGN.md 2: TLS means client certificates bound to
	 * X-M2M-Origin; without a CA to verify them nobody is authenticated and
	 * any originator (even the admin) could be claimed from the network */
	if (s.tls_cert && !s.tls_ca) {
		log_error("--tls-cert needs --tls-ca: clients must be authenticated by certificate");
		settings_free(&s);
		return EXIT_FAILURE;
	}
	if (!s.tls_cert && !s.allow_plain && !is_loopback(s.listen)) {
		log_error("plain HTTP on \"%s\" is not loopback: use --tls-* or --allow-plain",
			  s.listen);
		settings_free(&s);
		return EXIT_FAILURE;
	}
	if (!s.foreground) {
		if (daemon(0, 0) < 0) {
			log_error_errno(errno, "cannot daemonise");
			settings_free(&s);
			return EXIT_FAILURE;
		}
		log_open("hcsed", LOG_TARGET_SYSLOG);
	}

	/* signals are taken synchronously by the main thread below */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	hc = (struct hcse_config){
	    .db_path = s.db,
	    .cse_rn = s.cse_rn,
	    .cse_ri = s.cse_ri,
	    .csi = s.csi,
	    .admin = s.admin,
	    .max_depth = (unsigned)s.max_depth,
	    .max_resources = s.max_resources,
	    .max_labels = (unsigned)s.max_labels,
	    .max_label_len = (unsigned)s.max_label_len,
	    .notify = s.notify,
	};
	r = hcse_new(&hc, &cse);
	if (r < 0) {
		log_error_errno(r, "cannot open the CSE database \"%s\"", s.db);
		goto out;
	}
	http = (struct httpd_config){
	    .listen = s.listen,
	    .tls_cert = s.tls_cert,
	    .tls_key = s.tls_key,
	    .tls_ca = s.tls_ca,
	    .max_body = s.max_body,
	    .threads = (unsigned)s.threads,
	    .timeout_sec = (unsigned)s.timeout,
	    .max_connections = (unsigned)s.max_connections,
	};
	r = httpd_start(&http, http_handle, cse, &h);
	if (r < 0) {
		log_error_errno(r, "cannot listen on \"%s\"", s.listen);
		goto out;
	}
	if (pthread_create(&sweep, NULL, sweeper, cse) != 0) {
		r = log_error_errno(EAGAIN, "cannot start the expiry sweeper");
		goto out;
	}
	/* the port actually bound: "--listen 127.0.0.1:0" lets the kernel
	 * choose, and this line tells which (tests read it) */
	log_info("serving %s (CSE-ID \"%s\", CSEBase \"%s\") on %s://%.*s:%u", s.db, s.csi,
		 s.cse_rn, s.tls_cert ? "https" : "http",
		 (int)(strrchr(s.listen, ':') ? strrchr(s.listen, ':') - s.listen : 0), s.listen,
		 httpd_port(h));
	(void)sd_notify_send("READY=1");

	uint64_t started_max_body = s.max_body;

	for (;;) {
		if (sigwait(&mask, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		reload(&s, started_max_body, config, argc, argv, cse);
	}
	log_info("stopping on signal %d", sig);
	(void)sd_notify_send("STOPPING=1");
	atomic_store(&stopping, true);
	h = httpd_stop(h);
	pthread_join(sweep, NULL);
out:
	httpd_stop(h);
	hcse_free(cse);
	curl_global_cleanup();
	settings_free(&s);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
