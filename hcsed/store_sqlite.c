/* SPDX-License-Identifier: Apache-2.0 */
/* The resource store on SQLite: WAL, group-committed writes, per-thread readers. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "store.h"

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_GET_PATH,
	ST_GET_PATH_CON,
	ST_GET_RI,
	ST_GET_RI_CON,
	ST_GET_AEI,
	ST_INSERT,
	ST_UPDATE,
	ST_UPDATE_COUNTERS,
	ST_LBL_INSERT,
	ST_LBL_DELETE,
	ST_DELETE_LBL_SUBTREE,
	ST_DELETE_SUBTREE,
	ST_EXPIRED,
	ST_COUNT,
	/* children: base + (newest_first ? 1 : 0) + (ty ? 2 : 0) + (con ? 4 : 0) */
	ST_CHILDREN,
	ST_MAX = ST_CHILDREN + 8,
};

/* most operations one group commit (one WAL fsync) covers */
#define STORE_GROUP_MAX 256

/* expirationTime 99991231T235959 in seconds: the resource never expires */
#define ET_NEVER "253402300799"

#define COLS "seq,ri,pi,path,rn,ty,depth,ct,et,cr,aei,cs,cni,cbs,st,attrs"

static const char *const stmt_sql[ST_CHILDREN] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_GET_PATH] = "SELECT " COLS " FROM res WHERE path=?1",
    [ST_GET_PATH_CON] = "SELECT " COLS ",con FROM res WHERE path=?1",
    [ST_GET_RI] = "SELECT " COLS " FROM res WHERE ri=?1",
    [ST_GET_RI_CON] = "SELECT " COLS ",con FROM res WHERE ri=?1",
    [ST_GET_AEI] = "SELECT " COLS " FROM res WHERE aei=?1",
    [ST_INSERT] = "INSERT INTO res(ri,pi,path,rn,ty,depth,ct,et,cr,aei,cs,cni,cbs,st,attrs,con)"
		  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
    [ST_UPDATE] = "UPDATE res SET et=?2,cni=?3,cbs=?4,st=?5,attrs=?6 WHERE seq=?1",
    [ST_UPDATE_COUNTERS] = "UPDATE res SET cni=?2,cbs=?3,st=?4 WHERE seq=?1",
    [ST_LBL_INSERT] = "INSERT OR IGNORE INTO lbl(label,seq) VALUES(?1,?2)",
    [ST_LBL_DELETE] = "DELETE FROM lbl WHERE seq=?1",
    /* A subtree is its root plus every path in ["root/", "root0"): '0' follows '/'. */
    [ST_DELETE_LBL_SUBTREE] = "DELETE FROM lbl WHERE seq IN (SELECT seq FROM res WHERE path=?1"
			      " OR (path>?1||'/' AND path<?1||'0'))",
    [ST_DELETE_SUBTREE] = "DELETE FROM res WHERE path=?1 OR (path>?1||'/' AND path<?1||'0')",
    /* the "et<" term repeats the partial index's condition so that it is used */
    [ST_EXPIRED] = "SELECT " COLS " FROM res WHERE et<?1 AND et<" ET_NEVER
		   " ORDER BY et LIMIT ?2",
    [ST_COUNT] = "SELECT count(*) FROM res",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS res("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT," /* AUTOINCREMENT: never reused */
    " ri TEXT NOT NULL UNIQUE,"
    " pi TEXT,"
    " path TEXT NOT NULL UNIQUE,"
    " rn TEXT NOT NULL,"
    " ty INTEGER NOT NULL,"
    " depth INTEGER NOT NULL,"
    " ct TEXT NOT NULL,"
    " et INTEGER NOT NULL,"
    " cr TEXT,"
    " aei TEXT,"
    " cs INTEGER NOT NULL DEFAULT 0,"
    " cni INTEGER NOT NULL DEFAULT 0,"
    " cbs INTEGER NOT NULL DEFAULT 0,"
    " st INTEGER NOT NULL DEFAULT 0,"
    " attrs TEXT NOT NULL,"
    " con BLOB);"
    "CREATE INDEX IF NOT EXISTS res_pi_seq ON res(pi,seq);"
    "CREATE INDEX IF NOT EXISTS res_pi_ty_seq ON res(pi,ty,seq);"
    /* only what can expire: most resources never do (et 99991231T235959),
     * and an index entry less per create is a page less to commit */
    "DROP INDEX IF EXISTS res_et;"
    "CREATE INDEX IF NOT EXISTS res_et_finite ON res(et) WHERE et<" ET_NEVER ";"
    "CREATE UNIQUE INDEX IF NOT EXISTS res_aei ON res(aei) WHERE aei IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS lbl(label TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY(label,seq)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS lbl_seq ON lbl(seq);";

struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_MAX];
	struct conn *next;
};

