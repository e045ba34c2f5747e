/* SPDX-License-Identifier: Apache-2.0 */
/* tefd: options and config, start-up in order (key, store, audit, listeners), the sweeper loop,
 * teardown. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest-config.h"
#include "atrest/cleanup.h"
#include "atrest/conf.h"
#include "atrest/httpd.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "atrest/sd_notify.h"
#include "api.h"

#define MAX_UIDS 64

struct settings {
	bool init;
	bool foreground;
	bool verbose;
	bool audit_append_only;
	char *config;
	char *socket;
	mode_t socket_mode;
	char *db;
	char *master_key;
	char *audit_log;
	char *pidfile;
	char *fqdn;
	char *listen;
	char *tls_cert;
	char *tls_key;
	char *tls_ca;
	uint64_t default_ttl;
	uint64_t max_ttl;
	uint64_t max_registrations;
	uint64_t max_failed_retrievals;
	uint64_t failure_window;
	uint64_t sweep_interval;
	uint64_t threads;
	uid_t delegates[MAX_UIDS];
	size_t n_delegates;
	uid_t admins[MAX_UIDS];
	size_t n_admins;
};

static void settings_free(struct settings *s)
{
	char **strs[] = {&s->config,	&s->socket,  &s->db,	&s->master_key,
			 &s->audit_log, &s->pidfile, &s->fqdn,	&s->listen,
			 &s->tls_cert,	&s->tls_key, &s->tls_ca};

	for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The built-in defaults, before tefd.conf and the command line. */
static void settings_init(struct settings *s)
{
	*s = (struct settings){
	    .socket_mode = 0666,
	    .default_ttl = 30 * 86400,
	    .max_ttl = 365 * 86400,
	    .max_registrations = 100000,
	    .max_failed_retrievals = 100,
	    .failure_window = 60,
	    .sweep_interval = 30,
	};
}

static void usage(FILE *f)
{
	fputs("usage: tefd --init --master-key FILE\n"
	      "       tefd --socket PATH --db FILE --master-key FILE [--socket-mode MODE]\n"
	      "            [--delegate UID]... [--admin UID]... [--fqdn NAME]\n"
	      "            [--default-ttl SECONDS] [--max-ttl SECONDS]\n"
	      "            [--listen HOST:PORT --tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
	      "            [--audit-log FILE] [--audit-append-only yes|no] [--pidfile FILE]\n"
	      "            [--max-registrations N]\n"
	      "            [--max-failed-retrievals N] [--failure-window SECONDS]\n"
	      "            [--sweep-interval SECONDS] [--threads N] [-c CONFIG] [-d] [-v]\n"
	      "\n"
	      "The oneM2M Trust Enabler Function: registers keys, releases them to the\n"
	      "owner and the targets, and records file versions (TS-0003 8.8.2).\n"
	      "See tefd(8) and tefd.conf(5).\n",
	      f);
}

static int add_uid(uid_t *v, size_t *n, const char *s)
{
	uint64_t u;
	int r = conf_parse_u64(s, 0, (uint64_t)UINT32_MAX - 1, &u);

	if (r < 0)
		return r;
	if (*n == MAX_UIDS)
		return -E2BIG;
	v[(*n)++] = (uid_t)u;
	return 0;
}

