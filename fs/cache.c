/* SPDX-License-Identifier: Apache-2.0 */
/* The local cache: sealed segment files plus the SQLite index (the only atrestfs file that includes sqlite3.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

struct cache {
	char *dir;
	uint64_t max_bytes;
	pthread_mutex_t lock; /* one connection, one transaction at a time */
	sqlite3 *db;

	/* Group commit (DESIGN.md 6: close() makes a version durable): version
	 * commits join one open transaction (a batch); the first close waiting
	 * for it (or, if none does, the committer thread)
	 * commits it and syncs the WAL once for all of them. Under lock. */
	pthread_t committer;
	bool committer_running, stopping;
	pthread_cond_t batch_cond;   /* stopping */
	pthread_cond_t join_cond;    /* a close joined the batch */
	bool syncing;                /* a batch is being synced */
	pthread_cond_t durable_cond; /* a batch became durable, or failed */
	uint64_t open_batch;         /* the open transaction's id, 0: none */
	uint64_t last_batch;         /* the last id handed out */
	uint64_t committed_batch;    /* batches up to this one are committed (in the WAL) */
	uint64_t durable_batch;      /* batches up to this one survive a power loss */
	int sync_error;              /* sticky: a commit or a sync failed */
	int64_t changes_committed;   /* sqlite3_total_changes64() at the last batch */
	int wal_fd;                  /* the committer's */
	unsigned arriving;           /* closes between cache_segs_sync and cache_commit (atomic) */

	/* new seg/<ino> directories whose names in seg/ are not synced yet */
	pthread_mutex_t root_lock;
	uint64_t root_gen, root_synced;

	/* writes open a batch (cache_batch_writes): a create, its write and its
	 * close are then one SQLite transaction and one WAL sync */
	bool batching;
	/* statements prepared once (stmt_get), found by their SQL literal */
	struct cached_stmt {
		const char *sql;
		sqlite3_stmt *st;
	} *stmts;
	size_t n_stmts;
};

/*
 * Sealed segments up to this size live in the index (table blobs) instead of
 * a file of their own: written in the same WAL as the commit naming them, they
 * need no file, no rename, no fdatasync and no directory fsync, so a small
 * file's close costs the one WAL sync of its batch (DESIGN.md 6). Larger ones
 * stay files: copying them through the WAL and the checkpoint would write
 * them twice. 64 KiB sealed is about 48 KiB of plaintext.
 */
#define INLINE_MAX (64 * 1024)

static const char schema[] =
	/* A small file's close writes about ten pages to the WAL (its node, its
	 * segment row and both indexes, its sealed bytes, its manifest) and
	 * waits for their sync, and most of them hold a row or two: smaller
	 * pages write and sync fewer bytes. With 2 KiB the close was 10% quicker
	 * than with 4 KiB (p50 of 2,000 closes, four runs each way); 1 KiB was
	 * slower again. It applies to a new index only: an existing one keeps
	 * the page size it was made with. */
	"PRAGMA page_size=2048;"
	/* one connection in one process: no file locks, no shared wal-index
	 * (the -shm file) at each transaction; held until cache_close() */
	"PRAGMA locking_mode=EXCLUSIVE;"
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS nodes(ino INTEGER PRIMARY KEY, parent INTEGER NOT NULL,"
	" name BLOB, mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER,"
	" atime INTEGER, mtime INTEGER, ctime INTEGER, symlink BLOB, file_id TEXT,"
	" cred_id TEXT, rkid TEXT, protection INTEGER, seg_size INTEGER, version INTEGER,"
	" remote_version INTEGER, expires INTEGER, meta_dirty INTEGER, remote_created INTEGER,"
	" segs_known INTEGER, remote_size INTEGER, targets TEXT, key_expires INTEGER, xattrs TEXT,"
	" xattrs_ver INTEGER, xattrs_rver INTEGER);"
	"CREATE TABLE IF NOT EXISTS segs(ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" gen INTEGER NOT NULL, len INTEGER NOT NULL, uploaded INTEGER NOT NULL,"
	" cached INTEGER NOT NULL, last_use INTEGER NOT NULL, PRIMARY KEY(ino, idx));"
	"CREATE INDEX IF NOT EXISTS segs_lru ON segs(uploaded, last_use);"
	"CREATE TABLE IF NOT EXISTS manifests(ino INTEGER PRIMARY KEY, version INTEGER NOT NULL,"
	" length INTEGER NOT NULL, compact TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS gc(id INTEGER PRIMARY KEY AUTOINCREMENT, ino INTEGER NOT NULL,"
	" after_version INTEGER NOT NULL, path TEXT NOT NULL);"
	/* small sealed segments (INLINE_MAX); an older cache gains the table
	 * and keeps its segment files: both are read */
	"CREATE TABLE IF NOT EXISTS blobs(ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" gen INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(ino, idx, gen));";

/*
 * The bytes of pending segments, kept by triggers in a table of this
 * connection only (memory): cache_pending_bytes() is asked at every segment
 * sealed, and summing every pending row cost more the more files awaited
 * upload (a fifth of a small file's CPU with 2,000 waiting).
 */
static const char pending_schema[] =
	"PRAGMA temp_store=MEMORY;"
	"CREATE TEMP TABLE pending(bytes INTEGER NOT NULL);"
	"INSERT INTO pending SELECT COALESCE(SUM(cached), 0) FROM segs WHERE uploaded=0;"
	"CREATE TEMP TRIGGER pending_ins AFTER INSERT ON segs WHEN NEW.uploaded=0 BEGIN"
	" UPDATE pending SET bytes = bytes + NEW.cached; END;"
	"CREATE TEMP TRIGGER pending_del AFTER DELETE ON segs WHEN OLD.uploaded=0 BEGIN"
	" UPDATE pending SET bytes = bytes - OLD.cached; END;"
	"CREATE TEMP TRIGGER pending_upd AFTER UPDATE OF uploaded, cached ON segs"
	" WHEN NEW.uploaded=0 OR OLD.uploaded=0 BEGIN"
	" UPDATE pending SET bytes = bytes + (CASE WHEN NEW.uploaded=0 THEN NEW.cached ELSE 0 END)"
	" - (CASE WHEN OLD.uploaded=0 THEN OLD.cached ELSE 0 END); END;";

