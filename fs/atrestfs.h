/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs internals shared by the operation families, the namespace, the cache and the uploader. */
#pragma once

#define FUSE_USE_VERSION 312

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "atrest/hcse_client.h" /* HCSE_CLIENT_CONNECTIONS */
#include "atrest/layout.h" /* resource names under the AE (DESIGN.md 5) */
#include "atrest/seal.h"
#include "atrest/tef_client.h"

struct hcse_client;
struct cache;
struct uploader;
struct prefetch;
struct keys;

enum share_mode {
	SHARE_OWNER,
	SHARE_GROUP,
	SHARE_ALL,
};

#define UPLOADS_MAX HCSE_CLIENT_CONNECTIONS /* one kept connection per upload thread */

struct fs_options {
	char *hcse_url;
	char *mountpoint;
	char *tef;   /* tefd Unix socket */
	char *cache; /* cache directory */
	char *ae;    /* AE resource name, default "atrestfs" */
	uint64_t segment_size;
	enum seal_protection protection;
	enum share_mode share;
	uint64_t key_ttl;    /* seconds, 0: tefd's default */
	uint64_t key_cache;  /* seconds a released key serves the same caller again, 0: never */
	uint64_t cache_size; /* bytes the cache may hold */
	uint64_t ae_lease;   /* seconds of the lease on the AE (lease.c), 0: none */
	char *hcse_cert, *hcse_key, *hcse_ca;
	unsigned hcse_timeout_ms;
	unsigned uploads; /* files uploaded at once (1..UPLOADS_MAX) */
	bool allow_other;
	bool foreground;
	bool debug;
};

/* What the kernel told us about the caller of one request (DESIGN.md 2). */
struct caller {
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	gid_t groups[64];
};

/* One committed or working segment: absent when gen == 0. */
struct seg {
	uint64_t gen;
	uint32_t len;
	bool uploaded;
};

/* A segment being written, plaintext in memory until sealed. */
struct dseg {
	uint64_t idx;
	uint8_t *buf; /* segment_size bytes, zero beyond len; wiped on free */
	uint32_t len;
	uint64_t touched;
};

#define NODE_MAX_DIRTY 8
#define NODE_MAX_SEALING 2

/* An inode: a directory, a file or a symlink; every field under fs->lock
 * unless marked "data": those are under node->data_lock. */
struct node {
	uint64_t ino;
	uint64_t parent;
	char *name;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
	char *symlink;

	/* regular files: the sealing identity (DESIGN.md 4) */
	char file_id[33];
	char *cred_id;
	char *rkid;
	enum seal_protection protection;
	uint32_t seg_size;
	uint64_t version;        /* last committed (0: none yet) */
	uint64_t remote_version; /* last acknowledged by hcsed */
	uint64_t remote_size;    /* the length of that version */
	uint64_t meta_seq;       /* bumps when labels must be pushed again */
	int64_t expires;         /* owner-set expiry (unix s) or 0 */
	int64_t key_expires;     /* the registration's expiry as tefd last said (unix s) */
	char *targets;           /* the registration's targetIDs, comma-separated */
	char *xattrs;            /* other user.* attributes: "encoded-name=compact-JOSE\n" lines */
	uint64_t xattrs_ver;     /* bumps when they change */
	uint64_t xattrs_rver;    /* the version stored on the HCSE as contentInstance xa<N> */
	uint64_t seals_saved;    /* the bound on seals under the file's key the index holds */
	bool meta_dirty;         /* labels must be pushed */
	bool remote_created;
	bool segs_known;         /* the committed segment list is loaded */