/* One setting, by the name it has both as --option and as a tefd.conf key. */
static int apply(struct settings *s, const char *key, const char *value)
{
	uint64_t mode;

	if (strcmp(key, "socket") == 0)
		return conf_set_string(value, &s->socket);
	if (strcmp(key, "db") == 0)
		return conf_set_string(value, &s->db);
	if (strcmp(key, "master-key") == 0)
		return conf_set_string(value, &s->master_key);
	if (strcmp(key, "audit-log") == 0)
		return conf_set_string(value, &s->audit_log);
	if (strcmp(key, "pidfile") == 0)
		return conf_set_string(value, &s->pidfile);
	if (strcmp(key, "fqdn") == 0)
		return conf_set_string(value, &s->fqdn);
	if (strcmp(key, "listen") == 0)
		return conf_set_string(value, &s->listen);
	if (strcmp(key, "tls-cert") == 0)
		return conf_set_string(value, &s->tls_cert);
	if (strcmp(key, "tls-key") == 0)
		return conf_set_string(value, &s->tls_key);
	if (strcmp(key, "tls-ca") == 0)
		return conf_set_string(value, &s->tls_ca);
	if (strcmp(key, "socket-mode") == 0) {
		char *end;

		errno = 0;
		mode = strtoull(value, &end, 8);
		if (errno || end == value || *end || mode > 0777)
			return -EINVAL;
		s->socket_mode = (mode_t)mode;
		return 0;
	}
	if (strcmp(key, "delegate") == 0)
		return add_uid(s->delegates, &s->n_delegates, value);
	if (strcmp(key, "admin") == 0)
		return add_uid(s->admins, &s->n_admins, value);
	if (strcmp(key, "default-ttl") == 0)
		return conf_parse_u64(value, 1, TEF_TIMESTAMP_MAX, &s->default_ttl);
	if (strcmp(key, "max-ttl") == 0)
		return conf_parse_u64(value, 1, TEF_TIMESTAMP_MAX, &s->max_ttl);
	if (strcmp(key, "max-registrations") == 0)
		return conf_parse_u64(value, 0, UINT32_MAX, &s->max_registrations);
	if (strcmp(key, "max-failed-retrievals") == 0)
		return conf_parse_u64(value, 0, UINT32_MAX, &s->max_failed_retrievals);
	if (strcmp(key, "failure-window") == 0)
		return conf_parse_u64(value, 1, 86400, &s->failure_window);
	if (strcmp(key, "sweep-interval") == 0)
		return conf_parse_u64(value, 1, 86400, &s->sweep_interval);
	if (strcmp(key, "threads") == 0)
		return conf_parse_u64(value, 1, 256, &s->threads);
	if (strcmp(key, "verbose") == 0)
		return conf_parse_bool(value, &s->verbose);
	if (strcmp(key, "audit-append-only") == 0)
		return conf_parse_bool(value, &s->audit_append_only);
	return -ENOKEY;
}

static int conf_item(const char *key, const char *value, void *userdata)
{
	return apply(userdata, key, value);
}

static const struct option options[] = {{"init", no_argument, NULL, 'I'},
					{"help", no_argument, NULL, 'h'},
					{"version", no_argument, NULL, 'V'},
					{"config", required_argument, NULL, 'c'},
					{"verbose", no_argument, NULL, 'v'},
					{"socket", required_argument, NULL, 1},
					{"db", required_argument, NULL, 1},
					{"master-key", required_argument, NULL, 1},
					{"socket-mode", required_argument, NULL, 1},
					{"delegate", required_argument, NULL, 1},
					{"admin", required_argument, NULL, 1},
					{"fqdn", required_argument, NULL, 1},
					{"default-ttl", required_argument, NULL, 1},
					{"max-ttl", required_argument, NULL, 1},
					{"listen", required_argument, NULL, 1},
					{"tls-cert", required_argument, NULL, 1},
					{"tls-key", required_argument, NULL, 1},
					{"tls-ca", required_argument, NULL, 1},
					{"audit-log", required_argument, NULL, 1},
					{"audit-append-only", required_argument, NULL, 1},
					{"pidfile", required_argument, NULL, 1},
					{"max-registrations", required_argument, NULL, 1},
					{"max-failed-retrievals", required_argument, NULL, 1},
					{"failure-window", required_argument, NULL, 1},
					{"sweep-interval", required_argument, NULL, 1},
					{"threads", required_argument, NULL, 1},
					{}};