/* SQLite result codes, translated once. */
static int errno_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int exec(struct cache *c, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		log_error("cache index: %s", err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return errno_from_sqlite(rc);
	}
	return 0;
}

static int prepare(struct cache *c, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(c->db, sql, -1, ret, NULL);

	if (rc != SQLITE_OK) {
		log_error("cache index: cannot prepare statement: %s", sqlite3_errmsg(c->db));
		return errno_from_sqlite(rc);
	}
	return 0;
}

/*
 * A statement prepared once for the connection (SQLITE_PREPARE_PERSISTENT)
 * and kept until cache_close(): preparing the same SQL at every call was a
 * tenth of a small file's CPU. sql must be a literal: it is found by its
 * address. Lock held; the statement is released (_cleanup_stmt_) before the
 * lock is dropped, as another thread may use it next.
 */
static int stmt_get(struct cache *c, const char *sql, sqlite3_stmt **ret)
{
	struct cached_stmt *p;
	int rc;

	for (size_t i = 0; i < c->n_stmts; i++)
		if (c->stmts[i].sql == sql) {
			*ret = c->stmts[i].st;
			return 0;
		}
	p = realloc(c->stmts, (c->n_stmts + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	c->stmts = p;
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL);
	if (rc != SQLITE_OK) {
		log_error("cache index: cannot prepare statement: %s", sqlite3_errmsg(c->db));
		return errno_from_sqlite(rc);
	}
	c->stmts[c->n_stmts++] = (struct cached_stmt){ .sql = sql, .st = *ret };
	return 0;
}

/* Ends a use of a stmt_get() statement: reset (a SELECT left running holds a
 * read transaction, which stops checkpoints) and unbound (no dangling text). */
static void stmt_donep(sqlite3_stmt **st)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
}
#define _cleanup_stmt_ _cleanup_(stmt_donep)

/* Steps a statement that returns no rows. */
static int step_done(struct cache *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		log_error("cache index: %s", sqlite3_errmsg(c->db));
		return errno_from_sqlite(rc);
	}
	return 0;
}

/* Savepoints nest in an open batch (see struct cache) and act as
 * BEGIN/COMMIT outside one: every multi-statement write uses them. */
static int tx_begin(struct cache *c)
{
	return exec(c, "SAVEPOINT tx");
}

static int tx_end(struct cache *c, int r)
{
	if (r < 0)
		exec(c, "ROLLBACK TO tx");
	int e = exec(c, "RELEASE tx");
	return r < 0 ? r : e;
}

static void seg_dir(const struct cache *c, uint64_t ino, char buf[PATH_MAX])
{
	snprintf(buf, PATH_MAX, "%s/seg/%" PRIu64, c->dir, ino);
}

static void seg_path(const struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen,
		     char buf[PATH_MAX])
{
	snprintf(buf, PATH_MAX, "%s/seg/%" PRIu64 "/%" PRIu64 ".%" PRIu64, c->dir, ino, idx, gen);
}

/* Removes segment files that no committed row references: left by a crash
 * before a commit (sealed, so harmless, but they take space). */
static void cache_sweep(struct cache *c)
{
	_cleanup_free_ char *root = NULL;
	DIR *d, *sd;
	struct dirent *de, *fe;

	if (asprintf(&root, "%s/seg", c->dir) < 0) {
		root = NULL;
		return;
	}
	d = opendir(root);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char dpath[PATH_MAX];
		uint64_t ino;

		if (de->d_name[0] == '.' || sscanf(de->d_name, "%" SCNu64, &ino) != 1)
			continue;
		seg_dir(c, ino, dpath);
		sd = opendir(dpath);
		if (!sd)
			continue;
		while ((fe = readdir(sd))) {
			_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
			uint64_t idx, gen;
			bool keep = false;
			int end = -1;

			if (fe->d_name[0] == '.')
				continue;
			/* the whole name: "<idx>.<gen>.<tid>.tmp" left by a crash goes too */
			if (sscanf(fe->d_name, "%" SCNu64 ".%" SCNu64 "%n", &idx, &gen, &end) == 2 &&
			    end > 0 && fe->d_name[end] == '\0' &&
			    prepare(c, "SELECT 1 FROM segs WHERE ino=? AND idx=? AND gen=?", &st) == 0) {
				sqlite3_bind_int64(st, 1, (int64_t)ino);
				sqlite3_bind_int64(st, 2, (int64_t)idx);
				sqlite3_bind_int64(st, 3, (int64_t)gen);
				keep = sqlite3_step(st) == SQLITE_ROW;
			}
			if (!keep)
				unlinkat(dirfd(sd), fe->d_name, 0);
		}
		closedir(sd);
	}
	closedir(d);
}

/* Removes segments in the index that no committed row references (as cache_sweep). */
static void blobs_sweep(struct cache *c)
{
	exec(c, "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM segs s WHERE"
		" s.ino = blobs.ino AND s.idx = blobs.idx AND s.gen = blobs.gen)");
}

/* Makes the committed transactions in the WAL survive a power loss. */
static int wal_sync(struct cache *c)
{
	char path[PATH_MAX];

	if (c->wal_fd < 0) {
		/* SQLite keeps the same WAL file while the connection is open
		 * (journal_size_limit is not set): one descriptor serves */
		snprintf(path, sizeof(path), "%s/index.db-wal", c->dir);
		c->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->wal_fd < 0)
			return -errno;
	}
	return fdatasync(c->wal_fd) < 0 ? -errno : 0;
}

/* A close that synced its segments and is about to join the batch (per thread:
 * one that failed in between is counted once, until its next commit). */
static _Thread_local bool arriving;

static void arrive(struct cache *c)
{
	if (!arriving) {
		arriving = true;
		__atomic_add_fetch(&c->arriving, 1, __ATOMIC_SEQ_CST);
	}
}

static void arrived(struct cache *c)
{
	if (arriving) {
		arriving = false;
		__atomic_sub_fetch(&c->arriving, 1, __ATOMIC_SEQ_CST);
	}
}