struct store {
	char *path;
	struct conn *writer;
	pthread_mutex_t wlock;
	/* a group's members wait for its commit here, not on wlock, so
	 * waking them does not compete with the next group for the writer */
	pthread_mutex_t done_lock;
	pthread_cond_t committed;
	bool txn_open;
	uint64_t txn_gen;   /* generation of the open (or last) write transaction */
	uint64_t done_gen;  /* last generation committed and on disk (done_lock) */
	unsigned txn_members; /* operations in the open transaction */
	/* the last generations whose commit failed (done_lock): a member
	 * looks its own up after waking, however many commits came since */
	uint64_t failed_gens[16];
	unsigned n_failed;
	atomic_int waiting; /* writers queued on wlock: the leader lets them join */

	pthread_key_t reader_key;
	pthread_mutex_t readers_lock;
	struct conn *readers;

	/* checkpoints run here, off the commit path of requests */
	struct conn *checkpointer;
	pthread_t checkpoint_thread;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping, has_thread;
	bool checkpoint_due; /* CHECKPOINT_FRAMES more in the WAL (stop_lock) */
	int checkpoint_at;   /* the WAL's frames that make it due (the writer's) */
};

struct store_txn {
	struct store *s;
	struct conn *c;
};

static int errno_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EROFS;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

static struct conn *conn_free(struct conn *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(c->stmts); i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close_v2(c->db);
	free(c);
	return NULL;
}

