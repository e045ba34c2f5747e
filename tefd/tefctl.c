/* SPDX-License-Identifier: Apache-2.0 */
/* tefctl: tefd's admin CLI (list, show, renew, revoke, grant, ungrant, transfer, audit-tail,
 * backup, restore). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "atrest-config.h"
#include "atrest/cleanup.h"
#include "atrest/conf.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "atrest/tef_client.h"
#include "keystore.h"

#define DEFAULT_SOCKET "/run/atrest/tef.sock"

static const char *arg_socket = DEFAULT_SOCKET;
static bool arg_json;

static void usage(FILE *f)
{
	fputs("usage: tefctl [--socket PATH] [--json] COMMAND [ARGS]\n"
	      "commands:\n"
	      "  list [--owner PRINCIPAL] [--label LABEL] [--expiring-before TIME]\n"
	      "  show ID\n"
	      "  renew ID (--until TIME | --for SECONDS)\n"
	      "  revoke ID\n"
	      "  grant ID PRINCIPAL...\n"
	      "  ungrant ID PRINCIPAL...\n"
	      "  transfer ID OWNER\n"
	      "  audit-tail [--audit-log FILE | --db FILE | -c TEFD.CONF] [-n LINES] [-f]\n"
	      "  backup FILE [--force]\n"
	      "  restore FILE (--db FILE [--master-key FILE] | -c TEFD.CONF) [--force]\n"
	      "TIME is YYYYMMDDTHHMMSS (UTC) or +SECONDS from now; ID a relativeKeyID or "
	      "Credential-Id.\nSee tefctl(8).\n",
	      f);
}

static int fail(int r, const char *what, int rsc)
{
	if (rsc && !rsc_is_success(rsc))
		fprintf(stderr, "tefctl: %s: %s (tefd answered %d %s)\n", what, strerror(-r), rsc,
			rsc_to_string(rsc));
	else if (r == -ECONNREFUSED || r == -EHOSTUNREACH)
		/* the usual first mistake: tefd not running, or another socket */
		fprintf(stderr,
			"tefctl: %s: cannot reach tefd at '%s' (%s): is it running? "
			"--socket PATH\n",
			what, arg_socket, strerror(-r));
	else
		fprintf(stderr, "tefctl: %s: %s\n", what, strerror(-r));
	return EXIT_FAILURE;
}

static int parse_time(const char *s, int64_t *ret)
{
	if (s[0] == '+') {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || *end || v < 0)
			return -EINVAL;
		*ret = (int64_t)time(NULL) + v;
		return 0;
	}
	return tef_timestamp_parse(s, ret);
}

static json_t *reg_json(const struct tef_registration *r)
{
	char when[TEF_TIMESTAMP_LEN + 1] = "";

	(void)tef_timestamp_format(r->expiration, when);
	return json_pack(
	    "{s:s, s:s, s:s, s:i, s:o, s:o, s:s, s:I}", TEF_M_CREDENTIAL_ID, r->credential_id,
	    TEF_M_RELATIVE_KEY_ID, r->relative_key_id, TEF_M_EXPIRATION_TIME, when, TEF_M_SUID,
	    r->suid, TEF_M_LABELS, json_strv_new((const char *const *)r->labels, r->n_labels),
	    TEF_M_TARGET_IDS, json_strv_new((const char *const *)r->targets, r->n_targets),
	    TEF_M_OWNER, r->owner, TEF_M_ATREST_VERSION, (json_int_t)r->version);
}

static void print_strv(char *const *v, size_t n)
{
	if (n == 0)
		fputs("-", stdout);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", v[i]);
}

static void print_regs(struct tef_registration *const *list, size_t n)
{
	if (arg_json) {
		_cleanup_json_ json_t *a = json_array();
		_cleanup_free_ char *text = NULL;

		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, reg_json(list[i]));
		text = json_dumps(a, JSON_INDENT(2));
		if (text)
			puts(text);
		return;
	}
	printf("%-32s  %-16s  %-4s  %-15s  %-7s  %s  %s\n", "ID", "OWNER", "SUID", "EXPIRES",
	       "VERSION", "TARGETS", "LABELS");
	for (size_t i = 0; i < n; i++) {
		const struct tef_registration *r = list[i];
		char when[TEF_TIMESTAMP_LEN + 1] = "-";

		(void)tef_timestamp_format(r->expiration, when);
		printf("%-32s  %-16s  %-4d  %-15s  %-7llu  ", r->relative_key_id, r->owner, r->suid,
		       when, (unsigned long long)r->version);
		print_strv(r->targets, r->n_targets);
		fputs("  ", stdout);
		print_strv(r->labels, r->n_labels);
		putchar('\n');
	}
}