/* A deadline ns from now on the monotonic clock (the conds use it). */
static struct timespec after_ns(long ns)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += ns;
	while (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

/* With closes about to join, the batch waits for them a moment (at most
 * LINGER_NS): one WAL sync for all instead of one each (lock held). */
#define LINGER_NS 1000000
static void linger(struct cache *c)
{
	struct timespec until;

	if (!__atomic_load_n(&c->arriving, __ATOMIC_SEQ_CST))
		return;
	until = after_ns(LINGER_NS);
	while (__atomic_load_n(&c->arriving, __ATOMIC_SEQ_CST) && !c->stopping)
		if (pthread_cond_timedwait(&c->join_cond, &c->lock, &until) == ETIMEDOUT)
			break;
}

/* Commits the open batch, if any, without syncing it (lock held). */
static int batch_close_locked(struct cache *c)
{
	uint64_t id = c->open_batch;
	int r;

	if (!id)
		return 0;
	r = exec(c, "COMMIT");
	if (r < 0)
		exec(c, "ROLLBACK");
	c->open_batch = 0;
	c->changes_committed = sqlite3_total_changes64(c->db);
	if (r == 0)
		c->committed_batch = id;
	return r;
}

/* Something a commit relies on could not be synced (lock held): after a
 * failed fsync the kernel may have dropped the pages and told only this
 * caller, so a later sync could succeed over lost bytes (fsyncgate).
 * Nothing is called durable again until a restart; logged once. */
static void sync_failed_locked(struct cache *c, int r, const char *what)
{
	if (!c->sync_error) {
		c->sync_error = -EIO;
		log_error_errno(r, "%s; every later commit fails until atrestfs restarts", what);
	}
	pthread_cond_broadcast(&c->durable_cond);
}

static void batch_failed_locked(struct cache *c, uint64_t id, int r)
{
	char what[80];

	snprintf(what, sizeof(what), "cache index: cannot make batch %" PRIu64 " durable", id);
	sync_failed_locked(c, r, what);
}

/*
 * Commits the open batch and syncs the WAL once for every version in it,
 * and in batches committed before it but not synced (lock held, dropped
 * during the sync: SQLite appends the next batch to the WAL meanwhile). Run
 * by the first close waiting for the batch (no thread hand-off on the way of
 * a lone close), else by the committer when it stops.
 */
static void batch_commit_locked(struct cache *c)
{
	uint64_t id;
	int r;

	/* ours from now: lingering drops the lock, and nobody else may commit */
	c->syncing = true;
	linger(c);
	id = c->open_batch ? c->open_batch : c->committed_batch;
	r = batch_close_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		r = wal_sync(c);
	pthread_mutex_lock(&c->lock);
	c->syncing = false;
	if (r == 0) {
		if (id > c->durable_batch)
			c->durable_batch = id;
		pthread_cond_broadcast(&c->durable_cond);
	} else
		batch_failed_locked(c, id, r);
}

/* Commits a batch nobody waits for within COMMITTER_NS, so the write
 * transaction is never left open; unsynced, like any write outside a
 * close: the next close or fsync() syncs it with its own. When stopping it
 * commits and syncs what is left. */
#define COMMITTER_NS 50000000
static void *committer_main(void *arg)
{
	struct cache *c = arg;
	uint64_t seen = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct timespec until = after_ns(COMMITTER_NS);

		if (!c->stopping)
			pthread_cond_timedwait(&c->batch_cond, &c->lock, &until);
		if (c->syncing) {
			if (c->stopping)
				pthread_cond_wait(&c->durable_cond, &c->lock);
		} else if (c->stopping) {
			if (c->open_batch ||
			    (c->committed_batch > c->durable_batch && !c->sync_error))
				batch_commit_locked(c);
			else
				break;
		} else if (c->open_batch && c->open_batch == seen) {
			uint64_t id = c->open_batch;
			int r = batch_close_locked(c);

			if (r < 0)
				batch_failed_locked(c, id, r);
		}
		seen = c->open_batch;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int cache_open(const char *dir, uint64_t max_bytes, struct cache **ret, int *ret_fresh)
{
	_cleanup_free_ char *dbpath = NULL, *segs = NULL;
	struct cache *c;
	struct stat st;
	int rc, r, fresh;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create cache directory '%s'", dir);
	if (stat(dir, &st) < 0)
		return log_error_errno(-errno, "cannot stat cache directory '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return log_error_errno(-ENOTDIR, "cache '%s' is not a directory", dir);
	/* DESIGN.md 6: only atrestfs may read the sealed cache and its index */
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
		return log_error_errno(-errno, "cannot make '%s' mode 0700", dir);
	if (asprintf(&dbpath, "%s/index.db", dir) < 0 || asprintf(&segs, "%s/seg", dir) < 0)
		return -ENOMEM;
	if (mkdir(segs, 0700) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create '%s'", segs);
	fresh = access(dbpath, F_OK) < 0;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->root_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->batch_cond, &ca);
	pthread_cond_init(&c->join_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&c->durable_cond, NULL);
	c->wal_fd = -1;
	c->max_bytes = max_bytes;
	c->dir = strdup(dir);
	if (!c->dir) {
		cache_close(c);
		return -ENOMEM;
	}
	rc = sqlite3_open_v2(dbpath, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = log_error_errno(errno_from_sqlite(rc), "cannot open cache index '%s'", dbpath);
		cache_close(c);
		return r;
	}
	chmod(dbpath, 0600);
	sqlite3_busy_timeout(c->db, 5000);
	r = exec(c, schema);
	if (r < 0) {
		cache_close(c);
		return r;
	}
	/* columns added after the first release of the index: an older cache
	 * gains them (the error for an existing column is expected) */
	static const char *const added[] = {
		"remote_size INTEGER", "targets TEXT", "key_expires INTEGER", "xattrs TEXT",
		"xattrs_ver INTEGER", "xattrs_rver INTEGER", "seals INTEGER",
	};
	for (size_t i = 0; i < ELEMENTSOF(added); i++) {
		_cleanup_free_ char *sql = NULL;
		if (asprintf(&sql, "ALTER TABLE nodes ADD COLUMN %s", added[i]) >= 0)
			sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	}
	sqlite3_exec(c->db, "ALTER TABLE manifests ADD COLUMN length INTEGER NOT NULL DEFAULT 0", NULL,
		     NULL, NULL);
	if (!fresh) {
		_cleanup_sqlite_stmt_ sqlite3_stmt *q = NULL;
		/* an index without a root node never finished its first mount */
		if (prepare(c, "SELECT 1 FROM nodes WHERE ino=1", &q) == 0)
			fresh = sqlite3_step(q) != SQLITE_ROW;
	}
	cache_sweep(c);
	blobs_sweep(c);
	r = exec(c, pending_schema);
	if (r < 0) {
		cache_close(c);
		return r;
	}
	c->changes_committed = sqlite3_total_changes64(c->db);
	*ret = c;
	*ret_fresh = fresh;
	return 0;
}

struct cache *cache_close(struct cache *c)
{
	if (!c)
		return NULL;
	if (c->committer_running) {
		/* it commits and syncs a batch still open first */
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_signal(&c->batch_cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->committer, NULL);
	} else if (c->open_batch || c->committed_batch > c->durable_batch) {
		pthread_mutex_lock(&c->lock);
		batch_commit_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
	if (c->wal_fd >= 0)
		close(c->wal_fd);
	for (size_t i = 0; i < c->n_stmts; i++)
		sqlite3_finalize(c->stmts[i].st);
	free(c->stmts);
	if (c->db)
		sqlite3_close_v2(c->db);
	pthread_cond_destroy(&c->batch_cond);
	pthread_cond_destroy(&c->join_cond);
	pthread_cond_destroy(&c->durable_cond);
	pthread_mutex_destroy(&c->root_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
	return NULL;
}

int cache_meta_get(struct cache *c, const char *key, char **ret)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT v FROM meta WHERE k=?", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*ret = strdup((const char *)sqlite3_column_text(st, 0));
			r = *ret ? 0 : -ENOMEM;
		} else
			r = -ENOENT;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_meta_set(struct cache *c, const char *key, const char *value)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		r = step_done(c, st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int node_save_locked(struct cache *c, const struct node *n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = stmt_get(c,
		    "INSERT OR REPLACE INTO nodes(ino, parent, name, mode, uid, gid, size, atime,"
		    " mtime, ctime, symlink, file_id, cred_id, rkid, protection, seg_size, version,"
		    " remote_version, expires, meta_dirty, remote_created, segs_known, remote_size,"
		    " targets, key_expires, xattrs, xattrs_ver, xattrs_rver, seals)"
		    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (int64_t)n->ino);
	sqlite3_bind_int64(st, 2, (int64_t)n->parent);
	bind_text_or_null(st, 3, n->name);
	sqlite3_bind_int64(st, 4, n->mode);
	sqlite3_bind_int64(st, 5, n->uid);
	sqlite3_bind_int64(st, 6, n->gid);
	sqlite3_bind_int64(st, 7, (int64_t)n->size);
	sqlite3_bind_int64(st, 8, ts_ns(&n->atime));
	sqlite3_bind_int64(st, 9, ts_ns(&n->mtime));
	sqlite3_bind_int64(st, 10, ts_ns(&n->ctime));
	bind_text_or_null(st, 11, n->symlink);
	bind_text_or_null(st, 12, n->file_id[0] ? n->file_id : NULL);
	bind_text_or_null(st, 13, n->cred_id);
	bind_text_or_null(st, 14, n->rkid);
	sqlite3_bind_int64(st, 15, n->protection);
	sqlite3_bind_int64(st, 16, n->seg_size);
	sqlite3_bind_int64(st, 17, (int64_t)n->version);
	sqlite3_bind_int64(st, 18, (int64_t)n->remote_version);
	sqlite3_bind_int64(st, 19, n->expires);
	sqlite3_bind_int64(st, 20, n->meta_dirty);
	sqlite3_bind_int64(st, 21, n->remote_created);
	sqlite3_bind_int64(st, 22, n->segs_known);
	sqlite3_bind_int64(st, 23, (int64_t)n->remote_size);
	bind_text_or_null(st, 24, n->targets);
	sqlite3_bind_int64(st, 25, n->key_expires);
	bind_text_or_null(st, 26, n->xattrs);
	sqlite3_bind_int64(st, 27, (int64_t)n->xattrs_ver);
	sqlite3_bind_int64(st, 28, (int64_t)n->xattrs_rver);
	sqlite3_bind_int64(st, 29, (int64_t)n->seals_saved);
	return step_done(c, st);
}

static void writes_join_locked(struct cache *c);

int cache_node_save(struct cache *c, const struct node *n)
{
	int r;

	pthread_mutex_lock(&c->lock);
	writes_join_locked(c);
	r = node_save_locked(c, n);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void rm_seg_dir(struct cache *c, uint64_t ino)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;

	seg_dir(c, ino, path);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(path);
}

int cache_node_delete(struct cache *c, uint64_t ino)
{
	static const char *const sql[] = {
		"DELETE FROM nodes WHERE ino=?",
		"DELETE FROM segs WHERE ino=?",
		"DELETE FROM manifests WHERE ino=?",
		"DELETE FROM blobs WHERE ino=?",
	};
	int r = 0;

	pthread_mutex_lock(&c->lock);
	writes_join_locked(c);
	r = tx_begin(c);
	if (r == 0) {
		for (size_t i = 0; i < ELEMENTSOF(sql) && r == 0; i++) {
			_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;

			r = prepare(c, sql[i], &st);
			if (r == 0) {
				sqlite3_bind_int64(st, 1, (int64_t)ino);
				r = step_done(c, st);
			}
		}
		r = tx_end(c, r);
	}
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		rm_seg_dir(c, ino);
	return r;
}

static char *column_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

int cache_nodes_load(struct cache *c, struct node *(*alloc)(void *ud, uint64_t ino), void *userdata)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	pthread_mutex_lock(&c->lock);
	r = prepare(c,
		    "SELECT n.ino, parent, name, mode, uid, gid, size, atime, mtime, ctime, symlink,"
		    " file_id, cred_id, rkid, protection, seg_size, n.version, remote_version,"
		    " expires, meta_dirty, remote_created, segs_known, remote_size, m.length,"
		    " targets, key_expires, xattrs, xattrs_ver, xattrs_rver, seals"
		    " FROM nodes n LEFT JOIN manifests m ON m.ino = n.ino ORDER BY n.ino",
		    &st);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct node *n = alloc(userdata, (uint64_t)sqlite3_column_int64(st, 0));
		const char *fid;

		if (!n) {
			r = -ENOMEM;
			break;
		}
		n->parent = (uint64_t)sqlite3_column_int64(st, 1);
		n->name = column_strdup(st, 2);
		n->mode = (mode_t)sqlite3_column_int64(st, 3);
		n->uid = (uid_t)sqlite3_column_int64(st, 4);
		n->gid = (gid_t)sqlite3_column_int64(st, 5);
		n->size = (uint64_t)sqlite3_column_int64(st, 6);
		n->atime = ns_ts(sqlite3_column_int64(st, 7));
		n->mtime = ns_ts(sqlite3_column_int64(st, 8));
		n->ctime = ns_ts(sqlite3_column_int64(st, 9));
		n->symlink = column_strdup(st, 10);
		fid = (const char *)sqlite3_column_text(st, 11);
		if (fid)
			snprintf(n->file_id, sizeof(n->file_id), "%s", fid);
		n->cred_id = column_strdup(st, 12);
		n->rkid = column_strdup(st, 13);
		n->protection = (enum seal_protection)sqlite3_column_int64(st, 14);
		n->seg_size = (uint32_t)sqlite3_column_int64(st, 15);
		n->version = (uint64_t)sqlite3_column_int64(st, 16);
		n->remote_version = (uint64_t)sqlite3_column_int64(st, 17);
		n->expires = sqlite3_column_int64(st, 18);
		n->meta_dirty = sqlite3_column_int64(st, 19) != 0;
		n->remote_created = sqlite3_column_int64(st, 20) != 0;
		n->segs_known = sqlite3_column_int64(st, 21) != 0;
		n->remote_size = (uint64_t)sqlite3_column_int64(st, 22);
		/* a crash may have left the size of writes never committed: the
		 * committed manifest has the truth */
		if (sqlite3_column_type(st, 23) != SQLITE_NULL)
			n->size = (uint64_t)sqlite3_column_int64(st, 23);
		else if (S_ISREG(n->mode) && n->version == 0)
			n->size = 0;
		n->targets = column_strdup(st, 24);
		n->key_expires = sqlite3_column_int64(st, 25);
		n->xattrs = column_strdup(st, 26);
		n->xattrs_ver = (uint64_t)sqlite3_column_int64(st, 27);
		n->xattrs_rver = (uint64_t)sqlite3_column_int64(st, 28);
		/* the bound reserved before those seals were made (data_seal_count) */
		n->seals = n->seals_saved = (uint64_t)sqlite3_column_int64(st, 29);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_segs_load(struct cache *c, uint64_t ino, struct seg **ret, size_t *ret_n)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	struct seg *segs = NULL;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT idx, gen, len, uploaded FROM segs WHERE ino=? ORDER BY idx", &st);
	if (r == 0)
		sqlite3_bind_int64(st, 1, (int64_t)ino);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);

		if (idx >= n) {
			struct seg *p = realloc(segs, (idx + 1) * sizeof(*segs));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			memset(p + n, 0, (idx + 1 - n) * sizeof(*p));
			segs = p;
			n = idx + 1;
		}
		segs[idx].gen = (uint64_t)sqlite3_column_int64(st, 1);
		segs[idx].len = (uint32_t)sqlite3_column_int64(st, 2);
		segs[idx].uploaded = sqlite3_column_int64(st, 3) != 0;
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0) {
		free(segs);
		return r;
	}
	*ret = segs;
	*ret_n = n;
	return 0;
}

/* Replaces the segment rows of ino by segs (keeping upload state of unchanged ones). */
static int segs_replace_locked(struct cache *c, uint64_t ino, const struct seg *segs, size_t n,
			       bool uploaded_default)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL, *ins = NULL;
	int r;

	r = stmt_get(c, "DELETE FROM segs WHERE ino=?1 AND (idx >= ?2 OR idx NOT IN"
		       " (SELECT value FROM json_each(?3)))",
		    &del);
	if (r < 0)
		return r;
	/* json_each keeps this one statement whatever the number of segments */
	{
		size_t cap = 2 + n * 21;
		_cleanup_free_ char *list = malloc(cap);
		size_t off = 0;
		bool first = true;

		if (!list)
			return -ENOMEM;
		off += (size_t)snprintf(list + off, cap - off, "[");
		for (size_t i = 0; i < n; i++) {
			if (!segs[i].gen)
				continue;
			off += (size_t)snprintf(list + off, cap - off, "%s%zu", first ? "" : ",", i);
			first = false;
		}
		snprintf(list + off, cap - off, "]");
		sqlite3_bind_int64(del, 1, (int64_t)ino);
		sqlite3_bind_int64(del, 2, (int64_t)n);
		sqlite3_bind_text(del, 3, list, -1, SQLITE_TRANSIENT);
		r = step_done(c, del);
		if (r < 0)
			return r;
	}
	/* a changed generation resets the upload state; an unchanged one keeps it */
	r = stmt_get(c,
		    "INSERT INTO segs(ino, idx, gen, len, uploaded, cached, last_use)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(ino, idx) DO UPDATE SET"
		    " uploaded = CASE WHEN gen = excluded.gen THEN uploaded ELSE excluded.uploaded END,"
		    " cached = CASE WHEN gen = excluded.gen THEN cached ELSE excluded.cached END,"
		    " len = excluded.len, gen = excluded.gen",
		    &ins);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!segs[i].gen)
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (int64_t)ino);
		sqlite3_bind_int64(ins, 2, (int64_t)i);
		sqlite3_bind_int64(ins, 3, (int64_t)segs[i].gen);
		sqlite3_bind_int64(ins, 4, segs[i].len);
		sqlite3_bind_int64(ins, 5, uploaded_default);
		sqlite3_bind_int64(ins, 6, uploaded_default ? 0 : (int64_t)segs[i].len * 4 / 3 + 256);
		sqlite3_bind_int64(ins, 7, now_s());
		r = step_done(c, ins);
	}
	return r;
}

