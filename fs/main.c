/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs: parses options, opens the cache and the clients, mounts, runs the FUSE loop, tears down. */
#include <errno.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest-config.h"
#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/secmem.h"
#include "atrest/tef_client.h"
#include "atrestfs.h"
#include "cache.h"

struct fs *the_fs;

/* The strings fuse_opt fills; parsed and checked after. */
struct raw_options {
	char *tef, *cache, *ae, *segment_size, *protect, *share, *key_ttl, *key_cache, *cache_size;
	char *ae_lease;
	char *hcse_cert, *hcse_key, *hcse_ca, *hcse_timeout;
	char *uploads;
	char *url;
	int n_nonopt;
	bool help, version;
	char *bad;
};

enum {
	KEY_HELP,
	KEY_VERSION,
};

#define OPT(t, m) { t, offsetof(struct raw_options, m), 0 }
static const struct fuse_opt option_spec[] = {
	OPT("tef=%s", tef),
	OPT("cache=%s", cache),
	OPT("ae=%s", ae),
	OPT("segment_size=%s", segment_size),
	OPT("protect=%s", protect),
	OPT("share=%s", share),
	OPT("key_ttl=%s", key_ttl),
	OPT("key_cache=%s", key_cache),
	OPT("ae_lease=%s", ae_lease),
	OPT("cache_size=%s", cache_size),
	OPT("hcse_cert=%s", hcse_cert),
	OPT("hcse_key=%s", hcse_key),
	OPT("hcse_ca=%s", hcse_ca),
	OPT("hcse_timeout=%s", hcse_timeout),
	OPT("uploads=%s", uploads),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

/* Options mount(8) and fstab put in that mean nothing to a FUSE filesystem. */
static bool is_mount_only_option(const char *o)
{
	static const char *const names[] = { "_netdev", "nofail", "auto", "noauto", "user",
					     "users", "nouser", "defaults", "owner", "group" };

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcmp(o, names[i]) == 0)
			return true;
	return strncmp(o, "x-", 2) == 0 || strncmp(o, "comment=", 8) == 0;
}

/* Mount options the kernel or libfuse itself understands. */
static bool is_fuse_option(const char *o)
{
	static const char *const names[] = {
		"allow_other", "allow_root", "default_permissions", "auto_unmount", "rw", "ro",
		"suid", "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync", "dirsync",
		"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
		"strictatime", "nostrictatime", "lazytime", "nolazytime", "blkdev",
	};
	static const char *const prefixes[] = { "fsname=", "subtype=", "max_read=", "blksize=",
						"context=", "fscontext=", "defcontext=",
						"rootcontext=", "max_idle_threads=", "max_threads=" };

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcmp(o, names[i]) == 0)
			return true;
	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
		if (strncmp(o, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw_options *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		/* mount.fuse3 / fstab: the source (HCSE URL) comes first */
		if (o->n_nonopt++ == 0) {
			o->url = strdup(arg);
			return 0;
		}
		return 1;
	case FUSE_OPT_KEY_OPT:
		if (is_mount_only_option(arg))
			return 0;
		if (arg[0] == '-' || is_fuse_option(arg))
			return 1;
		if (!o->bad)
			o->bad = strdup(arg);
		return 0;
	case KEY_HELP:
		o->help = true;
		return 0;
	case KEY_VERSION:
		o->version = true;
		return 0;
	default:
		return 1;
	}
}