/* Finds one registration through the listing (admins see all; no key is released). */
static int find(struct tef_client *c, const char *id, struct tef_registration **ret, int *rsc)
{
	char rel[TEF_RELATIVE_KEY_ID_HEX + 1];
	struct tef_registration **list = NULL;
	size_t n = 0;
	int r;

	if (tef_relative_key_id(id, rel) < 0)
		return -EINVAL;
	r = tef_list(c, NULL, NULL, &list, &n, rsc);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i]->relative_key_id, rel) == 0) {
			*ret = list[i];
			list[i] = NULL;
			r = 0;
			break;
		}
	tef_registration_list_free(list, n);
	return r;
}

static int cmd_list(struct tef_client *c, int argc, char **argv)
{
	static const struct option opts[] = {{"owner", required_argument, NULL, 'o'},
					     {"label", required_argument, NULL, 'l'},
					     {"expiring-before", required_argument, NULL, 'e'},
					     {}};
	struct tef_list_filter f = {0};
	struct tef_registration **list = NULL;
	size_t n = 0;
	int o, r, rsc = 0;

	optind = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'o':
			f.owner = optarg;
			break;
		case 'l':
			f.label = optarg;
			break;
		case 'e':
			if (parse_time(optarg, &f.expires_before) < 0) {
				fprintf(stderr, "tefctl: bad time '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		default:
			return EXIT_FAILURE;
		}
	}
	r = tef_list(c, NULL, &f, &list, &n, &rsc);
	if (r < 0)
		return fail(r, "list", rsc);
	print_regs(list, n);
	tef_registration_list_free(list, n);
	return EXIT_SUCCESS;
}

static int cmd_show(struct tef_client *c, int argc, char **argv)
{
	struct tef_registration *reg = NULL;
	int r, rsc = 0;

	if (argc != 2) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	r = find(c, argv[1], &reg, &rsc);
	if (r < 0)
		return fail(r, argv[1], rsc);
	if (arg_json) {
		_cleanup_json_ json_t *o = reg_json(reg);
		_cleanup_free_ char *text = json_dumps(o, JSON_INDENT(2));

		if (text)
			puts(text);
	} else {
		char when[TEF_TIMESTAMP_LEN + 1] = "-";

		(void)tef_timestamp_format(reg->expiration, when);
		printf("Credential-Id:  %s\nrelativeKeyID:  %s\nowner:          %s\nsuid:          "
		       " %d\n"
		       "expires:        %s\nversion:        %llu\ntargets:        ",
		       reg->credential_id, reg->relative_key_id, reg->owner, reg->suid, when,
		       (unsigned long long)reg->version);
		print_strv(reg->targets, reg->n_targets);
		fputs("\nlabels:         ", stdout);
		print_strv(reg->labels, reg->n_labels);
		putchar('\n');
	}
	tef_registration_free(reg);
	return EXIT_SUCCESS;
}

static int print_updated(int r, int rsc, struct tef_registration *reg, const char *what)
{
	if (r < 0)
		return fail(r, what, rsc);
	print_regs(&reg, 1);
	tef_registration_free(reg);
	return EXIT_SUCCESS;
}

static int cmd_renew(struct tef_client *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"until", required_argument, NULL, 'u'}, {"for", required_argument, NULL, 'f'}, {}};
	struct tef_update_req u = {.set_expiration = true};
	struct tef_registration *reg = NULL;
	_cleanup_free_ char *plus = NULL;
	int o, r, rsc = 0;

	optind = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'f') {
			free(plus);
			if (asprintf(&plus, "+%s", optarg) < 0)
				return EXIT_FAILURE;
			optarg = plus;
		} else if (o != 'u') {
			return EXIT_FAILURE;
		}
		if (parse_time(optarg, &u.expiration) < 0) {
			fprintf(stderr, "tefctl: bad time '%s'\n", optarg);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc - 1 || u.expiration == 0) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	r = tef_update(c, NULL, argv[optind], &u, &reg, &rsc);
	return print_updated(r, rsc, reg, argv[optind]);
}