static int manifest_put_locked(struct cache *c, uint64_t ino, uint64_t version, uint64_t length,
			       const char *m, size_t len)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = stmt_get(c, "INSERT OR REPLACE INTO manifests(ino, version, length, compact)"
		       " VALUES(?, ?, ?, ?)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)version);
	sqlite3_bind_int64(st, 3, (int64_t)length);
	sqlite3_bind_text(st, 4, m, (int)len, SQLITE_STATIC);
	return step_done(c, st);
}

static int gc_add_locked(struct cache *c, uint64_t ino, uint64_t after, const char *path)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = stmt_get(c, "INSERT INTO gc(ino, after_version, path) VALUES(?, ?, ?)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)after);
	sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
	return step_done(c, st);
}

/* The open batch, opening one when there is none. */
static int batch_join_locked(struct cache *c, uint64_t *ret_batch)
{
	int r;

	if (c->sync_error)
		return c->sync_error;
	if (!c->open_batch) {
		r = exec(c, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		c->open_batch = ++c->last_batch;
		/* started with the first batch, not at cache_open(): atrestfs
		 * daemonises after opening the cache, and fork() keeps no thread.
		 * Without it the waiters still commit their batches. */
		if (!c->committer_running &&
		    pthread_create(&c->committer, NULL, committer_main, c) == 0)
			c->committer_running = true;
	}
	*ret_batch = c->open_batch;
	return 0;
}

/* Once cache_batch_writes() was called, a write opens the batch if none is
 * open: the writes of a create, its segment and its close then share one
 * SQLite transaction and its one WAL sync. Without a batch (or after a
 * failed one) the write is a transaction of its own, unsynced as before. */
static void writes_join_locked(struct cache *c)
{
	uint64_t batch;

	if (c->batching && !c->open_batch)
		(void)batch_join_locked(c, &batch);
}

void cache_batch_writes(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->batching = true;
	pthread_mutex_unlock(&c->lock);
}

int cache_commit(struct cache *c, const struct node *n, const struct seg *segs, size_t n_segs,
		 const char *manifest, size_t manifest_len, char *const *gc_paths, size_t n_gc,
		 uint64_t *ret_batch)
{
	uint64_t batch = 0;
	int r;

	pthread_mutex_lock(&c->lock);
	arrived(c);
	r = batch_join_locked(c, &batch);
	pthread_cond_signal(&c->join_cond); /* a lingering leader counts again */
	if (r == 0)
		r = tx_begin(c);
	if (r == 0) {
		r = node_save_locked(c, n);
		if (r == 0)
			r = segs_replace_locked(c, n->ino, segs, n_segs, false);
		if (r == 0)
			r = manifest_put_locked(c, n->ino, n->version, n->size, manifest,
						manifest_len);
		for (size_t i = 0; i < n_gc && r == 0; i++)
			r = gc_add_locked(c, n->ino, n->version, gc_paths[i]);
		r = tx_end(c, r);
	}
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		*ret_batch = batch;
	return r;
}

int cache_manifest_put(struct cache *c, uint64_t ino, uint64_t version, uint64_t length,
		       const char *compact, size_t len, const struct seg *segs, size_t n_segs)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = tx_begin(c);
	if (r == 0) {
		r = segs_replace_locked(c, ino, segs, n_segs, true);
		if (r == 0)
			r = manifest_put_locked(c, ino, version, length, compact, len);
		r = tx_end(c, r);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_manifest_get(struct cache *c, uint64_t ino, uint64_t *ret_version,
		       uint64_t *ret_length, char **ret, size_t *ret_len)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT version, compact, length FROM manifests WHERE ino=?", &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *s = (const char *)sqlite3_column_text(st, 1);
			size_t len = (size_t)sqlite3_column_bytes(st, 1);

			*ret = strndup(s ? s : "", len);
			if (!*ret)
				r = -ENOMEM;
			else {
				*ret_len = len;
				*ret_version = (uint64_t)sqlite3_column_int64(st, 0);
				*ret_length = (uint64_t)sqlite3_column_int64(st, 2);
			}
		} else
			r = -ENOENT;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Binds the key of segment idx.gen of ino to the first three parameters. */
static void bind_seg(sqlite3_stmt *st, uint64_t ino, uint64_t idx, uint64_t gen)
{
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, (int64_t)gen);
}