	/* data */
	pthread_mutex_t data_lock;
	struct seg *csegs; /* committed, indexed by segment */
	size_t n_csegs;
	struct seg *wsegs; /* working copy (flushed but uncommitted entries have gen == version + 1) */
	size_t n_wsegs;
	struct dseg dirty[NODE_MAX_DIRTY];
	size_t n_dirty;
	bool content_dirty; /* a commit is due */
	uint64_t content_seq; /* bumps on every change: read caches compare it */
	/* full segments handed to the sealer threads (data.c) */
	unsigned n_sealing;
	uint64_t sealing_idx[NODE_MAX_SEALING];
	int seal_error;
	pthread_cond_t seal_cond;
	uint64_t touch_clock;
	uint64_t seals; /* made under the file's key, every open and mount counted (an upper bound) */
	/* rotate.c: a fingerprint of the key the file was rotated to in this mount
	 * (keys of handles opened before it are stale), and when to try again
	 * after a rotation failed (CLOCK_MONOTONIC seconds) */
	uint8_t key_fp[16];
	bool key_fp_set;
	int64_t rotate_retry;
	void *retired; /* earlier cred_id/rkid strings: freed with the node (unlocked readers) */

	/* contentInstances of other AEs (foreign.c): never stored, read-only */
	bool foreign;
	bool foreign_jose;
	uint64_t foreign_checked; /* directories: when their foreign objects were listed */

	/* kernel and open references */
	uint64_t nlookup;
	unsigned n_open;
	bool unlinked;
	/* the kernel's page cache matches content_seq kc_seq (file.c: keep_cache):
	 * set at flush and release, unless a write came while another handle was
	 * open (kc_shared, cleared when the last handle goes) */
	uint64_t kc_seq;
	bool kc_valid, kc_shared;

	/* hash chains and the directory tree */
	struct node *h_ino_next;
	struct node *h_name_next;
	struct node *first_child, *next_sibling, *prev_sibling;
	unsigned n_subdirs; /* children that are directories (st_nlink) */
	bool counted_dir;   /* counted in its parent's n_subdirs */
};

struct fs {
	struct fs_options opt;
	pthread_mutex_t lock;
	struct hcse_client *hcse;
	struct tef_client *tef;
	struct cache *cache;
	struct uploader *up;
	struct prefetch *pf;
	struct outage *tef_outage, *hcse_outage; /* reachability of the peers (health.c) */
	struct keys *keys; /* keys.c: registration pool, per-caller key cache */
	char *ae_path; /* the AE's path relative to the CSE: "atrestfs" */
	char *cse_rn;  /* "cse-in", for user.onem2m.resource */
	/* lease.c: the AE's lease ends then (Unix s; 0: not held); lost to another
	 * instance. Touched at mount, by the uploader, then at unmount: in turn. */
	uint64_t lease_until;
	bool lease_lost;
	uint64_t next_ino;
	_Atomic uint64_t last_io_ns; /* CLOCK_MONOTONIC of the last read or write */
	_Atomic bool readahead_set; /* readahead.c: done at the first lookup */
	/* namespace hash tables */
	struct node **by_ino;
	struct node **by_name;
	size_t n_buckets;
	size_t n_nodes;
};

extern struct fs *the_fs;

/* An open file: the key released to this caller only (never shared), and a
 * plaintext read cache of one segment. */
struct handle {
	struct node *node;
	struct seal_key *key;
	int flags;
	uint64_t rc_idx, rc_gen_seq;
	uint8_t *rc_buf; /* segment_size, or NULL */
	uint32_t rc_len;
	uint32_t rc_hi; /* rc_buf's leading bytes that may be non-zero: wiped, the rest is zero */
	bool rc_valid;
	bool wrote; /* under node->data_lock: wrote, truncated or created; its close commits */
	char *fbuf; /* a foreign object's plaintext, opened for this caller: secmem, flen + 1 bytes */
	size_t flen;
	struct caller caller; /* who opened it: a rotated file's new key is asked for on its behalf */
};

/* ---- ns.c: the namespace (every call under fs->lock) ---- */
int ns_init(struct fs *fs);
void ns_done(struct fs *fs);
struct node *ns_get(struct fs *fs, uint64_t ino);
struct node *ns_lookup(struct fs *fs, uint64_t parent, const char *name);
/* New node with fresh inode number, not yet linked. Caller links or frees. */
struct node *ns_node_new(struct fs *fs, uint64_t ino);
void ns_node_free(struct node *n);
void ns_insert(struct fs *fs, struct node *n);  /* by ino, and into its parent if it has a name */
void ns_unlink_name(struct fs *fs, struct node *n); /* removes the (parent, name) entry */
void ns_link_name(struct fs *fs, struct node *n, uint64_t parent, const char *name_owned);
void ns_remove(struct fs *fs, struct node *n); /* by ino too; does not free */
bool ns_dir_is_empty(struct node *dir);
void node_fill_stat(const struct node *n, struct stat *st);
void node_touch(struct node *n, bool mtime, bool ctime, bool atime);
bool node_is_pending(const struct node *n);
/* The node's path in the mount ("/dir/file"), or NULL if unlinked or out of memory;
 * caller frees. */