/* docs/TEF-API.md: a new owner (one identity); the key stays, re-wrapped by tefd. */
static int cmd_transfer(struct tef_client *c, int argc, char **argv)
{
	struct tef_registration *reg = NULL;
	int r, rsc = 0;

	if (argc != 3) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	struct tef_update_req u = {.owner = argv[2]};
	r = tef_update(c, NULL, argv[1], &u, &reg, &rsc);
	return print_updated(r, rsc, reg, argv[1]);
}

static int cmd_revoke(struct tef_client *c, int argc, char **argv)
{
	int r, rsc = 0;

	if (argc != 2) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	r = tef_deregister(c, NULL, argv[1], &rsc);
	if (r < 0)
		return fail(r, argv[1], rsc);
	if (!arg_json)
		printf("revoked %s\n", argv[1]);
	return EXIT_SUCCESS;
}

static bool in(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* grant/ungrant: read the targets, change them, write them back. */
static int cmd_grant(struct tef_client *c, int argc, char **argv, bool grant)
{
	struct tef_registration *reg = NULL, *updated = NULL;
	struct tef_update_req u = {.set_targets = true};
	_cleanup_free_ const char **t = NULL;
	size_t n = 0;
	int r, rsc = 0;

	if (argc < 3) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	for (int i = 2; i < argc; i++)
		if (!tef_principal_is_valid(argv[i])) {
			fprintf(stderr,
				"tefctl: '%s' is not a principal (uid:N, gid:N, ae:ID, "
				"cse:ID or all)\n",
				argv[i]);
			return EXIT_FAILURE;
		}
	r = find(c, argv[1], &reg, &rsc);
	if (r < 0)
		return fail(r, argv[1], rsc);
	t = calloc(reg->n_targets + (size_t)argc, sizeof(char *));
	if (!t) {
		tef_registration_free(reg);
		return fail(-ENOMEM, "grant", 0);
	}
	for (size_t i = 0; i < reg->n_targets; i++)
		if (grant || !in(argv + 2, (size_t)argc - 2, reg->targets[i]))
			t[n++] = reg->targets[i];
	if (grant)
		for (int i = 2; i < argc; i++)
			if (!in(reg->targets, reg->n_targets, argv[i]) &&
			    !in((char *const *)t + reg->n_targets, n - reg->n_targets, argv[i]))
				t[n++] = argv[i];
	u.targets = t;
	u.n_targets = n;
	r = tef_update(c, NULL, argv[1], &u, &updated, &rsc);
	tef_registration_free(reg);
	return print_updated(r, rsc, updated, argv[1]);
}

static int print_tail(int fd, unsigned lines)
{
	struct stat st;
	off_t start;
	_cleanup_free_ char *buf = NULL;
	size_t len, i;
	ssize_t n;
	unsigned seen = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	start = st.st_size > 1048576 ? st.st_size - 1048576 : 0;
	len = (size_t)(st.st_size - start);
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, len, start);
	if (n < 0)
		return -errno;
	len = (size_t)n;
	for (i = len; i > 0; i--)
		if (buf[i - 1] == '\n' && i != len && ++seen == lines)
			break;
	fwrite(buf + i, 1, len - i, stdout);
	fflush(stdout);
	if (lseek(fd, start + (off_t)len, SEEK_SET) < 0)
		return -errno;
	return 0;
}

/* The settings of tefd.conf(5) that tefctl's file commands need. */
struct tefd_conf {
	char *db;
	char *master_key;
	char *audit_log;
};

static int tefd_conf_item(const char *key, const char *value, void *userdata)
{
	struct tefd_conf *rc = userdata;
	char **dst = strcmp(key, "db") == 0	      ? &rc->db
		     : strcmp(key, "master-key") == 0 ? &rc->master_key
		     : strcmp(key, "audit-log") == 0  ? &rc->audit_log
						      : NULL;

	if (!dst)
		return 0;
	free(*dst);
	*dst = strdup(value);
	return *dst ? 0 : -ENOMEM;
}