/* Stores a small sealed segment in the index (INLINE_MAX). */
static int blob_put(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		    size_t len)
{
	char path[PATH_MAX];
	int r;

	/* a longer write of the same segment left a file, which reads prefer */
	seg_path(c, ino, idx, gen, path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	pthread_mutex_lock(&c->lock);
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		writes_join_locked(c);
		r = stmt_get(c, "INSERT OR REPLACE INTO blobs(ino, idx, gen, data) VALUES(?, ?, ?, ?)",
			     &st);
		if (r == 0) {
			bind_seg(st, ino, idx, gen);
			sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
			r = step_done(c, st);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A segment stored in the index: *ret NUL-terminated, as cache_seg_read()'s; -ENOENT when none. */
static int blob_get(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, char **ret,
		    size_t *ret_len)
{
	int r;

	pthread_mutex_lock(&c->lock);
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		r = stmt_get(c, "SELECT data FROM blobs WHERE ino=? AND idx=? AND gen=?", &st);
		if (r == 0) {
			bind_seg(st, ino, idx, gen);
			if (sqlite3_step(st) == SQLITE_ROW) {
				size_t len = (size_t)sqlite3_column_bytes(st, 0);
				const void *p = sqlite3_column_blob(st, 0);
				char *buf = malloc(len + 1);

				if (buf) {
					memcpy(buf, p, len);
					buf[len] = '\0';
					*ret = buf;
					*ret_len = len;
				} else
					r = -ENOMEM;
			} else
				r = -ENOENT;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static bool blob_exists(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	bool found = false;

	pthread_mutex_lock(&c->lock);
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		if (stmt_get(c, "SELECT 1 FROM blobs WHERE ino=? AND idx=? AND gen=?", &st) == 0) {
			bind_seg(st, ino, idx, gen);
			found = sqlite3_step(st) == SQLITE_ROW;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* cache_seg_unlink() with the lock held: the file or the row, whichever it is. */
static void seg_unlink_locked(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char path[PATH_MAX];

	seg_path(c, ino, idx, gen, path);
	unlink(path);
	if (stmt_get(c, "DELETE FROM blobs WHERE ino=? AND idx=? AND gen=?", &st) == 0) {
		bind_seg(st, ino, idx, gen);
		step_done(c, st);
	}
}

static int seg_write(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		     size_t len, bool pending)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 32];
	_cleanup_close_ int fd = -1;
	size_t off = 0;

	if (len <= INLINE_MAX)
		return blob_put(c, ino, idx, gen, data, len);
	seg_dir(c, ino, dir);
	if (mkdir(dir, 0700) == 0)
		__atomic_add_fetch(&c->root_gen, 1, __ATOMIC_SEQ_CST); /* its name: cache_segs_sync */
	else if (errno != EEXIST)
		return -errno;
	seg_path(c, ino, idx, gen, path);
	/* one temp file per writing thread: a sealer, a reader storing what it
	 * fetched and the read-ahead may write the same segment at once, and a
	 * shared temp name let one rename the other's half-written file */
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)gettid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			unlink(tmp);
			return e;
		}
		off += (size_t)w;
	}
	/* the disk starts on it now, while the next segment is sealed, so the
	 * commit's fdatasync (cache_segs_sync) has little left to wait for.
	 * WRITE only: a wait here would take a failed writeback's error, which
	 * that fdatasync must report (fs_writeback_fail). A copy fetched from
	 * the HCSE is clean: nothing waits for it, the kernel writes it back
	 * when it likes, and the reader it was fetched for gets the CPU. */
	if (pending)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	/* rename makes a half-written segment impossible after a crash */
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

int cache_seg_write(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		    size_t len)
{
	return seg_write(c, ino, idx, gen, data, len, true);
}

int cache_seg_keep(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		   size_t len)
{
	return seg_write(c, ino, idx, gen, data, len, false);
}

int cache_seg_read(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, char **ret,
		   size_t *ret_len)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t off = 0;

	seg_path(c, ino, idx, gen, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return blob_get(c, ino, idx, gen, ret, ret_len);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	*ret_len = off;
	*ret = TAKE_PTR(buf);
	return 0;
}

bool cache_seg_exists(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	char path[PATH_MAX];

	seg_path(c, ino, idx, gen, path);
	return access(path, F_OK) == 0 || blob_exists(c, ino, idx, gen);
}

void cache_seg_unlink(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	seg_unlink_locked(c, ino, idx, gen);
	pthread_mutex_unlock(&c->lock);
}

static void seg_update(struct cache *c, const char *sql, uint64_t ino, uint64_t idx, uint64_t gen,
		       int64_t value)
{
	pthread_mutex_lock(&c->lock);
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		if (stmt_get(c, sql, &st) == 0) {
			sqlite3_bind_int64(st, 1, value);
			sqlite3_bind_int64(st, 2, (int64_t)ino);
			sqlite3_bind_int64(st, 3, (int64_t)idx);
			sqlite3_bind_int64(st, 4, (int64_t)gen);
			step_done(c, st);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_seg_cached(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, size_t bytes)
{
	seg_update(c, "UPDATE segs SET cached=?1, last_use=strftime('%s') WHERE ino=?2 AND idx=?3 AND gen=?4",
		   ino, idx, gen, (int64_t)bytes);
}

void cache_seg_touch(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	seg_update(c, "UPDATE segs SET last_use=?1 WHERE ino=?2 AND idx=?3 AND gen=?4", ino, idx,
		   gen, now_s());
}

int cache_segs_pending(struct cache *c, uint64_t ino, uint64_t **ret_idx, uint64_t **ret_gen,
		       size_t *ret_n)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ uint64_t *ids = NULL, *gens = NULL;
	size_t n = 0, cap = 0;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "SELECT idx, gen FROM segs WHERE ino=? AND uploaded=0 ORDER BY idx", &st);
	if (r == 0)
		sqlite3_bind_int64(st, 1, (int64_t)ino);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *a = realloc(ids, cap * sizeof(*a));
			if (a)
				ids = a;
			uint64_t *b = realloc(gens, cap * sizeof(*b));
			if (b)
				gens = b;
			if (!a || !b) {
				r = -ENOMEM;
				break;
			}
		}
		ids[n] = (uint64_t)sqlite3_column_int64(st, 0);
		gens[n] = (uint64_t)sqlite3_column_int64(st, 1);
		n++;
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	*ret_idx = TAKE_PTR(ids);
	*ret_gen = TAKE_PTR(gens);
	*ret_n = n;
	return 0;
}

int cache_seg_uploaded(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "UPDATE segs SET uploaded=1 WHERE ino=? AND idx=? AND gen=?", &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)idx);
		sqlite3_bind_int64(st, 3, (int64_t)gen);
		r = step_done(c, st);
		if (r == 0)
			r = sqlite3_changes(c->db) > 0 ? 1 : 0;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool cache_node_has_pending_segs(struct cache *c, uint64_t ino)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	bool pending = false;

	pthread_mutex_lock(&c->lock);
	/* '+' keeps the planner off segs_lru, which scans every pending segment of every file */
	if (prepare(c, "SELECT 1 FROM segs WHERE ino=? AND +uploaded=0 LIMIT 1", &st) == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		pending = sqlite3_step(st) == SQLITE_ROW;
	}
	pthread_mutex_unlock(&c->lock);
	return pending;
}