static void raw_options_free(struct raw_options *o)
{
	char **strs[] = { &o->tef,	   &o->cache,	   &o->segment_size, &o->protect,
			  &o->share,	   &o->key_ttl,	   &o->cache_size,   &o->hcse_cert,
			  &o->hcse_key,    &o->hcse_ca,	   &o->hcse_timeout, &o->url,
			  &o->bad,	   &o->key_cache,  &o->ae_lease,     &o->uploads };

	for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: atrestfs HCSE-URL MOUNTPOINT -o tef=SOCKET,cache=DIR [,ae=NAME]\n"
		"                [,segment_size=SIZE] [,protect=confidentiality|integrity]\n"
		"                [,share=owner|group|all] [,key_ttl=SECONDS] [,key_cache=SECONDS]\n"
		"                [,cache_size=SIZE] [,ae_lease=SECONDS]\n"
		"                [,hcse_cert=FILE,hcse_key=FILE] [,hcse_ca=FILE]\n"
		"                [,hcse_timeout=SECONDS] [,uploads=N] [,allow_other]\n"
		"                [,default_permissions]\n"
		"                [-f] [-d]\n"
		"\n"
		"Seals the files written under MOUNTPOINT into oneM2M ESData, registers their keys\n"
		"with tefd and stores them on the Hosting CSE at HCSE-URL. See atrestfs(1).\n");
}

static int bad_value(const char *name, const char *value)
{
	fprintf(stderr, "atrestfs: invalid value '%s' for option '%s'\n", value, name);
	return -EINVAL;
}

/* A decimal number (seconds, a count) within [min, max]: -EINVAL for anything else. */
static int parse_decimal(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long t;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	t = strtoull(s, &end, 10);
	if (errno || end == s || *end || t < min || t > max)
		return -EINVAL;
	*ret = t;
	return 0;
}

/* "1048576", "1M", "64k", "2G": -EINVAL for anything else. */
static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1024;
			break;
		case 'm':
		case 'M':
			mul = 1024 * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024ull * 1024 * 1024;
			break;
		default:
			return -EINVAL;
		}
		if (end[1] && strcasecmp(end + 1, "iB") != 0 && strcasecmp(end + 1, "B") != 0)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