static int cmd_audit_tail(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"audit-log", required_argument, NULL, 'a'}, {"db", required_argument, NULL, 'D'},
	    {"config", required_argument, NULL, 'c'},	 {"lines", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'f'},		 {}};
	const char *conf_path = "/etc/atrest/tefd.conf"; /* as in examples/systemd */
	struct tefd_conf conf = {0};
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	bool follow = false, conf_given = false;
	unsigned lines = 20, line = 0;
	int o, r;

	optind = 0;
	while ((o = getopt_long(argc, argv, "c:n:f", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			free(path);
			path = strdup(optarg);
			break;
		case 'D':
			free(path);
			if (asprintf(&path, "%s-audit.log", optarg) < 0)
				path = NULL;
			break;
		case 'c':
			conf_path = optarg;
			conf_given = true;
			break;
		case 'n':
			lines = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			follow = true;
			break;
		default:
			return EXIT_FAILURE;
		}
	}
	/* no path given: where tefd.conf says tefd writes it */
	if (!path && (conf_given || access(conf_path, R_OK) == 0)) {
		r = conf_parse_file(conf_path, tefd_conf_item, &conf, &line);
		if (r < 0) {
			fprintf(stderr, "tefctl: %s:%u: %s\n", conf_path, line, strerror(-r));
		} else if (conf.audit_log) {
			path = TAKE_PTR(conf.audit_log);
		} else if (conf.db && asprintf(&path, "%s-audit.log", conf.db) < 0) {
			path = NULL;
		}
		free(conf.db);
		free(conf.master_key);
		free(conf.audit_log);
	}
	if (!path) {
		fprintf(stderr,
			"tefctl: audit-tail needs --audit-log FILE, --db FILE or -c TEFD.CONF\n");
		return EXIT_FAILURE;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(-errno, path, 0);
	r = print_tail(fd, lines);
	if (r < 0)
		return fail(r, path, 0);
	while (follow) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0)
			return fail(-errno, path, 0);
		if (n == 0) {
			usleep(200000);
			continue;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		fflush(stdout);
	}
	return EXIT_SUCCESS;
}

/* Writes all of buf to a new file (0600; an existing one only with force). */
static int write_file(const char *path, const uint8_t *buf, size_t len, bool force)
{
	_cleanup_close_ int fd = -1;
	size_t done = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL),
		  0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

static int cmd_backup(struct tef_client *c, int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {}};
	_cleanup_free_ uint8_t *data = NULL;
	bool force = false;
	size_t len = 0;
	int o, r, rsc = 0;

	optind = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'f')
			return EXIT_FAILURE;
		force = true;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	r = tef_backup(c, &data, &len, &rsc);
	if (r < 0)
		return fail(r, "backup", rsc);
	r = write_file(argv[optind], data, len, force);
	if (r == -EEXIST) {
		fprintf(stderr, "tefctl: '%s' exists: use --force to overwrite it\n", argv[optind]);
		return EXIT_FAILURE;
	}
	if (r < 0)
		return fail(r, argv[optind], 0);
	if (!arg_json)
		printf("backup of %zu bytes written to %s (keys wrapped under the master key)\n",
		       len, argv[optind]);
	return EXIT_SUCCESS;
}

static int read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	struct stat st;
	size_t done = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = done;
	return 0;
}

/*
 * Offline restore: tefd must be stopped. The backup is verified (with the
 * master key when known), then copied next to the database and renamed
 * over it, so a crash leaves the old or the new database, never half of one.
 */