int cache_dirty_nodes(struct cache *c, uint64_t **ret, size_t *ret_n)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ uint64_t *a = NULL;
	size_t n = 0, cap = 0;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c,
		    "SELECT ino FROM nodes WHERE meta_dirty != 0 OR remote_created = 0"
		    " OR remote_version < version OR xattrs_ver != xattrs_rver"
		    " UNION SELECT DISTINCT ino FROM segs WHERE uploaded = 0 ORDER BY 1",
		    &st);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *p = realloc(a, cap * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			a = p;
		}
		a[n++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(a);
	*ret_n = n;
	return 0;
}

int cache_gc_add(struct cache *c, uint64_t ino, uint64_t after_version, const char *path)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = gc_add_locked(c, ino, after_version, path);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_gc_next(struct cache *c, uint64_t after_id, int64_t *ret_id, char **ret_path)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	/* due once the version that superseded it was acknowledged, or its node is gone */
	pthread_mutex_lock(&c->lock);
	r = prepare(c,
		    "SELECT g.id, g.path FROM gc g LEFT JOIN nodes n ON n.ino = g.ino"
		    " WHERE g.id > ? AND (n.ino IS NULL OR n.remote_version >= g.after_version)"
		    " ORDER BY g.id LIMIT 1",
		    &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)after_id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*ret_id = sqlite3_column_int64(st, 0);
			*ret_path = column_strdup(st, 1);
			r = *ret_path ? 0 : -ENOMEM;
		} else
			r = -ENOENT;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_gc_done(struct cache *c, int64_t id)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	r = prepare(c, "DELETE FROM gc WHERE id=?", &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, id);
		r = step_done(c, st);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static uint64_t sum_locked(struct cache *c, const char *sql)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	uint64_t v = 0;

	if (stmt_get(c, sql, &st) == 0 && sqlite3_step(st) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	return v;
}