char *ns_path(struct fs *fs, const struct node *n);

/* Encodes a file name into something a oneM2M label/rn can carry; reversible. */
char *name_encode(const char *name);
char *name_decode(const char *enc);
/* The oneM2M resource name of a node's container: "i<ino>". */
void node_rn(const struct node *n, char buf[32]);
/* Labels describing a node (DESIGN.md 5); free with labels_free. */
int node_labels(const struct node *n, uint64_t size, uint64_t version, char ***ret, size_t *ret_n);
void labels_free(char **l, size_t n);
/* The largest inode number a container's labels may name: new nodes take
 * numbers above the largest known, which must never wrap (to 0, FUSE's none). */
#define NS_INO_MAX (UINT64_C(1) << 48)
/* Fills a node from the labels of its container; -EBADMSG if not ours, or if
 * they name what the kernel or the namespace cannot take (the HCSE is not
 * trusted: a bad name, inode number, size or segment size). */
int node_from_labels(struct node *n, const char *const *labels, size_t n_labels);
/* Frees a calloc'd node that node_from_labels() filled and nobody adopted. */
void node_from_labels_free(struct node *n);

/* ---- keys.c: tefd on behalf of callers ---- */
void caller_from_req(fuse_req_t req, struct caller *ret);
/* The pool and cache (after fs->tef exists); keys_done de-registers unused pooled keys. */
int keys_init(struct fs *fs);
void keys_done(struct fs *fs);
/* Registers a new key for a file owned by `c`, filling cred_id/rkid/protection. */
int keys_register(struct fs *fs, const struct caller *c, struct node *n, struct seal_key **ret_key);
/* The file's key for this caller only: -EACCES, -EKEYEXPIRED, -EIO. *ret_min_version gets tefd's recorded version. */
int keys_retrieve(struct fs *fs, const struct caller *c, const struct node *n,
		  struct seal_key **ret_key, uint64_t *ret_min_version);
int keys_set_targets(struct fs *fs, const struct caller *c, struct node *n, const char *targets);
int keys_set_expires(struct fs *fs, const struct caller *c, struct node *n, int64_t when);
/* Adopts tefd's view of a registration: targets and expiry (takes fs->lock). */
void node_adopt_registration(struct fs *fs, struct node *n, const struct tef_registration *reg);
int keys_record_version(struct fs *fs, uid_t uid, gid_t gid, const char *rkid, uint64_t version);
/* Destroys a removed file's key at tefd: 0, or -errno (unreachable: retry later). */
int keys_deregister(struct fs *fs, uid_t uid, gid_t gid, const char *rkid);
/* Drops every caller's cached copy of the key rkid (its targets, owner or
 * expiry are about to change at tefd): the next open asks tefd again. */
void keys_forget(struct fs *fs, const char *rkid);

/* A new key for n's owner with the registration's targets and expiry policy
 * (rotate.c): tefd's answer with the key, caller frees it. -EIO and others. */
int keys_register_rotation(struct fs *fs, struct node *n, struct tef_registration **ret);

/* ---- rotate.c: a key is rotated long before 2^32 seals (DESIGN.md 4) ---- */
/* True when n's key made SEAL_ROTATE_SEALS seals and no failed try is recent (data_lock held). */
bool rotate_is_due(const struct node *n);
/*
 * Commits n's working state as a new version under a new key (data_lock
 * held, sealers idle): registers it for the owner, re-seals every segment
 * (the old ones verified with key) and the sealed attributes, commits, and
 * queues the old key's de-registration until hcsed acknowledges the new
 * version. -EAGAIN when it could not (logged; nothing changed): the caller
 * commits under the old key. Other errors as data_commit.
 */