static int conn_open(const char *path, bool writer, struct conn **ret)
{
	struct conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	rc = sqlite3_open_v2(
	    path, &c->db,
	    SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_debug("sqlite open \"%s\": %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
		conn_free(c);
		return -EIO;
	}
	sqlite3_busy_timeout(c->db, 10000);
	/* WAL lets readers run beside the writer; FULL: a COMMIT returns
	 * only after the WAL is fsynced, so an acknowledged create is durable
	 * (issue 4, Storage; store_write() shares one commit among a group).
	 * The writer never checkpoints itself (wal_autocheckpoint=0): a
	 * thread does it beside the requests (store_open). The WAL is cut
	 * back to 64 MiB when it starts over (journal_size_limit): a burst of
	 * large creates no longer leaves a WAL of its size on the disk.
	 * Readers map the file (up to 4 GiB of it): a megabyte
	 * contentInstance is read from mapped pages instead of some 350
	 * pread()s of its overflow chain, which made retrievals of sealed
	 * segments a third slower. The cost,
	 * as SQLite documents: an I/O error on the disk under the map stops
	 * hcsed (SIGBUS) instead of failing one request; nothing acknowledged
	 * is lost with it (synchronous=FULL). */
	rc = sqlite3_exec(c->db,
			  writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				   "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;"
				 : "PRAGMA query_only=1; PRAGMA mmap_size=4294967296;",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK && writer)
		rc = sqlite3_exec(c->db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_debug("sqlite setup \"%s\": %s", path, sqlite3_errmsg(c->db));
		conn_free(c);
		return errno_from_sqlite(rc) ?: -EIO;
	}
	*ret = c;
	return 0;
}

static const char *children_sql(int idx)
{
	static const char *const sql[8] = {
	    "SELECT " COLS " FROM res WHERE pi=?1 ORDER BY seq ASC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS " FROM res WHERE pi=?1 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS " FROM res WHERE pi=?1 AND ty=?2 ORDER BY seq ASC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS " FROM res WHERE pi=?1 AND ty=?2 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS ",con FROM res WHERE pi=?1 ORDER BY seq ASC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS ",con FROM res WHERE pi=?1 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS
	    ",con FROM res WHERE pi=?1 AND ty=?2 ORDER BY seq ASC LIMIT ?3 OFFSET ?4",
	    "SELECT " COLS
	    ",con FROM res WHERE pi=?1 AND ty=?2 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	};
	return sql[idx];
}

/* A prepared statement of this connection, reset and ready to bind. */
static int stmt(struct store_txn *t, enum stmt_id id, sqlite3_stmt **ret)
{
	sqlite3_stmt **slot = &t->c->stmts[id];

	if (!*slot) {
		const char *sql = id >= ST_CHILDREN ? children_sql(id - ST_CHILDREN) : stmt_sql[id];
		int rc =
		    sqlite3_prepare_v3(t->c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
		if (rc != SQLITE_OK) {
			log_debug("sqlite prepare: %s (%d)", sqlite3_errmsg(t->c->db),
				  sqlite3_extended_errcode(t->c->db));
			return -EIO;
		}
	} else {
		sqlite3_reset(*slot);
		sqlite3_clear_bindings(*slot);
	}
	*ret = *slot;
	return 0;
}

/* Steps a statement that returns no rows. */
static int step_done(struct store_txn *t, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_debug("sqlite step: %s", sqlite3_errmsg(t->c->db));
		return errno_from_sqlite(rc) ?: -EIO;
	}
	return 0;
}

static int exec_id(struct store_txn *t, enum stmt_id id)
{
	sqlite3_stmt *st;
	int r = stmt(t, id, &st);

	return r < 0 ? r : step_done(t, st);
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

void store_res_clear(struct store_res *r)
{
	if (!r)
		return;
	free(r->ri);
	free(r->pi);
	free(r->path);
	free(r->rn);
	free(r->ct);
	free(r->cr);
	free(r->aei);
	json_decref(r->attrs);
	if (!r->con_borrowed)
		free(r->con);
	*r = (struct store_res){0};
}

/* Fills r from the current row (COLS order, optional con last). */
static int row_to_res(sqlite3_stmt *st, bool with_con, struct store_res *r)
{
	const char *attrs = (const char *)sqlite3_column_text(st, 15);
	json_error_t err;

	*r = (struct store_res){
	    .seq = sqlite3_column_int64(st, 0),
	    .ri = col_strdup(st, 1),
	    .pi = col_strdup(st, 2),
	    .path = col_strdup(st, 3),
	    .rn = col_strdup(st, 4),
	    .ty = sqlite3_column_int(st, 5),
	    .depth = sqlite3_column_int(st, 6),
	    .ct = col_strdup(st, 7),
	    .et = sqlite3_column_int64(st, 8),
	    .cr = col_strdup(st, 9),
	    .aei = col_strdup(st, 10),
	    .cs = sqlite3_column_int64(st, 11),
	    .cni = sqlite3_column_int64(st, 12),
	    .cbs = sqlite3_column_int64(st, 13),
	    .st = sqlite3_column_int64(st, 14),
	};
	r->attrs = attrs ? json_loads(attrs, 0, &err) : json_object();
	if (!r->ri || !r->path || !r->rn || !r->ct || !r->attrs) {
		store_res_clear(r);
		return -ENOMEM;
	}
	if (with_con && sqlite3_column_type(st, 16) != SQLITE_NULL) {
		const void *b = sqlite3_column_blob(st, 16);
		size_t n = (size_t)sqlite3_column_bytes(st, 16);

		r->con = malloc(n + 1);
		if (!r->con) {
			store_res_clear(r);
			return -ENOMEM;
		}
		if (n)
			memcpy(r->con, b, n);
		r->con[n] = '\0';
		r->con_len = n;
	}
	return 0;
}

static int get_one(struct store_txn *t, enum stmt_id id, const char *key, bool with_con,
		   struct store_res *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	r = stmt(t, id, &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = row_to_res(st, with_con, ret);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = errno_from_sqlite(rc) ?: -EIO;
	sqlite3_reset(st);
	return r;
}

int store_get_by_path(struct store_txn *t, const char *path, bool with_con, struct store_res *ret)
{
	return get_one(t, with_con ? ST_GET_PATH_CON : ST_GET_PATH, path, with_con, ret);
}

int store_get_by_ri(struct store_txn *t, const char *ri, bool with_con, struct store_res *ret)
{
	return get_one(t, with_con ? ST_GET_RI_CON : ST_GET_RI, ri, with_con, ret);
}

int store_get_by_aei(struct store_txn *t, const char *aei, struct store_res *ret)
{
	return get_one(t, ST_GET_AEI, aei, false, ret);
}

static int write_labels(struct store_txn *t, int64_t seq, json_t *attrs, bool replace)
{
	json_t *lbl = json_object_get(attrs, "lbl"), *v;
	sqlite3_stmt *st;
	size_t i;
	int r;

	if (replace) {
		r = stmt(t, ST_LBL_DELETE, &st);
		if (r < 0)
			return r;
		sqlite3_bind_int64(st, 1, seq);
		r = step_done(t, st);
		if (r < 0)
			return r;
	}
	json_array_foreach (lbl, i, v) {
		if (!json_is_string(v))
			continue;
		r = stmt(t, ST_LBL_INSERT, &st);
		if (r < 0)
			return r;
		sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, seq);
		r = step_done(t, st);
		if (r < 0)
			return r;
	}
	return 0;
}

int store_insert(struct store_txn *t, struct store_res *res)
{
	_cleanup_free_ char *attrs = json_dumps(res->attrs, JSON_COMPACT);
	sqlite3_stmt *st;
	int r;

	if (!attrs)
		return -ENOMEM;
	r = stmt(t, ST_INSERT, &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, res->ri, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, res->pi, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, res->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, res->rn, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, res->ty);
	sqlite3_bind_int(st, 6, res->depth);
	sqlite3_bind_text(st, 7, res->ct, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, res->et);
	sqlite3_bind_text(st, 9, res->cr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, res->aei, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, res->cs);
	sqlite3_bind_int64(st, 12, res->cni);
	sqlite3_bind_int64(st, 13, res->cbs);
	sqlite3_bind_int64(st, 14, res->st);
	sqlite3_bind_text(st, 15, attrs, -1, SQLITE_STATIC);
	/* The content exactly as received: no re-encoding (TS-0004 7.4.7). */
	if (res->con)
		sqlite3_bind_blob64(st, 16, res->con, res->con_len, SQLITE_STATIC);
	r = step_done(t, st);
	if (r < 0)
		return r;
	res->seq = sqlite3_last_insert_rowid(t->c->db);
	return write_labels(t, res->seq, res->attrs, false);
}

int store_update(struct store_txn *t, const struct store_res *res)
{
	_cleanup_free_ char *attrs = json_dumps(res->attrs, JSON_COMPACT);
	sqlite3_stmt *st;
	int r;

	if (!attrs)
		return -ENOMEM;
	r = stmt(t, ST_UPDATE, &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, res->seq);
	sqlite3_bind_int64(st, 2, res->et);
	sqlite3_bind_int64(st, 3, res->cni);
	sqlite3_bind_int64(st, 4, res->cbs);
	sqlite3_bind_int64(st, 5, res->st);
	sqlite3_bind_text(st, 6, attrs, -1, SQLITE_STATIC);
	r = step_done(t, st);
	if (r < 0)
		return r;
	return write_labels(t, res->seq, res->attrs, true);
}

int store_update_counters(struct store_txn *t, const struct store_res *res)
{
	sqlite3_stmt *st;
	int r = stmt(t, ST_UPDATE_COUNTERS, &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, res->seq);
	sqlite3_bind_int64(st, 2, res->cni);
	sqlite3_bind_int64(st, 3, res->cbs);
	sqlite3_bind_int64(st, 4, res->st);
	return step_done(t, st);
}

int store_delete_subtree(struct store_txn *t, const char *path)
{
	sqlite3_stmt *st;
	int r;

	r = stmt(t, ST_DELETE_LBL_SUBTREE, &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	r = step_done(t, st);
	if (r < 0)
		return r;
	r = stmt(t, ST_DELETE_SUBTREE, &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	r = step_done(t, st);
	if (r < 0)
		return r;
	return sqlite3_changes(t->c->db);
}

/* Runs st to completion, handing every row to fn. */
static int stream_rows(sqlite3_stmt *st, bool with_con, store_res_fn fn, void *userdata)
{
	int r = 0, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_res res;

		r = row_to_res(st, with_con, &res);
		if (r < 0)
			break;
		r = fn(&res, userdata);
		store_res_clear(&res);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = errno_from_sqlite(rc) ?: -EIO;
	sqlite3_reset(st);
	return r < 0 ? r : 0;
}

int store_children(struct store_txn *t, const char *pi, int ty, bool newest_first, bool with_con,
		   int64_t limit, int64_t offset, store_res_fn fn, void *userdata)
{
	sqlite3_stmt *st;
	int r;

	r = stmt(t, ST_CHILDREN + (newest_first ? 1 : 0) + (ty ? 2 : 0) + (with_con ? 4 : 0), &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, pi, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, ty);
	sqlite3_bind_int64(st, 3, limit);
	sqlite3_bind_int64(st, 4, offset);
	return stream_rows(st, with_con, fn, userdata);
}

int store_find(struct store_txn *t, const struct store_filter *f, store_res_fn fn, void *userdata)
{
	_cleanup_free_ char *sql = NULL;
	sqlite3_stmt *st = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&sql, &len);
	int r, i = 4;

	if (!m)
		return -ENOMEM;
	/* Subtree by path range: the (path) index keeps this a range scan. */
	fputs("SELECT " COLS " FROM res WHERE path>?1||'/' AND path<?1||'0' AND et>=?2", m);
	if (f->max_depth > 0)
		fputs(" AND depth<=?3", m);
	if (f->n_tys) {
		fputs(" AND ty IN (", m);
		for (size_t k = 0; k < f->n_tys; k++)
			fprintf(m, "%s%d", k ? "," : "", f->tys[k]);
		fputs(")", m);
	}
	if (f->n_labels) {
		fputs(" AND seq IN (SELECT seq FROM lbl WHERE label IN (", m);
		for (size_t k = 0; k < f->n_labels; k++)
			fprintf(m, "%s?%d", k ? "," : "", i + (int)k);
		fputs("))", m);
	}
	/* createdAfter <= ct (TS-0004 Table 7.3.3.17.0-1) */
	if (f->cra)
		fprintf(m, " AND ct>=?%d", 100);
	if (f->crb)
		fprintf(m, " AND ct<?%d", 101);
	fputs(" ORDER BY seq", m);
	if (fclose(m) != 0 || !sql)
		return -ENOMEM;
	if (sqlite3_prepare_v2(t->c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_debug("sqlite prepare: %s", sqlite3_errmsg(t->c->db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, f->base_path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, f->now);
	if (f->max_depth > 0)
		sqlite3_bind_int(st, 3, f->max_depth);
	for (size_t k = 0; k < f->n_labels; k++)
		sqlite3_bind_text(st, i + (int)k, f->labels[k], -1, SQLITE_STATIC);
	if (f->cra)
		sqlite3_bind_text(st, 100, f->cra, -1, SQLITE_STATIC);
	if (f->crb)
		sqlite3_bind_text(st, 101, f->crb, -1, SQLITE_STATIC);
	r = stream_rows(st, false, fn, userdata);
	sqlite3_finalize(st);
	return r;
}

int store_expired(struct store_txn *t, int64_t now, int64_t limit, store_res_fn fn, void *userdata)
{
	sqlite3_stmt *st;
	int r = stmt(t, ST_EXPIRED, &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, limit);
	return stream_rows(st, false, fn, userdata);
}

int store_synchronous(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -EIO;

	pthread_mutex_lock(&s->wlock);
	if (sqlite3_prepare_v2(s->writer->db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->wlock);
	return v;
}

int store_count(struct store_txn *t, int64_t *ret)
{
	sqlite3_stmt *st;
	int r = stmt(t, ST_COUNT, &st);

	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -EIO;
	}
	*ret = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/*
 * A checkpoint is due once this many frames (16 MiB of 4 KiB pages) came
 * into the WAL since the last one was asked for. Once a second alone, a
 * stream of large creates (100 MB/s of WAL) left a second of frames to
 * copy after its last commit: some 70 MB after a 256 MiB upload, copied and
 * synced while the next clients' requests ran.
 */
#define CHECKPOINT_FRAMES 4096

/* The writer's commit hook (sqlite3_wal_hook): wakes the checkpointer when
 * the WAL holds CHECKPOINT_FRAMES more frames than when it last did. */
static int wal_committed(void *userdata, sqlite3 *db, const char *name, int frames)
{
	struct store *s = userdata;

	(void)db;
	(void)name;
	if (frames < s->checkpoint_at - CHECKPOINT_FRAMES) /* the WAL started over */
		s->checkpoint_at = CHECKPOINT_FRAMES;
	if (frames >= s->checkpoint_at) {
		s->checkpoint_at = frames + CHECKPOINT_FRAMES;
		pthread_mutex_lock(&s->stop_lock);
		s->checkpoint_due = true;
		pthread_cond_signal(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
	}
	return SQLITE_OK;
}

/* Copies WAL frames into the database once a second, or as soon as
 * CHECKPOINT_FRAMES came (PASSIVE: never blocks the writer or readers); a
 * crash at any point loses nothing since every commit is already durable
 * in the WAL. */
static void *checkpoint_run(void *userdata)
{
	struct store *s = userdata;
	struct timespec ts;
	int last_frames = -1, last_done = -1;

	pthread_mutex_lock(&s->stop_lock);
	while (!s->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		while (!s->stopping && !s->checkpoint_due)
			if (pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &ts) == ETIMEDOUT)
				break;
		bool due = s->checkpoint_due;
		s->checkpoint_due = false;
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->stop_lock);
		int log_frames = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(s->checkpointer->db, NULL,
						   SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
		if (rc != SQLITE_OK)
			log_debug("sqlite checkpoint: %s (%d)", sqlite3_errmsg(s->checkpointer->db),
				  sqlite3_extended_errcode(s->checkpointer->db));
		else if (log_frames != last_frames || done != last_done) { /* idle: said once */
			char why[32] = "a second passed";

			if (due)
				snprintf(why, sizeof(why), "%d more frames", CHECKPOINT_FRAMES);
			log_debug("sqlite checkpoint (%s): %d of %d frames", why, done, log_frames);
		}
		last_frames = log_frames;
		last_done = done;
		pthread_mutex_lock(&s->stop_lock);
	}
	pthread_mutex_unlock(&s->stop_lock);
	return NULL;
}

int store_open(const char *path, struct store **ret)
{
	struct store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->done_lock, NULL);
	pthread_cond_init(&s->committed, NULL);
	pthread_mutex_init(&s->readers_lock, NULL);
	if (pthread_key_create(&s->reader_key, NULL) != 0) {
		free(s->path);
		free(s);
		return -EAGAIN;
	}
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);
	r = conn_open(path, true, &s->writer);
	if (r >= 0) {
		s->checkpoint_at = CHECKPOINT_FRAMES;
		sqlite3_wal_hook(s->writer->db, wal_committed, s);
		r = conn_open(path, false, &s->checkpointer);
	}
	if (r >= 0 &&
	    sqlite3_exec(s->checkpointer->db, "PRAGMA query_only=0; PRAGMA journal_mode=WAL;", NULL,
			 NULL, NULL))
		r = -EIO;
	if (r >= 0) {
		if (pthread_create(&s->checkpoint_thread, NULL, checkpoint_run, s) != 0)
			r = -EAGAIN;
		else
			s->has_thread = true;
	}
	if (r < 0) {
		store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct store *store_free(struct store *s)
{
	if (!s)
		return NULL;
	if (s->has_thread) {
		pthread_mutex_lock(&s->stop_lock);
		s->stopping = true;
		pthread_cond_signal(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->checkpoint_thread, NULL);
	}
	conn_free(s->checkpointer);
	while (s->readers) {
		struct conn *c = s->readers;

		s->readers = c->next;
		conn_free(c);
	}
	conn_free(s->writer);
	pthread_key_delete(s->reader_key);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->done_lock);
	pthread_cond_destroy(&s->committed);
	pthread_mutex_destroy(&s->readers_lock);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	free(s->path);
	free(s);
	return NULL;
}

/* The calling thread's reader, opened on first use (WAL: readers never
 * wait for the writer and see only committed data). */
static int reader_get(struct store *s, struct conn **ret)
{
	struct conn *c = pthread_getspecific(s->reader_key);
	int r;

	if (c) {
		*ret = c;
		return 0;
	}
	r = conn_open(s->path, false, &c);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->readers_lock);
	c->next = s->readers;
	s->readers = c;
	pthread_mutex_unlock(&s->readers_lock);
	pthread_setspecific(s->reader_key, c);
	*ret = c;
	return 0;
}

int store_read(struct store *s, store_txn_fn fn, void *userdata)
{
	struct store_txn t = {.s = s};
	int r;

	r = reader_get(s, &t.c);
	if (r < 0)
		return r;
	r = exec_id(&t, ST_BEGIN);
	if (r < 0)
		return r;
	r = fn(&t, userdata);
	(void)exec_id(&t, ST_COMMIT);
	return r;
}

int store_write(struct store *s, store_txn_fn fn, void *userdata)
{
	struct store_txn t = {.s = s, .c = s->writer};
	bool failed;
	uint64_t gen;
	int r;

	atomic_fetch_add(&s->waiting, 1);
	pthread_mutex_lock(&s->wlock);
	atomic_fetch_sub(&s->waiting, 1);

	if (!s->txn_open) {
		r = exec_id(&t, ST_BEGIN_IMMEDIATE);
		if (r < 0) {
			pthread_mutex_unlock(&s->wlock);
			return r;
		}
		s->txn_open = true;
		s->txn_members = 0;
		gen = ++s->txn_gen;
	} else
		gen = s->txn_gen;

	/* Each operation in its own savepoint, so one failing leaves the
	 * others of the shared transaction intact. */
	r = exec_id(&t, ST_SAVEPOINT);
	if (r >= 0) {
		r = fn(&t, userdata);
		if (r < 0)
			(void)exec_id(&t, ST_ROLLBACK_TO);
		(void)exec_id(&t, ST_RELEASE);
	}
	s->txn_members++;

	/*
	 * Group commit: while writers are queued on the lock (they arrived
	 * during the previous commit's fsync, or while this group ran), the
	 * transaction stays open for them and this writer waits; the last
	 * one in commits for all. synchronous=FULL: COMMIT returns once the
	 * WAL is fsynced, so one fsync makes the whole group durable before
	 * any of it is answered. The queue is bounded by the server's
	 * threads; the member cap bounds the wait regardless.
	 */
	if (atomic_load(&s->waiting) > 0 && s->txn_members < STORE_GROUP_MAX) {
		pthread_mutex_unlock(&s->wlock);
		pthread_mutex_lock(&s->done_lock);
		while (s->done_gen < gen)
			pthread_cond_wait(&s->committed, &s->done_lock);
	} else {
		failed = exec_id(&t, ST_COMMIT) < 0;
		if (failed) {
			log_debug("sqlite commit failed: %s", sqlite3_errmsg(s->writer->db));
			(void)exec_id(&t, ST_ROLLBACK);
		}
		s->txn_open = false;
		pthread_mutex_lock(&s->done_lock);
		if (failed)
			s->failed_gens[s->n_failed++ % ELEMENTSOF(s->failed_gens)] = gen;
		s->done_gen = gen;
		pthread_cond_broadcast(&s->committed);
		pthread_mutex_unlock(&s->wlock);
	}
	for (size_t i = 0; i < ELEMENTSOF(s->failed_gens); i++)
		if (s->failed_gens[i] == gen)
			r = -EIO;
	pthread_mutex_unlock(&s->done_lock);
	return r;
}