/* sum_locked() under the cache's lock */
static uint64_t sum(struct cache *c, const char *sql)
{
	uint64_t v;

	pthread_mutex_lock(&c->lock);
	v = sum_locked(c, sql);
	pthread_mutex_unlock(&c->lock);
	return v;
}

uint64_t cache_gc_max_ino(struct cache *c)
{
	return sum(c, "SELECT COALESCE(MAX(ino), 0) FROM gc");
}

uint64_t cache_pending_bytes(struct cache *c)
{
	return sum(c, "SELECT bytes FROM pending");
}

void cache_evict(struct cache *c)
{
	uint64_t total;

	pthread_mutex_lock(&c->lock);
	total = sum_locked(c, "SELECT COALESCE(SUM(cached), 0) FROM segs");
	while (total > c->max_bytes) {
		_cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL, *up = NULL;
		bool any = false;

		/* never a pending segment: it exists nowhere else (issue 5) */
		if (prepare(c, "SELECT ino, idx, gen, cached FROM segs WHERE uploaded=1 AND cached>0"
			       " ORDER BY last_use LIMIT 64", &st) < 0 ||
		    prepare(c, "UPDATE segs SET cached=0 WHERE ino=? AND idx=? AND gen=?", &up) < 0)
			break;
		while (total > c->max_bytes && sqlite3_step(st) == SQLITE_ROW) {
			uint64_t ino = (uint64_t)sqlite3_column_int64(st, 0);
			uint64_t idx = (uint64_t)sqlite3_column_int64(st, 1);
			uint64_t gen = (uint64_t)sqlite3_column_int64(st, 2);
			uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 3);

			seg_unlink_locked(c, ino, idx, gen);
			sqlite3_reset(up);
			sqlite3_bind_int64(up, 1, (int64_t)ino);
			sqlite3_bind_int64(up, 2, (int64_t)idx);
			sqlite3_bind_int64(up, 3, (int64_t)gen);
			step_done(c, up);
			total = total > bytes ? total - bytes : 0;
			any = true;
		}
		if (!any)
			break;
	}
	pthread_mutex_unlock(&c->lock);
}