static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
					     {"db", required_argument, NULL, 'd'},
					     {"master-key", required_argument, NULL, 'm'},
					     {"config", required_argument, NULL, 'c'},
					     {}};
	struct tefd_conf rc = {0};
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *tmp = NULL, *wal = NULL, *shm = NULL;
	uint8_t *master = NULL;
	bool force = false;
	unsigned line = 0;
	size_t len = 0;
	struct stat st;
	int o, r, rcode = EXIT_FAILURE;

	optind = 0;
	while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (o) {
		case 'f':
			force = true;
			break;
		case 'd':
			tefd_conf_item("db", optarg, &rc);
			break;
		case 'm':
			tefd_conf_item("master-key", optarg, &rc);
			break;
		case 'c':
			r = conf_parse_file(optarg, tefd_conf_item, &rc, &line);
			if (r < 0) {
				fprintf(stderr, "tefctl: %s:%u: %s\n", optarg, line, strerror(-r));
				goto out;
			}
			break;
		default:
			goto out;
		}
	}
	if (optind != argc - 1 || !rc.db) {
		usage(stderr);
		goto out;
	}
	r = read_file(argv[optind], &data, &len);
	if (r < 0) {
		fail(r, argv[optind], 0);
		goto out;
	}
	if (len < 16 || memcmp(data, "SQLite format 3", 16) != 0) {
		fprintf(stderr, "tefctl: '%s' is not a tefd backup\n", argv[optind]);
		goto out;
	}
	if (rc.master_key) {
		r = keystore_master_key_load(rc.master_key, &master);
		if (r == 0)
			r = keystore_verify_file(argv[optind], master);
		if (r < 0) {
			fprintf(stderr, "tefctl: '%s' %s\n", argv[optind],
				r == -EKEYREJECTED ? "holds keys this master key does not unwrap"
						   : "cannot be verified");
			goto out;
		}
	} else {
		fprintf(stderr, "tefctl: no master key given: tefd will verify the keys when it "
				"starts\n");
	}
	if (asprintf(&tmp, "%s.restore", rc.db) < 0 || asprintf(&wal, "%s-wal", rc.db) < 0 ||
	    asprintf(&shm, "%s-shm", rc.db) < 0)
		goto out;
	/* a -shm file means tefd is running (or crashed): restoring under it would corrupt */
	if (!force && (lstat(rc.db, &st) == 0 || lstat(shm, &st) == 0)) {
		fprintf(stderr, "tefctl: '%s' exists%s: stop tefd and use --force to replace it\n",
			rc.db, lstat(shm, &st) == 0 ? " and may be in use" : "");
		goto out;
	}
	(void)unlink(tmp);
	r = write_file(tmp, data, len, false);
	if (r < 0) {
		fail(r, tmp, 0);
		goto out;
	}
	if (rename(tmp, rc.db) < 0) {
		fail(-errno, rc.db, 0);
		(void)unlink(tmp);
		goto out;
	}
	/* the old database's WAL must not be replayed onto the restored one */
	(void)unlink(wal);
	(void)unlink(shm);
	printf("restored %s from %s\n", rc.db, argv[optind]);
	rcode = EXIT_SUCCESS;
out:
	sodium_free(master);
	free(rc.db);
	free(rc.master_key);
	free(rc.audit_log);
	return rcode;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {}};
	struct tef_client *c = NULL;
	const char *cmd;
	int o, r, rc;

	log_open("tefctl", LOG_TARGET_STDERR);
	log_set_max_level(getenv("TEFCTL_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	/* options before the command only: "+" stops at the first non-option */
	while ((o = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			arg_socket = optarg;
			break;
		case 'j':
			arg_json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			puts("tefctl " ATREST_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_FAILURE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "audit-tail") == 0)
		return cmd_audit_tail(argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cmd_restore(argc, argv);

	r = tef_client_new_unix(arg_socket, &c);
	if (r < 0)
		return fail(r, arg_socket, 0);
	if (strcmp(cmd, "list") == 0)
		rc = cmd_list(c, argc, argv);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(c, argc, argv);
	else if (strcmp(cmd, "renew") == 0)
		rc = cmd_renew(c, argc, argv);
	else if (strcmp(cmd, "revoke") == 0)
		rc = cmd_revoke(c, argc, argv);
	else if (strcmp(cmd, "grant") == 0)
		rc = cmd_grant(c, argc, argv, true);
	else if (strcmp(cmd, "ungrant") == 0)
		rc = cmd_grant(c, argc, argv, false);
	else if (strcmp(cmd, "transfer") == 0)
		rc = cmd_transfer(c, argc, argv);
	else if (strcmp(cmd, "backup") == 0)
		rc = cmd_backup(c, argc, argv);
	else {
		fprintf(stderr, "tefctl: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_FAILURE;
	}
	tef_client_free(c);
	return rc;
}