int rotate_commit(struct fs *fs, struct node *n, const struct seal_key *key);
/* False when n was rotated in this mount to a key other than key (data_lock held). */
bool rotate_key_is_current(const struct node *n, const struct seal_key *key);
/* Makes key the one rotate_key_is_current() accepts from now on (data_lock held). */
void rotate_key_adopt(struct node *n, const struct seal_key *key);
/* Raises n's seal count (and its saved bound) to what a verified manifest of
 * the current key says; 0 (absent: older data) counts as SEAL_ROTATE_SEALS,
 * so the next commit rotates (docs/FORMAT.md 9). data_lock and fs->lock held. */
void rotate_adopt_seals(struct node *n, uint64_t manifest_seals);
/* h's key after the file's key was rotated: asked again on behalf of h's caller
 * (DESIGN.md 8). data_lock held, dropped meanwhile. 0 or -EIO (logged). */
int rotate_rekey_handle(struct fs *fs, struct handle *h);
/* The relativeKeyID of the Credential-Id that sealed a compact object (unverified),
 * into buf; leaves buf alone when there is none. */
void rotate_kid_rkid(const char *compact, size_t len, char *buf, size_t size);
/* Frees the strings retired by rotations of n. */
void rotate_node_free(struct node *n);

/* The caller's own key for n, with the file's segment table loaded (file.c). */
int fs_open_key(struct fs *fs, const struct caller *c, struct node *n, struct seal_key **ret);

/* ---- data.c: segments, dirty buffers, commits (under node->data_lock) ---- */
int data_prepare(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t min_version);
int data_read(struct fs *fs, struct handle *h, char *out, size_t size, off_t off, size_t *ret_len);
int data_write(struct fs *fs, struct handle *h, const char *in, size_t size, off_t off);
int data_truncate(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t size);
int data_commit(struct fs *fs, struct node *n, const struct seal_key *key, bool durable);
void data_drop(struct node *n);
void data_params(const struct node *n, const struct seal_key *key, struct seal_params *p);
/* Counts one seal about to be made under n's key (data_lock held): -EDQUOT once
 * the key made SEAL_MAX_SEALS, across opens and restarts (the count is in the index). */
int data_seal_count(struct fs *fs, struct node *n);
/* Plaintext of segment idx: dirty, sealed (verified with key) or a hole, as data_read sees it;
 * *hi as segment_plain() (data.c). */
int data_segment_plain(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t idx,
		       uint8_t *buf, uint32_t *ret_len, uint32_t *hi);
/* Fills m's metadata (version, length, mode, owner, times) from n (takes fs->lock). */
void data_manifest_meta(struct fs *fs, const struct node *n, uint64_t version, uint64_t size,
			struct seal_manifest *m);
/* Seals reserved in the index at a time: one row write per this many seals. */
#define DATA_SEALS_RESERVE 65536
/* Logs that size bytes of plaintext could not be locked (secmem.h) and returns -ENOMEM. */
int plain_alloc_error(size_t size);
/* Threads that seal full segments while the writer goes on (sequential writes). */
int data_sealers_start(unsigned threads);
void data_sealers_stop(void);

/* ---- lease.c: one mount at a time per AE ---- */
/* Takes or renews the lease on the AE (at most every quarter of it unless
 * at_mount): -EBUSY while another instance holds it (logged once), an
 * HCSE error as is. 0 without a lease (ae_lease=0). */
int lease_renew(struct fs *fs, bool at_mount);
/* Gives the lease back at a clean unmount, so another mount need not wait. */
void lease_release(struct fs *fs);

/* ---- remote.c: the tree under the AE on hcsed ---- */
int remote_setup(struct fs *fs, bool rebuild);
/* Registers the mount's AE (an existing one is fine). */
int remote_ensure_ae(struct fs *fs);
char *remote_node_path(const struct fs *fs, const struct node *n); /* "ae/i5" */
int remote_fetch_segment(struct fs *fs, const struct node *n, uint64_t idx, uint64_t gen, char **ret,
			 size_t *ret_len);
int remote_fetch_manifest(struct fs *fs, const struct node *n, uint64_t version, char **ret,
			  size_t *ret_len);