static int check_options(struct raw_options *raw, struct fs_options *o)
{
	uint64_t v;

	if (raw->bad) {
		fprintf(stderr, "atrestfs: unknown option '%s'\n", raw->bad);
		return -EINVAL;
	}
	if (!raw->url) {
		fprintf(stderr, "atrestfs: missing HCSE-URL\n");
		return -EINVAL;
	}
	if (strncmp(raw->url, "http://", 7) != 0 && strncmp(raw->url, "https://", 8) != 0)
		return bad_value("HCSE-URL", raw->url);
	o->hcse_url = raw->url;
	if (!raw->tef || !*raw->tef) {
		fprintf(stderr, "atrestfs: missing option 'tef=SOCKET'\n");
		return -EINVAL;
	}
	if (!raw->cache || !*raw->cache) {
		fprintf(stderr, "atrestfs: missing option 'cache=DIR'\n");
		return -EINVAL;
	}
	if (raw->cache[0] != '/')
		return bad_value("cache", raw->cache);
	o->tef = raw->tef;
	o->cache = raw->cache;
	o->ae = raw->ae ? raw->ae : strdup("atrestfs");
	for (const char *p = o->ae; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return bad_value("ae", o->ae);
	if (!*o->ae)
		return bad_value("ae", o->ae);

	o->segment_size = SEAL_SEGMENT_SIZE_DEFAULT;
	if (raw->segment_size) {
		if (parse_size(raw->segment_size, &v) < 0 || v < SEAL_SEGMENT_SIZE_MIN ||
		    v > SEAL_SEGMENT_SIZE_MAX)
			return bad_value("segment_size", raw->segment_size);
		o->segment_size = v;
	}
	o->protection = SEAL_CONFIDENTIALITY;
	if (raw->protect) {
		if (strcmp(raw->protect, "confidentiality") == 0)
			o->protection = SEAL_CONFIDENTIALITY;
		else if (strcmp(raw->protect, "integrity") == 0)
			o->protection = SEAL_INTEGRITY;
		else
			return bad_value("protect", raw->protect);
	}
	o->share = SHARE_OWNER;
	if (raw->share) {
		if (strcmp(raw->share, "owner") == 0)
			o->share = SHARE_OWNER;
		else if (strcmp(raw->share, "group") == 0)
			o->share = SHARE_GROUP;
		else if (strcmp(raw->share, "all") == 0)
			o->share = SHARE_ALL;
		else
			return bad_value("share", raw->share);
	}
	if (raw->key_ttl && parse_decimal(raw->key_ttl, 1, UINT64_MAX, &o->key_ttl) < 0)
		return bad_value("key_ttl", raw->key_ttl);
	/* DESIGN.md 8: a released key serves the same caller's opens this long */
	o->key_cache = KEY_CACHE_DEFAULT;
	if (raw->key_cache && parse_decimal(raw->key_cache, 0, 3600, &o->key_cache) < 0)
		return bad_value("key_cache", raw->key_cache);
	/* lease.c: a mount that vanished frees its AE for another this long after */
	o->ae_lease = 120;
	if (raw->ae_lease && parse_decimal(raw->ae_lease, 0, 86400, &o->ae_lease) < 0)
		return bad_value("ae_lease", raw->ae_lease);
	if (o->ae_lease && o->ae_lease < 4)
		return bad_value("ae_lease", raw->ae_lease);
	o->cache_size = 4ull * 1024 * 1024 * 1024;
	if (raw->cache_size) {
		if (parse_size(raw->cache_size, &v) < 0 || v < 16 * o->segment_size)
			return bad_value("cache_size", raw->cache_size);
		o->cache_size = v;
	}
	o->hcse_timeout_ms = 5000;
	if (raw->hcse_timeout) {
		if (parse_size(raw->hcse_timeout, &v) < 0 || v == 0 || v > 600)
			return bad_value("hcse_timeout", raw->hcse_timeout);
		o->hcse_timeout_ms = (unsigned)v * 1000;
	}
	/* uploader.c: files uploaded at once, each in its own order */
	o->uploads = 4;
	if (raw->uploads) {
		if (parse_decimal(raw->uploads, 1, UPLOADS_MAX, &v) < 0)
			return bad_value("uploads", raw->uploads);
		o->uploads = (unsigned)v;
	}
	if ((raw->hcse_cert != NULL) != (raw->hcse_key != NULL)) {
		fprintf(stderr, "atrestfs: options 'hcse_cert' and 'hcse_key' go together\n");
		return -EINVAL;
	}
	o->hcse_cert = raw->hcse_cert;
	o->hcse_key = raw->hcse_key;
	o->hcse_ca = raw->hcse_ca;
	return 0;
}

static void fs_init_cb(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* issue 5: large writes; the kernel caps this at its max_pages */
	conn->max_write = 1024 * 1024;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* every write must pass through here to be sealed and committed at close */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* every change passes through this kernel, which keeps its pages in
	 * step: a new mtime seen at the next getattr (our clock, not the
	 * kernel's) must not drop them; opens decide (file.c, keep_cache) */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init_cb,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readlink = fs_op_readlink,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.symlink = fs_op_symlink,
	.rename = fs_op_rename,
	.link = fs_op_link,
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.releasedir = fs_op_releasedir,
	.fsyncdir = fs_op_fsyncdir,
	.statfs = fs_op_statfs,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
	.create = fs_op_create,
	.fallocate = fs_op_fallocate,
};

/* The root directory exists before the first mount's uploads (ino 1). */
static int ensure_root(struct fs *fs)
{
	struct node *root = ns_get(fs, 1);

	if (root)
		return 0;
	root = ns_node_new(fs, 1);
	if (!root)
		return -ENOMEM;
	root->mode = S_IFDIR | 0755;
	node_touch(root, true, true, true);
	ns_insert(fs, root);
	return fs_node_save(fs, root, true);
}

/* Orphans are nodes unlinked while open when atrestfs stopped: reap them now. */
static void reap_orphans(struct fs *fs)
{
	for (size_t b = 0; b < fs->n_buckets; b++) {
		struct node *n = fs->by_ino[b], *next;

		for (; n; n = next) {
			next = n->h_ino_next;
			if (n->ino != 1 && n->parent == 0) {
				n->unlinked = true;
				fs_maybe_reap(fs, n);
			}
		}
	}
}

static const char *cse_rn_of(const char *url)
{
	const char *s = strrchr(url, '/');

	return s && s[1] ? s + 1 : "cse-in";
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct raw_options raw = { 0 };
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	_cleanup_free_ char *fsname = NULL, *origin = NULL;
	struct fs fs = { 0 };
	int fresh = 0, r, ret = 1;

	if (fuse_opt_parse(&args, &raw, option_spec, opt_proc) != 0) {
		usage(stderr);
		goto early;
	}
	if (raw.help || raw.version) {
		if (raw.help)
			usage(stdout);
		else
			printf("atrestfs %s (FUSE %s)\n", ATREST_VERSION, fuse_pkgversion());
		ret = 0;
		goto early;
	}
	if (fuse_parse_cmdline(&args, &cmd) != 0) {
		usage(stderr);
		goto early;
	}
	if (!cmd.mountpoint) {
		fprintf(stderr, "atrestfs: missing MOUNTPOINT\n");
		usage(stderr);
		goto early;
	}
	if (check_options(&raw, &fs.opt) < 0) {
		free(fs.opt.ae ? fs.opt.ae : raw.ae);
		goto early;
	}
	fs.opt.mountpoint = cmd.mountpoint;
	fs.opt.foreground = cmd.foreground;
	fs.opt.debug = cmd.debug;
	/* the kernel checks mode bits: access rules of the files themselves are tefd's */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	/* modes come from the HCSE's labels, which it could forge (docs/SECURITY.md):
	 * no set-user-ID executables or device nodes, unless the operator's own
	 * `suid` or `dev` (which come later, and win) asks for them */
	fuse_opt_insert_arg(&args, 1, "-onosuid,nodev");
	if (asprintf(&fsname, "-ofsname=%s,subtype=atrestfs", fs.opt.hcse_url) < 0)
		return 1;
	/* fuse_opt treats ',' as a separator: a URL with one stays out of fsname */
	fuse_opt_add_arg(&args, strchr(fs.opt.hcse_url, ',') ? "-osubtype=atrestfs" : fsname);

	/* until it daemonises, a failure is told to whoever started it (syslog after) */
	log_open("atrestfs", LOG_TARGET_STDERR);
	if (fs.opt.debug)
		log_set_max_level(LOG_DEBUG);
	if (sodium_init() < 0) {
		log_error("libsodium cannot initialise");
		return 1;
	}
	/* Open files' plaintext and their keys live in this process: a core
	 * dump would put them on the gateway's disk (DESIGN.md, Secrets). */
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 }) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		log_error_errno(-errno, "cannot disable core dumps");
		return 1;
	}

	/* Plaintext buffers are locked (secmem.h): RLIMIT_MEMLOCK bounds them.
	 * A writer holds up to NODE_MAX_DIRTY + NODE_MAX_SEALING segments. */
	size_t memlock;
	r = secmem_init(&memlock);
	if (r < 0)
		log_warning_errno(r, "cannot raise RLIMIT_MEMLOCK");
	else if (memlock < 4 * (NODE_MAX_DIRTY + NODE_MAX_SEALING + 1) * fs.opt.segment_size)
		log_warning("RLIMIT_MEMLOCK is %zu KiB: plaintext is kept in locked memory, so"
			    " writes and reads fail with ENOMEM beyond it; raise it (LimitMEMLOCK= or"
			    " limits.conf memlock) to at least %" PRIu64 " KiB", memlock / 1024,
			    4 * (NODE_MAX_DIRTY + NODE_MAX_SEALING + 1) * fs.opt.segment_size / 1024);

	the_fs = &fs;
	pthread_mutex_init(&fs.lock, NULL);
	fs.ae_path = fs.opt.ae;
	fs.cse_rn = (char *)cse_rn_of(fs.opt.hcse_url);

	r = cache_open(fs.opt.cache, fs.opt.cache_size, &fs.cache, &fresh);
	if (r < 0)
		goto out;
	struct hcse_tls tls = { fs.opt.hcse_cert, fs.opt.hcse_key, fs.opt.hcse_ca };
	if (asprintf(&origin, "C%s", fs.opt.ae) < 0)
		goto out;
	r = hcse_client_new(fs.opt.hcse_url, origin, &tls, fs.opt.hcse_timeout_ms, &fs.hcse);
	if (r < 0) {
		log_error_errno(r, "cannot use HCSE URL '%s'", fs.opt.hcse_url);
		goto out;
	}
	r = tef_client_new_unix(fs.opt.tef, &fs.tef);
	if (r < 0) {
		log_error_errno(r, "cannot use the tefd socket '%s'", fs.opt.tef);
		goto out;
	}
	r = health_attach(&fs);
	if (r >= 0)
		r = keys_init(&fs);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&fs.lock);
	r = ns_init(&fs);
	pthread_mutex_unlock(&fs.lock);
	if (r < 0) {
		log_error_errno(r, "cannot load the cache index in '%s'", fs.opt.cache);
		goto out;
	}
	r = remote_setup(&fs, fresh);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&fs.lock);
	r = ensure_root(&fs);
	reap_orphans(&fs);
	pthread_mutex_unlock(&fs.lock);
	if (r < 0)
		goto out;

	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) /* libfuse named the option it did not understand */
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	/* libfuse unmounts on SIGHUP too; an operator's SIGHUP (or a closed
	 * terminal of a -f mount) must not drop the mount: atrestfs keeps no
	 * log file to reopen, so it ignores it (atrestfs(1), SIGNALS) */
	if (signal(SIGHUP, SIG_IGN) == SIG_ERR)
		goto out_signals;
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out_unmount;
	if (!fs.opt.foreground)
		log_open("atrestfs", LOG_TARGET_SYSLOG);
	/* threads only after daemonising: fork() keeps just the caller */
	cache_batch_writes(fs.cache);
	r = uploader_start(&fs, &fs.up);
	if (r < 0) {
		log_error_errno(r, "cannot start the uploader");
		goto out_unmount;
	}
	/* full segments are sealed on two threads while the writer fills the next */
	r = data_sealers_start(2);
	if (r < 0)
		log_warning_errno(r, "no sealer threads: sealing in the writers");
	r = prefetch_start(&fs, &fs.pf);
	if (r < 0) {
		log_error_errno(r, "cannot start the read-ahead threads");
		goto out_unmount;
	}
	log_info("mounted '%s' on '%s' (AE '%s', cache '%s')", fs.opt.hcse_url, cmd.mountpoint,
		 fs.opt.ae, fs.opt.cache);

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
	/* UINT_MAX is fuse_parse_cmdline()'s "not given": libfuse 3.14 would
	 * print a spurious warning for it */
	if (cmd.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
	if (cmd.max_threads > 0 && cmd.max_threads <= 100000)
		fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
	/* libfuse returns the number of the signal that ended the loop (SIGTERM,
	 * SIGINT): a requested stop, not a failure; errors are negative */
	r = fuse_session_loop_mt(se, loop);
	if (r > 0)
		log_info("stopping on signal %d", r);
	ret = r < 0;
	fuse_loop_cfg_destroy(loop);

out_unmount:
	fuse_session_unmount(se);
	fs.pf = prefetch_stop(fs.pf);
	data_sealers_stop();
	/* unmount flushes what it can; the rest stays queued in the index */
	fs.up = uploader_stop(fs.up, 3000);
	health_report_unmount(&fs);
	lease_release(&fs);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fs.up = uploader_stop(fs.up, 0);
	pthread_mutex_lock(&fs.lock);
	ns_done(&fs);
	pthread_mutex_unlock(&fs.lock);
	keys_done(&fs);
	health_detach(&fs);
	fs.tef = tef_client_free(fs.tef);
	fs.hcse = hcse_client_free(fs.hcse);
	fs.cache = cache_close(fs.cache);
	free(fs.opt.ae);
	pthread_mutex_destroy(&fs.lock);
early:
	fuse_opt_free_args(&args);
	free(cmd.mountpoint);
	raw_options_free(&raw);
	return ret;
}