/* The command line's settings, applied over tefd.conf's (at start-up and on SIGHUP). */
static int apply_cmdline(int argc, char **argv, struct settings *s)
{
	int c, idx, r;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:dvhV", options, &idx)) != -1) {
		if (c == 'v') {
			s->verbose = true;
		} else if (c == 1) {
			r = apply(s, options[idx].name, optarg);
			if (r < 0) {
				fprintf(stderr, "tefd: bad value '%s' for --%s\n", optarg,
					options[idx].name);
				return r;
			}
		}
	}
	return 0;
}

/*
 * Two passes: the first finds -c (and -d, --init), the config file is read,
 * then the command line is applied on top of it.
 */
static int parse_args(int argc, char **argv, struct settings *s)
{
	unsigned line = 0;
	int c, idx, r;

	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:dvhV", options, &idx)) != -1) {
		switch (c) {
		case 'c':
			if (conf_set_string(optarg, &s->config) < 0)
				return -ENOMEM;
			break;
		case 'd':
			s->foreground = true;
			break;
		case 'I':
			s->init = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			puts("tefd " ATREST_VERSION);
			exit(EXIT_SUCCESS);
		case '?':
			usage(stderr);
			return -EINVAL;
		default:
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tefd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (s->config) {
		r = conf_parse_file(s->config, conf_item, s, &line);
		if (r < 0) {
			fprintf(stderr, "tefd: %s:%u: %s\n", s->config, line,
				r == -ENOKEY ? "unknown setting" : strerror(-r));
			return r;
		}
	}
	return apply_cmdline(argc, argv, s);
}

/*
 * Without -d: fork, and let the parent exit only once the child reports
 * that it is serving (or why it is not), so a caller never sees a
 * half-started daemon. Returns the write end in the child.
 */
static int daemonize(void)
{
	int p[2];
	pid_t pid;
	char status = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		/* the reason went to syslog: whoever started tefd by hand must know where */
		if (status != 0)
			fputs("tefd: did not start; the reason is in the system log "
			      "(journalctl -t tefd), or run with -d to see it here\n",
			      stderr);
		_exit(status == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
	}
	close(p[0]);
	if (setsid() < 0)
		return -errno;
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			close(null);
		}
	}
	return p[1];
}

static void report_parent(int *fd, char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1)
		log_debug("parent went away");
	*fd = safe_close(*fd);
}

static int write_pidfile(const char *path)
{
	_cleanup_close_ int fd =
	    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	char buf[32];
	int n;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		return -EIO;
	return 0;
}