/* ---- foreign.c ---- */
/* Lists the foreign contentInstances of a directory (no lock held; rate-limited). */
void foreign_refresh(struct fs *fs, uint64_t dir_ino, bool missing_name);
/* Fetches and, for compact JOSE, verifies and decrypts with the caller's key. */
int foreign_open(struct fs *fs, const struct caller *c, struct node *n, char **ret, size_t *ret_len);

/* ---- health.c: what the operator reads (issue 6 section 4) ---- */
/* Attaches an outage (atrest/outage.h) to each client: one log line per outage and recovery. */
int health_attach(struct fs *fs);
void health_detach(struct fs *fs);
/* "'/dir/file' (hcsed '/cse-in/atrestfs/i5')" for log lines, naming a file as the user and
 * the HCSE know it; takes fs->lock (not to be held). Caller frees; never NULL. */
char *fs_describe(struct fs *fs, uint64_t ino);
/* Names a file being created (not linked yet) for this thread's fs_describe; name borrowed,
 * NULL to forget it. */
void health_naming(uint64_t ino, uint64_t parent, const char *name);
/* Logs an operation that failed because a peer is down: the first one of an
 * outage by name, the rest counted for the recovery line. Returns -EIO. */
int health_failed(struct fs *fs, struct outage *o, uint64_t ino, const char *what, int r);
/* A write refused because the cache is full of pending uploads: logged at most
 * once a minute, naming the file and counting the others. Returns -ENOSPC. */
int health_cache_full(struct fs *fs, uint64_t ino);
/* Logs the unmount, with what stays queued for the next mount. */
void health_report_unmount(struct fs *fs);

/* Notes foreground I/O: the uploader yields to it for a moment. */
void fs_note_io(struct fs *fs);

/* ---- uploader.c ---- */
/* Starts the uploader thread; *ret (fs->up) is set before it runs, which reads it. */
int uploader_start(struct fs *fs, struct uploader **ret);
void uploader_kick(struct uploader *u);
/* True while uploads fail for want of the HCSE (retrying with backoff). */
bool uploader_is_offline(struct uploader *u);
/* Stops the thread after one last pass of at most `grace_ms`. */
struct uploader *uploader_stop(struct uploader *u, unsigned grace_ms);

/* ---- readahead.c ---- */
/* The mount's read-ahead raised to one segment, once, after the kernel's
 * INIT reply set it (root only; else left as it is). */
void readahead_raise(struct fs *fs);
/* The "MAJOR:MINOR" (bdi name) of the latest atrestfs mount on mountpoint in a mountinfo file. */
int readahead_bdi_of(const char *mountinfo, const char *mountpoint, char *ret, size_t size);

/* ---- prefetch.c: parallel read-ahead of sealed segments into the cache ---- */
int prefetch_start(struct fs *fs, struct prefetch **ret);
struct prefetch *prefetch_stop(struct prefetch *p);
/* Queues a fetch (no key needed: the reader verifies what lands in the cache). */
void prefetch_queue(struct prefetch *p, uint64_t ino, uint64_t idx, uint64_t gen);
/* Waits while that segment is queued or being fetched; true if it was. */
bool prefetch_wait(struct prefetch *p, uint64_t ino, uint64_t idx, uint64_t gen);

/* ---- the operation families (attr.c, dir.c, file.c, xattr.c) ---- */
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void fs_op_statfs(fuse_req_t req, fuse_ino_t ino);
void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags);
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* Replies with the entry for n (bumps its lookup count; under fs->lock). */
void fs_fill_entry(struct node *n, struct fuse_entry_param *e);
/* Drops a node for good when nothing references it any more (fs->lock held). */
void fs_maybe_reap(struct fs *fs, struct node *n);
/* Persists a node's metadata (fs->lock held); marks labels for upload. */
int fs_node_save(struct fs *fs, struct node *n, bool push_labels);

/* key_cache's default: seconds a key released to a caller serves its next opens */
#define KEY_CACHE_DEFAULT 60

#define ENTRY_TIMEOUT 1.0
#define ATTR_TIMEOUT 1.0