/* fsync()s a file or directory by path. */
static int sync_path(const char *path, bool data_only)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	return 0;
}

/* A segment file or directory could not be synced: as for the index. */
static int segs_sync_failed(struct cache *c, const char *path, int r)
{
	char what[PATH_MAX + 32];

	snprintf(what, sizeof(what), "cache: cannot sync '%s'", path);
	pthread_mutex_lock(&c->lock);
	sync_failed_locked(c, r, what);
	pthread_mutex_unlock(&c->lock);
	return -EIO;
}

int cache_segs_sync(struct cache *c, uint64_t ino, const struct seg *segs, size_t n_segs,
		    uint64_t gen)
{
	enum { CHUNK = 64 };
	char path[PATH_MAX];
	size_t n_new = 0;
	uint64_t want;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	r = c->sync_error;
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	arrive(c);
	for (size_t i = 0; i < n_segs && r == 0;) {
		int fds[CHUNK];
		size_t k = 0;

		/* start the writeback of a chunk of files at once, then wait for
		 * each: the device sees them together, and the journal commit of
		 * the first fdatasync covers the names and sizes of all */
		for (; i < n_segs && k < CHUNK; i++) {
			if (segs[i].gen != gen)
				continue;
			/* one in the index is in the WAL the commit's sync covers; asked
			 * first: a small file's segment is there, and a failing open()
			 * per close cost a path walk */
			if (blob_exists(c, ino, i, gen))
				continue;
			seg_path(c, ino, i, gen, path);
			fds[k] = open(path, O_RDONLY | O_CLOEXEC);
			if (fds[k] < 0) {
				r = -errno;
				break;
			}
			sync_file_range(fds[k], 0, 0, SYNC_FILE_RANGE_WRITE);
			k++;
		}
		for (size_t j = 0; j < k; j++) {
			if (r == 0 && fdatasync(fds[j]) < 0)
				r = segs_sync_failed(c, "a segment file", -errno);
			close(fds[j]);
		}
		n_new += k;
	}
	if (r < 0 || n_new == 0)
		return r;
	/* their names: renamed into seg/<ino>, which may itself be new in seg/ */
	seg_dir(c, ino, path);
	r = sync_path(path, false);
	if (r < 0)
		return segs_sync_failed(c, path, r);
	want = __atomic_load_n(&c->root_gen, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&c->root_lock);
	if (c->root_synced < want) {
		/* one sync of seg/ serves every directory created before it */
		uint64_t now = __atomic_load_n(&c->root_gen, __ATOMIC_SEQ_CST);

		snprintf(path, sizeof(path), "%s/seg", c->dir);
		r = sync_path(path, false);
		if (r == 0)
			c->root_synced = now;
	}
	pthread_mutex_unlock(&c->root_lock);
	return r < 0 ? segs_sync_failed(c, path, r) : 0;
}

int cache_wait_durable(struct cache *c, uint64_t batch)
{
	int r;

	pthread_mutex_lock(&c->lock);
	while (c->durable_batch < batch && !c->sync_error) {
		/* group commit: the first to wait for the open batch commits it
		 * (or syncs it, when the committer committed it meanwhile) */
		if (!c->syncing && (c->open_batch == batch || c->committed_batch >= batch))
			batch_commit_locked(c);
		else
			pthread_cond_wait(&c->durable_cond, &c->lock);
	}
	r = c->durable_batch >= batch ? 0 : c->sync_error;
	pthread_mutex_unlock(&c->lock);
	return r;
}

int cache_sync(struct cache *c)
{
	uint64_t batch = 0;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->open_batch)
		batch = c->open_batch;
	else if (c->last_batch > c->durable_batch)
		batch = c->last_batch; /* being synced */
	else if (sqlite3_total_changes64(c->db) != c->changes_committed)
		/* written outside any batch (metadata): an empty batch syncs it */
		r = batch_join_locked(c, &batch);
	pthread_mutex_unlock(&c->lock);
	if (r < 0 || batch == 0)
		return r;
	return cache_wait_durable(c, batch);
}