/* The keys must never reach a core file or a debugger of another process. */
static int harden_process(void)
{
	struct rlimit no_core = {0, 0}, cur;

	/* a service manager may have set it already (and may forbid setrlimit) */
	if ((getrlimit(RLIMIT_CORE, &cur) < 0 || cur.rlim_cur != 0 || cur.rlim_max != 0) &&
	    setrlimit(RLIMIT_CORE, &no_core) < 0)
		return -errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static int check_settings(struct settings *s)
{
	if (!s->master_key) {
		fprintf(stderr, "tefd: --master-key is required\n");
		return -EINVAL;
	}
	if (s->init)
		return 0;
	if (!s->db || (!s->socket && !s->listen)) {
		fprintf(stderr, "tefd: --db and --socket (or --listen) are required\n");
		usage(stderr);
		return -EINVAL;
	}
	if (s->listen && (!s->tls_cert || !s->tls_key || !s->tls_ca)) {
		fprintf(stderr, "tefd: --listen needs --tls-cert, --tls-key and --tls-ca: "
				"mutual TLS is mandatory over TCP\n");
		return -EINVAL;
	}
	if (s->default_ttl > s->max_ttl)
		s->default_ttl = s->max_ttl;
	if (!s->audit_log && asprintf(&s->audit_log, "%s-audit.log", s->db) < 0)
		return -ENOMEM;
	if (!s->fqdn) {
		char host[HOST_NAME_MAX + 1] = "localhost";

		(void)gethostname(host, sizeof(host));
		host[HOST_NAME_MAX] = '\0';
		if (conf_set_string(host, &s->fqdn) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* One audit line per registration the sweeper purges. */
static void audit_purged(const char *id_hex, void *userdata)
{
	struct audit_entry e = {.op = "sweep",
				.rsc = RSC_DELETED,
				.caller = "tefd",
				.id_hex = id_hex,
				.reason = "expired"};

	audit_log(userdata, &e);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Appends "text" to a comma-separated list in buf (cut short if it is full). */
static void list_add(char *buf, size_t size, const char *text)
{
	size_t len = strlen(buf);

	snprintf(buf + len, size - len, "%s%s", len ? ", " : "", text);
}

/*
 * Names the changed settings a running tefd cannot take: its sockets, files,
 * key, identity and threads are set up once, and the policy's uid arrays are
 * read by the workers without a lock.
 */
static void list_restart_only(const struct settings *o, const struct settings *n, char *buf,
			      size_t size)
{
	const struct {
		const char *name, *old, *new;
	} strs[] = {
	    {"socket", o->socket, n->socket},
	    {"db", o->db, n->db},
	    {"master-key", o->master_key, n->master_key},
	    {"audit-log", o->audit_log, n->audit_log},
	    {"pidfile", o->pidfile, n->pidfile},
	    {"fqdn", o->fqdn, n->fqdn},
	    {"listen", o->listen, n->listen},
	    {"tls-cert", o->tls_cert, n->tls_cert},
	    {"tls-key", o->tls_key, n->tls_key},
	    {"tls-ca", o->tls_ca, n->tls_ca},
	};

	for (size_t i = 0; i < ELEMENTSOF(strs); i++)
		if (!same_str(strs[i].old, strs[i].new))
			list_add(buf, size, strs[i].name);
	if (o->socket_mode != n->socket_mode)
		list_add(buf, size, "socket-mode");
	if (o->threads != n->threads)
		list_add(buf, size, "threads");
	if (o->audit_append_only != n->audit_append_only)
		list_add(buf, size, "audit-append-only");
	if (o->n_delegates != n->n_delegates ||
	    memcmp(o->delegates, n->delegates, o->n_delegates * sizeof(uid_t)) != 0)
		list_add(buf, size, "delegate");
	if (o->n_admins != n->n_admins ||
	    memcmp(o->admins, n->admins, o->n_admins * sizeof(uid_t)) != 0)
		list_add(buf, size, "admin");
}

/* Hands the tunables to the request handlers (atomic fields: workers read them). */
static void publish_tunables(struct api *a, const struct settings *s)
{
	a->default_ttl = (int64_t)s->default_ttl;
	a->max_ttl = (int64_t)s->max_ttl;
	a->max_per_owner = (unsigned)s->max_registrations;
	a->max_failed_retrievals = (unsigned)s->max_failed_retrievals;
	a->failure_window = (unsigned)s->failure_window;
	log_set_max_level(s->verbose ? LOG_DEBUG : LOG_INFO);
}

/* Takes the tunables of n into s and the api; lists "name old->new" for each change. */
static void take_tunables(struct api *a, struct settings *s, const struct settings *n, char *buf,
			  size_t size)
{
	const struct {
		const char *name;
		uint64_t *cur, new;
	} nums[] = {
	    {"default-ttl", &s->default_ttl, n->default_ttl},
	    {"max-ttl", &s->max_ttl, n->max_ttl},
	    {"max-registrations", &s->max_registrations, n->max_registrations},
	    {"max-failed-retrievals", &s->max_failed_retrievals, n->max_failed_retrievals},
	    {"failure-window", &s->failure_window, n->failure_window},
	    {"sweep-interval", &s->sweep_interval, n->sweep_interval},
	};
	char text[96];

	for (size_t i = 0; i < ELEMENTSOF(nums); i++) {
		if (*nums[i].cur == nums[i].new)
			continue;
		snprintf(text, sizeof(text), "%s %" PRIu64 "->%" PRIu64, nums[i].name, *nums[i].cur,
			 nums[i].new);
		list_add(buf, size, text);
		*nums[i].cur = nums[i].new;
	}
	if (s->verbose != n->verbose) {
		list_add(buf, size, n->verbose ? "verbose no->yes" : "verbose yes->no");
		s->verbose = n->verbose;
	}
	publish_tunables(a, s);
}

/*
 * SIGHUP with -c (issue 6 section 4): tefd.conf again, the command line on
 * top as at start-up. A file with an error changes nothing; the tunables
 * take effect at once; the rest is named as needing a restart.
 */
static void reload(struct api *a, struct settings *s, int argc, char **argv)
{
	struct settings n;
	char changed[512] = "", restart[256] = "";
	unsigned line = 0;
	int r;

	settings_init(&n);
	r = conf_parse_file(s->config, conf_item, &n, &line);
	if (r < 0) {
		log_error("reload refused, keeping the running settings: %s:%u: %s", s->config,
			  line, r == -ENOKEY ? "unknown setting" : strerror(-r));
		goto out;
	}
	if (apply_cmdline(argc, argv, &n) < 0 || check_settings(&n) < 0) {
		log_error("reload refused, keeping the running settings: %s is incomplete",
			  s->config);
		goto out;
	}
	list_restart_only(s, &n, restart, sizeof(restart));
	if (restart[0])
		log_warning("reload: %s changed in %s but needs restart", restart, s->config);
	take_tunables(a, s, &n, changed, sizeof(changed));
	log_info("reloaded %s: %s", s->config, changed[0] ? changed : "no setting changed");
out:
	settings_free(&n);
}

/*
 * Waits for a stop signal; every sweep-interval purges expired registrations.
 * SIGHUP reloads -c's file and reopens the audit log.
 */
static void run(struct api *a, struct settings *s, int argc, char **argv, const sigset_t *stop)
{
	for (;;) {
		struct timespec ts = {.tv_sec = (time_t)s->sweep_interval};
		int sig = sigtimedwait(stop, NULL, &ts);

		if (sig == SIGHUP) {
			int r;

			if (s->config)
				reload(a, s, argc, argv);
			/* logrotate moved the audit log: start a new one */
			r = audit_reopen(a->audit);

			if (r < 0)
				log_error_errno(r, "cannot reopen the audit log");
			else
				log_info("reopened the audit log");
			continue;
		}
		if (sig > 0) {
			log_info("received signal %d, stopping", sig);
			return;
		}
		if (sig < 0 && errno == EAGAIN) {
			int n = keystore_sweep(a->ks, keystore_now(a->ks), audit_purged, a->audit);

			if (n < 0)
				log_error_errno(n, "sweeper failed");
			else if (n > 0)
				log_info("purged %d expired registrations", n);
		}
	}
}

int main(int argc, char **argv)
{
	struct settings s;
	_cleanup_sodium_free_ uint8_t *master = NULL;
	struct keystore *ks = NULL;
	struct audit *audit = NULL;
	struct httpd *unix_httpd = NULL, *tcp_httpd = NULL;
	static struct api api;
	sigset_t stop;
	int ready_fd = -1, r, rc = EXIT_FAILURE;

	settings_init(&s);
	if (parse_args(argc, argv, &s) < 0 || check_settings(&s) < 0)
		goto out;

	if (s.init) {
		r = keystore_master_key_create(s.master_key);
		if (r < 0) {
			fprintf(stderr, "tefd: cannot create master key '%s': %s\n", s.master_key,
				r == -EEXIST ? "it already exists" : strerror(-r));
			goto out;
		}
		rc = EXIT_SUCCESS;
		goto out;
	}

	log_open("tefd", s.foreground ? LOG_TARGET_STDERR : LOG_TARGET_SYSLOG);
	if (s.verbose)
		log_set_max_level(LOG_DEBUG);
	r = harden_process();
	if (r < 0) {
		log_error_errno(r, "cannot disable core dumps and ptrace");
		goto out;
	}
	if (!s.foreground) {
		ready_fd = daemonize();
		if (ready_fd < 0) {
			log_error_errno(ready_fd, "cannot daemonize");
			goto out;
		}
	}
	/* signals are taken by sigtimedwait in the main thread only */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (sodium_init() < 0) {
		log_error("cannot initialise libsodium");
		goto out;
	}
	r = keystore_master_key_load(s.master_key, &master);
	if (r < 0) {
		log_error_errno(r, "refusing to start: master key '%s' %s", s.master_key,
				r == -EPERM    ? "is accessible by group or others (chmod 0600)"
				: r == -EINVAL ? "is not a 32-byte regular file"
					       : "cannot be read");
		goto out;
	}
	r = keystore_open(s.db, master, &ks);
	if (r < 0) {
		log_error_errno(r, "refusing to start: database '%s' %s", s.db,
				r == -EKEYREJECTED ? "holds keys this master key does not unwrap"
				: r == -ELOOP	   ? "is a symlink"
						   : "cannot be opened");
		goto out;
	}
	r = audit_open(s.audit_log, s.audit_append_only, keystore_audit_key(ks), &audit);
	if (r < 0) {
		log_error_errno(r, "cannot open the audit log '%s'", s.audit_log);
		goto out;
	}

	api.ks = ks;
	api.audit = audit;
	api.policy = (struct policy){s.admins, s.n_admins, s.delegates, s.n_delegates};
	api.fqdn = s.fqdn;
	publish_tunables(&api, &s);
	api_init(&api);

	if (s.socket) {
		struct httpd_config hc = {
		    .unix_path = s.socket,
		    .unix_mode = s.socket_mode,
		    .max_body = TEF_MAX_BODY,
		    .threads = (unsigned)s.threads,
		};

		r = httpd_start(&hc, api_handle, &api, &unix_httpd);
		if (r < 0) {
			log_error_errno(r, "cannot serve on '%s'", s.socket);
			goto out;
		}
	}
	if (s.listen) {
		struct httpd_config hc = {
		    .listen = s.listen,
		    .tls_cert = s.tls_cert,
		    .tls_key = s.tls_key,
		    .tls_ca = s.tls_ca,
		    .max_body = TEF_MAX_BODY,
		    .threads = (unsigned)s.threads,
		};

		r = httpd_start(&hc, api_handle, &api, &tcp_httpd);
		if (r < 0) {
			log_error_errno(r, "cannot serve on '%s'", s.listen);
			goto out;
		}
	}
	if (s.pidfile) {
		r = write_pidfile(s.pidfile);
		if (r < 0) {
			log_error_errno(r, "cannot write pid file '%s'", s.pidfile);
			goto out;
		}
	}
	/* ready: listening, database open, master key verified */
	log_info("serving%s%s%s%s as '%s'", s.socket ? " on " : "", s.socket ? s.socket : "",
		 s.listen ? " and " : "", s.listen ? s.listen : "", s.fqdn);
	if (tcp_httpd)
		log_info("TLS listener on port %u", httpd_port(tcp_httpd));
	(void)sd_notify_send("READY=1");
	report_parent(&ready_fd, 0);

	run(&api, &s, argc, argv, &stop);
	(void)sd_notify_send("STOPPING=1");
	rc = EXIT_SUCCESS;
out:
	report_parent(&ready_fd, 1);
	tcp_httpd = httpd_stop(tcp_httpd);
	unix_httpd = httpd_stop(unix_httpd);
	if (api.ks)
		api_done(&api);
	audit = audit_close(audit);
	ks = keystore_close(ks);
	if (s.pidfile && rc == EXIT_SUCCESS && !s.init)
		(void)unlink(s.pidfile);
	settings_free(&s);
	return rc;
}
