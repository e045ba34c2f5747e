/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's credential store: SQLite rows whose keys are wrapped with XChaCha20-Poly1305. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "atrest/cleanup.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "keystore.h"

#define WRAP_AD_PREFIX "atrest-tefd-wrap-v1"
#define CHECK_AD "atrest-tefd-master-check-v1"
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

enum {
	STMT_GET,
	STMT_INSERT,
	STMT_DELETE,
	STMT_RETIRE,
	STMT_IS_RETIRED,
	STMT_COUNT_OWNER,
	STMT_OWNER_ROWS,
	STMT_SET_HWM,
	STMT_UPDATE,
	STMT_REOWN,
	_STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
    [STMT_GET] = "SELECT owner, suid, created, expires, version, labels, targets, nonce, wrapped"
		 " FROM keys WHERE id = ?1",
    [STMT_INSERT] = "INSERT INTO keys (id, owner, suid, created, expires, version, labels,"
		    " targets, nonce, wrapped) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
    [STMT_DELETE] = "DELETE FROM keys WHERE id = ?1",
    [STMT_RETIRE] = "INSERT OR IGNORE INTO retired (id) VALUES (?1)",
    [STMT_IS_RETIRED] = "SELECT 1 FROM retired WHERE id = ?1",
    [STMT_COUNT_OWNER] = "SELECT count(*) FROM keys WHERE owner = ?1 AND expires > ?2",
    [STMT_OWNER_ROWS] = "SELECT rows FROM temp.owners WHERE owner = ?1",
    [STMT_SET_HWM] = "INSERT OR REPLACE INTO meta (name, value) VALUES ('hwm', ?1)",
    [STMT_UPDATE] = "UPDATE keys SET expires = ?2, labels = ?3, targets = ?4, version = ?5"
		    " WHERE id = ?1",
    [STMT_REOWN] = "UPDATE keys SET owner = ?2, nonce = ?3, wrapped = ?4 WHERE id = ?1",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value ANY);"
    "CREATE TABLE IF NOT EXISTS keys ("
    " id BLOB PRIMARY KEY NOT NULL, owner TEXT NOT NULL, suid INTEGER NOT NULL,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL, version INTEGER NOT NULL,"
    " labels TEXT NOT NULL, targets TEXT NOT NULL, nonce BLOB NOT NULL,"
    " wrapped BLOB NOT NULL) WITHOUT ROWID;"
    /* the per-owner quota and owner listings read (owner, expires) from the index alone */
    "DROP INDEX IF EXISTS keys_owner;"
    "CREATE INDEX IF NOT EXISTS keys_owner_expires ON keys (owner, expires);"
    "CREATE INDEX IF NOT EXISTS keys_expires ON keys (expires);"
    /* ids are never reused (DESIGN.md 3): deleted ones stay here */
    "CREATE TABLE IF NOT EXISTS retired (id BLOB PRIMARY KEY NOT NULL) WITHOUT ROWID;";

/*
 * The rows of each owner, live or expired, kept by triggers in a table of
 * the writer's connection only (memory; rebuilt at every open). The quota
 * check counted the owner's live rows at every registration: a range of
 * the (owner, expires) index as long as the keys the owner holds, so a
 * gateway owner with 6,000 files spent more of tefd's time counting than
 * registering, and 100,000 would take milliseconds each. Now the count is
 * read, and counted exactly only when the rows reach the quota.
 */
static const char owners_sql[] =
    "PRAGMA temp_store = MEMORY;"
    "CREATE TEMP TABLE owners (owner TEXT PRIMARY KEY NOT NULL, rows INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "INSERT INTO temp.owners SELECT owner, count(*) FROM keys GROUP BY owner;"
    "CREATE TEMP TRIGGER owners_insert AFTER INSERT ON main.keys BEGIN"
    " INSERT INTO owners VALUES (NEW.owner, 1)"
    " ON CONFLICT (owner) DO UPDATE SET rows = rows + 1; END;"
    "CREATE TEMP TRIGGER owners_delete AFTER DELETE ON main.keys BEGIN"
    " UPDATE owners SET rows = rows - 1 WHERE owner = OLD.owner; END;"
    "CREATE TEMP TRIGGER owners_reown AFTER UPDATE OF owner ON main.keys"
    " WHEN NEW.owner IS NOT OLD.owner BEGIN"
    " UPDATE owners SET rows = rows - 1 WHERE owner = OLD.owner;"
    " INSERT INTO owners VALUES (NEW.owner, 1)"
    " ON CONFLICT (owner) DO UPDATE SET rows = rows + 1; END;";

/*
 * A read-only connection of one thread: retrievals run without the store
 * lock (WAL readers do not block each other nor the writer).
 */
struct reader {
	sqlite3 *db;
	sqlite3_stmt *get;
	struct reader *next;
};

struct keystore {
	sqlite3 *db; /* the writer; also reads when a reader cannot be had */
	pthread_mutex_t lock;
	char *path;
	pthread_key_t reader_key;
	bool has_reader_key;
	pthread_mutex_t readers_lock;
	struct reader *readers;
	const uint8_t *master;
	uint8_t *audit_key; /* sodium_malloc'd */
	int64_t hwm;	    /* highest time observed; guarded by __atomic */
	sqlite3_stmt *stmt[_STMT_MAX];
};

/* SQLite result codes translated once, here. */
static int errno_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

int keystore_master_key_create(const char *path)
{
	_cleanup_close_ int fd = -1;
	_cleanup_sodium_free_ uint8_t *k = NULL;
	ssize_t n;

	if (sodium_init() < 0)
		return -EIO;
	k = sodium_malloc(KEYSTORE_MASTER_KEY_BYTES);
	if (!k)
		return -ENOMEM;
	randombytes_buf(k, KEYSTORE_MASTER_KEY_BYTES);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* the umask may have been looser than 0600 for group/other bits: be explicit */
	if (fchmod(fd, 0600) < 0)
		return -errno;
	n = write(fd, k, KEYSTORE_MASTER_KEY_BYTES);
	if (n != KEYSTORE_MASTER_KEY_BYTES) {
		int r = n < 0 ? -errno : -EIO;
		(void)unlink(path);
		return r;
	}
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int keystore_master_key_load(const char *path, uint8_t **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_sodium_free_ uint8_t *k = NULL;
	struct stat st;
	size_t got = 0;

	if (sodium_init() < 0)
		return -EIO;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_mode & 077)
		return -EPERM;
	if (st.st_size != KEYSTORE_MASTER_KEY_BYTES)
		return -EINVAL;
	k = sodium_malloc(KEYSTORE_MASTER_KEY_BYTES);
	if (!k)
		return -ENOMEM;
	while (got < KEYSTORE_MASTER_KEY_BYTES) {
		ssize_t n = read(fd, k + got, KEYSTORE_MASTER_KEY_BYTES - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EINVAL;
		got += (size_t)n;
	}
	if (sodium_mprotect_readonly(k) < 0)
		return -errno;
	*ret = TAKE_PTR(k);
	return 0;
}

struct key_record *key_record_free(struct key_record *r)
{
	if (!r)
		return NULL;
	free(r->owner);
	json_strv_free(r->labels, r->n_labels);
	json_strv_free(r->targets, r->n_targets);
	sodium_free(r->key);
	free(r->wrapped);
	free(r);
	return NULL;
}

/*
 * Associated data binding a wrapped key to its row (DESIGN.md 3): a wrapped
 * key copied onto another id, owner or SUID fails to unwrap.
 */
static uint8_t *wrap_ad(const uint8_t *id, const char *owner, int suid, size_t *ret_len)
{
	size_t olen = strlen(owner);
	size_t n = sizeof(WRAP_AD_PREFIX) + TEF_RELATIVE_KEY_ID_BYTES + olen + 1 + 1;
	uint8_t *ad = malloc(n), *p;

	if (!ad)
		return NULL;
	p = ad;
	memcpy(p, WRAP_AD_PREFIX, sizeof(WRAP_AD_PREFIX));
	p += sizeof(WRAP_AD_PREFIX);
	memcpy(p, id, TEF_RELATIVE_KEY_ID_BYTES);
	p += TEF_RELATIVE_KEY_ID_BYTES;
	memcpy(p, owner, olen + 1);
	p += olen + 1;
	*p = (uint8_t)suid;
	*ret_len = n;
	return ad;
}

/* Unwraps into `out` (secure memory of at least 32 bytes). Returns 0 or -EBADMSG. */
static int unwrap_into(const struct keystore *ks, const uint8_t *id, const char *owner, int suid,
		       const void *nonce, int nonce_len, const void *wrapped, int wrapped_len,
		       uint8_t *out, size_t *ret_len)
{
	_cleanup_free_ uint8_t *ad = NULL;
	unsigned long long klen;
	size_t adlen;

	if (nonce_len != (int)NONCE_BYTES || wrapped_len < (int)TAG_BYTES + 16 ||
	    wrapped_len > (int)TAG_BYTES + 32)
		return -EBADMSG;
	ad = wrap_ad(id, owner, suid, &adlen);
	if (!ad)
		return -ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &klen, NULL, wrapped,
						       (unsigned long long)wrapped_len, ad, adlen,
						       nonce, ks->master) != 0)
		return -EBADMSG;
	*ret_len = (size_t)klen;
	return 0;
}

static int unwrap(const struct keystore *ks, const uint8_t *id, const char *owner, int suid,
		  const void *nonce, int nonce_len, const void *wrapped, int wrapped_len,
		  uint8_t **ret, size_t *ret_len)
{
	_cleanup_sodium_free_ uint8_t *key = sodium_malloc(32);
	int r;

	if (!key)
		return -ENOMEM;
	r = unwrap_into(ks, id, owner, suid, nonce, nonce_len, wrapped, wrapped_len, key, ret_len);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(key);
	return 0;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		log_debug("sqlite: %s", sqlite3_errmsg(db));
	return errno_from_sqlite(rc);
}

static sqlite3_stmt *stmt_get(struct keystore *ks, int which)
{
	sqlite3_stmt *s = ks->stmt[which];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static int store_hwm(struct keystore *ks, int64_t now)
{
	sqlite3_stmt *s = stmt_get(ks, STMT_SET_HWM);

	sqlite3_bind_int64(s, 1, now);
	return errno_from_sqlite(sqlite3_step(s));
}

int64_t keystore_now(struct keystore *ks)
{
	int64_t now = (int64_t)time(NULL);
	int64_t seen = __atomic_load_n(&ks->hwm, __ATOMIC_RELAXED);

	while (now > seen) {
		if (__atomic_compare_exchange_n(&ks->hwm, &seen, now, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return now;
	}
	return seen;
}

const uint8_t *keystore_audit_key(const struct keystore *ks)
{
	return ks->audit_key;
}

/* Verifies the stored check value; -ENOENT when there is none yet. */
static int check_master_key_readonly(struct keystore *ks)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	uint8_t blob[NONCE_BYTES + 32 + TAG_BYTES], out[32];
	int rc;

	rc =
	    sqlite3_prepare_v2(ks->db, "SELECT value FROM meta WHERE name = 'check'", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc == SQLITE_ERROR ? -EBADMSG : errno_from_sqlite(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return errno_from_sqlite(rc);
	if (sqlite3_column_bytes(s, 0) != (int)sizeof(blob) || !sqlite3_column_blob(s, 0))
		return -EKEYREJECTED;
	memcpy(blob, sqlite3_column_blob(s, 0), sizeof(blob));
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		out, NULL, NULL, blob + NONCE_BYTES, sizeof(blob) - NONCE_BYTES,
		(const uint8_t *)CHECK_AD, sizeof(CHECK_AD), blob, ks->master) != 0)
		return -EKEYREJECTED;
	sodium_memzero(out, sizeof(out));
	return 0;
}

/* Stores, or on later opens verifies, a value wrapped under the master key. */
static int check_master_key(struct keystore *ks)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	uint8_t blob[NONCE_BYTES + 32 + TAG_BYTES];
	uint8_t zero[32] = {0};
	int r = check_master_key_readonly(ks), rc;

	if (r != -ENOENT)
		return r;
	randombytes_buf(blob, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_BYTES, NULL, zero, sizeof(zero),
						   (const uint8_t *)CHECK_AD, sizeof(CHECK_AD),
						   NULL, blob, ks->master);
	rc = sqlite3_prepare_v2(ks->db, "INSERT INTO meta (name, value) VALUES ('check', ?1)", -1,
				&s, NULL);
	if (rc != SQLITE_OK)
		return errno_from_sqlite(rc);
	sqlite3_bind_blob(s, 1, blob, sizeof(blob), SQLITE_TRANSIENT);
	return errno_from_sqlite(sqlite3_step(s));
}

/* Every stored key must unwrap, or tefd does not serve at all (issue 3). */
static int check_all_rows(struct keystore *ks)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_sodium_free_ uint8_t *key = NULL;
	unsigned bad = 0, total = 0;
	int rc;

	rc = sqlite3_prepare_v2(ks->db, "SELECT id, owner, suid, nonce, wrapped FROM keys", -1, &s,
				NULL);
	if (rc != SQLITE_OK)
		return errno_from_sqlite(rc);
	/* one secure buffer for all rows: start-up stays fast with many keys */
	key = sodium_malloc(32);
	if (!key)
		return -ENOMEM;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *id = sqlite3_column_blob(s, 0);
		const char *owner = (const char *)sqlite3_column_text(s, 1);
		size_t klen;

		total++;
		if (sqlite3_column_bytes(s, 0) != TEF_RELATIVE_KEY_ID_BYTES || !owner ||
		    unwrap_into(ks, id, owner, sqlite3_column_int(s, 2), sqlite3_column_blob(s, 3),
				sqlite3_column_bytes(s, 3), sqlite3_column_blob(s, 4),
				sqlite3_column_bytes(s, 4), key, &klen) < 0)
			bad++;
	}
	if (rc != SQLITE_DONE)
		return errno_from_sqlite(rc);
	if (bad) {
		log_error("%u of %u stored keys fail to unwrap under this master key", bad, total);
		return -EKEYREJECTED;
	}
	log_debug("verified %u stored keys", total);
	return 0;
}

static int load_hwm(struct keystore *ks)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	int rc =
	    sqlite3_prepare_v2(ks->db, "SELECT value FROM meta WHERE name = 'hwm'", -1, &s, NULL);

	if (rc != SQLITE_OK)
		return errno_from_sqlite(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		ks->hwm = sqlite3_column_int64(s, 0);
		if ((int64_t)time(NULL) < ks->hwm)
			log_warning(
			    "the clock is behind the latest time tefd has seen: expiry uses "
			    "the latter");
	} else if (rc != SQLITE_DONE) {
		return errno_from_sqlite(rc);
	}
	(void)keystore_now(ks);
	return 0;
}

struct keystore *keystore_close(struct keystore *ks)
{
	if (!ks)
		return NULL;
	/* the threads that used the readers are gone (httpd stopped first) */
	while (ks->readers) {
		struct reader *r = ks->readers;

		ks->readers = r->next;
		sqlite3_finalize(r->get);
		sqlite3_close(r->db);
		free(r);
	}
	if (ks->has_reader_key)
		pthread_key_delete(ks->reader_key);
	pthread_mutex_destroy(&ks->readers_lock);
	free(ks->path);
	for (int i = 0; i < _STMT_MAX; i++)
		sqlite3_finalize(ks->stmt[i]);
	if (ks->db) {
		/* fold the WAL in and truncate it: no stale frames left behind */
		sqlite3_wal_checkpoint_v2(ks->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		sqlite3_close(ks->db);
	}
	sodium_free(ks->audit_key);
	pthread_mutex_destroy(&ks->lock);
	free(ks);
	return NULL;
}

static int refuse_symlink(const char *path, const char *suffix)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;

	if (asprintf(&p, "%s%s", path, suffix) < 0)
		return -ENOMEM;
	if (lstat(p, &st) == 0 && !S_ISREG(st.st_mode))
		return -ELOOP;
	return 0;
}

int keystore_open(const char *path, const uint8_t *master_key, struct keystore **ret)
{
	struct keystore *ks;
	mode_t old;
	int rc, r;

	if (sodium_init() < 0)
		return -EIO;
	/* symlinked (or otherwise odd) database, WAL or shm paths are refused */
	for (int i = 0; i < 3; i++) {
		r = refuse_symlink(path, (const char *[]){"", "-wal", "-shm"}[i]);
		if (r < 0)
			return r;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	pthread_mutex_init(&ks->lock, NULL);
	pthread_mutex_init(&ks->readers_lock, NULL);
	ks->master = master_key;
	ks->path = strdup(path);
	ks->has_reader_key = ks->path && pthread_key_create(&ks->reader_key, NULL) == 0;

	/* no window where the files exist with looser modes */
	old = umask(077);
	rc = sqlite3_open_v2(path, &ks->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				 SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(ks->db, 5000);
		r = exec_sql(ks->db, "PRAGMA journal_mode = WAL;"
				     "PRAGMA synchronous = FULL;"
				     "PRAGMA secure_delete = ON;"
				     "PRAGMA foreign_keys = ON;"
				     "PRAGMA journal_size_limit = 0;");
		if (r == 0)
			r = exec_sql(ks->db, "BEGIN IMMEDIATE");
		if (r == 0)
			r = exec_sql(ks->db, schema_sql);
		if (r == 0)
			r = check_master_key(ks);
		if (r == 0)
			r = exec_sql(ks->db, "COMMIT");
		else
			(void)exec_sql(ks->db, "ROLLBACK");
	} else {
		r = errno_from_sqlite(rc);
	}
	umask(old);
	if (r < 0)
		goto fail;
	r = check_all_rows(ks);
	if (r == 0)
		r = exec_sql(ks->db, owners_sql);
	if (r < 0)
		goto fail;
	for (int i = 0; i < _STMT_MAX; i++) {
		rc = sqlite3_prepare_v3(ks->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&ks->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			log_debug("sqlite: %s", sqlite3_errmsg(ks->db));
			r = errno_from_sqlite(rc);
			goto fail;
		}
	}
	r = load_hwm(ks);
	if (r < 0)
		goto fail;
	ks->audit_key = sodium_malloc(KEYSTORE_AUDIT_KEY_BYTES);
	if (!ks->audit_key) {
		r = -ENOMEM;
		goto fail;
	}
	crypto_kdf_derive_from_key(ks->audit_key, KEYSTORE_AUDIT_KEY_BYTES, 1, "tefdaudt",
				   ks->master);
	(void)sodium_mprotect_readonly(ks->audit_key);
	*ret = ks;
	return 0;
fail:
	if (ks->db)
		log_debug("keystore: %s", sqlite3_errmsg(ks->db));
	keystore_close(ks);
	return r;
}

static int json_to_strv(const char *text, char ***ret, size_t *ret_n)
{
	_cleanup_json_ json_t *a = json_loads(text ? text : "[]", 0, NULL);

	if (!a || !json_is_array(a))
		return -EBADMSG;
	return json_strv_copy(a, ret, ret_n);
}

static char *strv_to_json(char *const *v, size_t n)
{
	_cleanup_json_ json_t *a = json_strv_new((const char *const *)v, n);

	return a ? json_dumps(a, JSON_COMPACT) : NULL;
}

/* Builds a record (no key) from the current row of a GET-shaped statement. */
static int record_from_row(sqlite3_stmt *s, int col0, struct key_record **ret)
{
	struct key_record *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return -ENOMEM;
	r->owner = strdup((const char *)sqlite3_column_text(s, col0) ?: "");
	r->suid = sqlite3_column_int(s, col0 + 1);
	r->created = sqlite3_column_int64(s, col0 + 2);
	r->expires = sqlite3_column_int64(s, col0 + 3);
	r->version = (uint64_t)sqlite3_column_int64(s, col0 + 4);
	e = r->owner ? 0 : -ENOMEM;
	if (e == 0)
		e = json_to_strv((const char *)sqlite3_column_text(s, col0 + 5), &r->labels,
				 &r->n_labels);
	if (e == 0)
		e = json_to_strv((const char *)sqlite3_column_text(s, col0 + 6), &r->targets,
				 &r->n_targets);
	if (e < 0) {
		key_record_free(r);
		return e;
	}
	*ret = r;
	return 0;
}

static void id_to_hex(const uint8_t *id, char *hex)
{
	sodium_bin2hex(hex, TEF_RELATIVE_KEY_ID_HEX + 1, id, TEF_RELATIVE_KEY_ID_BYTES);
}

static int id_from_hex(const char *hex, uint8_t *id)
{
	size_t n;

	if (strlen(hex) != TEF_RELATIVE_KEY_ID_HEX ||
	    sodium_hex2bin(id, TEF_RELATIVE_KEY_ID_BYTES, hex, TEF_RELATIVE_KEY_ID_HEX, NULL, &n,
			   NULL) != 0 ||
	    n != TEF_RELATIVE_KEY_ID_BYTES)
		return -EINVAL;
	return 0;
}

static void unlockp(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}
#define _cleanup_unlock_ _cleanup_(unlockp) __attribute__((unused))

static pthread_mutex_t *lock(struct keystore *ks)
{
	pthread_mutex_lock(&ks->lock);
	return &ks->lock;
}

/* Ends a write transaction: COMMIT when r is 0, else ROLLBACK; returns r or the commit error. */
static int end_tx(struct keystore *ks, int r)
{
	if (r == 0) {
		r = exec_sql(ks->db, "COMMIT");
		if (r == 0)
			return 0;
	}
	(void)exec_sql(ks->db, "ROLLBACK");
	return r;
}

/* The owner's rows from the count the triggers keep (lock held). */
static int owner_rows_locked(struct keystore *ks, const char *owner, int64_t *ret)
{
	sqlite3_stmt *s = stmt_get(ks, STMT_OWNER_ROWS);
	int rc;

	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return errno_from_sqlite(sqlite3_errcode(ks->db));
	return 0;
}

int keystore_owner_rows(struct keystore *ks, const char *owner, int64_t *ret)
{
	_cleanup_unlock_ pthread_mutex_t *l = lock(ks);

	return owner_rows_locked(ks, owner, ret);
}

/* -EDQUOT when `owner` already holds max_per_owner live registrations (0: no limit). */
static int check_quota(struct keystore *ks, const char *owner, int64_t now, unsigned max_per_owner)
{
	sqlite3_stmt *s;
	int r;

	if (!max_per_owner)
		return 0;
	/* fewer rows than the quota, live or not: fewer live ones too */
	int64_t rows;
	r = owner_rows_locked(ks, owner, &rows);
	if (r < 0)
		return r;
	if (rows < (int64_t)max_per_owner)
		return 0;
	s = stmt_get(ks, STMT_COUNT_OWNER);
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	if (sqlite3_step(s) != SQLITE_ROW) {
		r = errno_from_sqlite(sqlite3_errcode(ks->db));
		sqlite3_reset(s);
		return r;
	}
	r = sqlite3_column_int64(s, 0) >= (int64_t)max_per_owner ? -EDQUOT : 0;
	sqlite3_reset(s);
	return r;
}

static int insert_locked(struct keystore *ks, struct key_record *rec, unsigned max_per_owner)
{
	_cleanup_free_ uint8_t *ad = NULL, *wrapped = NULL;
	_cleanup_free_ char *labels = NULL, *targets = NULL;
	uint8_t nonce[NONCE_BYTES];
	int64_t now = keystore_now(ks);
	sqlite3_stmt *s;
	size_t adlen;
	int r;

	r = check_quota(ks, rec->owner, now, max_per_owner);
	if (r < 0)
		return r;

	/* 128 random bits, and never one that was used before */
	for (;;) {
		randombytes_buf(rec->id, sizeof(rec->id));
		s = stmt_get(ks, STMT_IS_RETIRED);
		sqlite3_bind_blob(s, 1, rec->id, sizeof(rec->id), SQLITE_STATIC);
		r = sqlite3_step(s);
		sqlite3_reset(s);
		if (r == SQLITE_DONE)
			break;
		if (r != SQLITE_ROW)
			return errno_from_sqlite(r);
	}
	id_to_hex(rec->id, rec->id_hex);

	ad = wrap_ad(rec->id, rec->owner, rec->suid, &adlen);
	wrapped = malloc(rec->key_len + TAG_BYTES);
	labels = strv_to_json(rec->labels, rec->n_labels);
	targets = strv_to_json(rec->targets, rec->n_targets);
	if (!ad || !wrapped || !labels || !targets)
		return -ENOMEM;
	randombytes_buf(nonce, sizeof(nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped, NULL, rec->key, rec->key_len, ad, adlen,
						   NULL, nonce, ks->master);

	rec->created = now;
	s = stmt_get(ks, STMT_INSERT);
	sqlite3_bind_blob(s, 1, rec->id, sizeof(rec->id), SQLITE_STATIC);
	sqlite3_bind_text(s, 2, rec->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, rec->suid);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int64(s, 5, rec->expires);
	sqlite3_bind_text(s, 6, labels, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, targets, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 8, nonce, sizeof(nonce), SQLITE_STATIC);
	sqlite3_bind_blob(s, 9, wrapped, (int)(rec->key_len + TAG_BYTES), SQLITE_STATIC);
	r = errno_from_sqlite(sqlite3_step(s));
	sqlite3_reset(s);
	if (r < 0)
		return r;
	rec->version = 0;
	return store_hwm(ks, now);
}

int keystore_insert_batch(struct keystore *ks, struct key_record *recs, size_t n,
			  unsigned max_per_owner)
{
	_cleanup_unlock_ pthread_mutex_t *l = lock(ks);
	int r;

	for (size_t i = 0; i < n; i++)
		if (!recs[i].key || (recs[i].key_len != 16 && recs[i].key_len != 32) ||
		    !recs[i].owner)
			return -EINVAL;
	r = exec_sql(ks->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = insert_locked(ks, &recs[i], max_per_owner);
	return end_tx(ks, r);
}

int keystore_insert(struct keystore *ks, struct key_record *rec, unsigned max_per_owner)
{
	return keystore_insert_batch(ks, rec, 1, max_per_owner);
}

/* Runs a GET-shaped statement for id; the statement is reset before returning. */
static int get_row(sqlite3_stmt *s, const uint8_t *id, struct key_record **ret)
{
	struct key_record *rec = NULL;
	int rc, r;

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);

	sqlite3_bind_blob(s, 1, id, TEF_RELATIVE_KEY_ID_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return errno_from_sqlite(rc);
	}
	r = record_from_row(s, 0, &rec);
	if (r == 0) {
		int nlen = sqlite3_column_bytes(s, 7), wlen = sqlite3_column_bytes(s, 8);

		memcpy(rec->id, id, TEF_RELATIVE_KEY_ID_BYTES);
		id_to_hex(id, rec->id_hex);
		if (nlen == NONCE_BYTES && wlen > 0 && (rec->wrapped = malloc((size_t)wlen))) {
			memcpy(rec->nonce, sqlite3_column_blob(s, 7), NONCE_BYTES);
			memcpy(rec->wrapped, sqlite3_column_blob(s, 8), (size_t)wlen);
			rec->wrapped_len = (size_t)wlen;
		} else if (nlen == NONCE_BYTES && wlen > 0) {
			r = -ENOMEM;
		}
	}
	sqlite3_reset(s);
	if (r < 0) {
		key_record_free(rec);
		return r;
	}
	*ret = rec;
	return 0;
}

static int get_locked(struct keystore *ks, const uint8_t *id, struct key_record **ret)
{
	return get_row(ks->stmt[STMT_GET], id, ret);
}

/* This thread's reader, opened on first use; NULL when none can be had. */
static struct reader *reader_get(struct keystore *ks)
{
	struct reader *r;

	if (!ks->has_reader_key)
		return NULL;
	r = pthread_getspecific(ks->reader_key);
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (sqlite3_open_v2(ks->path, &r->db,
			    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(r->db, 5000) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db, stmt_sql[STMT_GET], -1, SQLITE_PREPARE_PERSISTENT, &r->get,
			       NULL) != SQLITE_OK ||
	    pthread_setspecific(ks->reader_key, r) != 0) {
		log_debug("no reader connection: retrievals take the store lock");
		sqlite3_finalize(r->get);
		sqlite3_close(r->db);
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&ks->readers_lock);
	r->next = ks->readers;
	ks->readers = r;
	pthread_mutex_unlock(&ks->readers_lock);
	return r;
}

int keystore_get(struct keystore *ks, const char *id_hex, struct key_record **ret)
{
	uint8_t id[TEF_RELATIVE_KEY_ID_BYTES];
	_cleanup_unlock_ pthread_mutex_t *l = NULL;
	struct reader *rd;

	if (id_from_hex(id_hex, id) < 0)
		return -ENOENT;
	rd = reader_get(ks);
	if (rd)
		return get_row(rd->get, id, ret);
	l = lock(ks);
	return get_locked(ks, id, ret);
}

int keystore_unwrap_into(const struct keystore *ks, const struct key_record *rec, uint8_t *out,
			 size_t *ret_len)
{
	if (!rec->wrapped || rec->wrapped_len > INT32_MAX)
		return -EBADMSG;
	return unwrap_into(ks, rec->id, rec->owner, rec->suid, rec->nonce, NONCE_BYTES,
			   rec->wrapped, (int)rec->wrapped_len, out, ret_len);
}

int keystore_unwrap(const struct keystore *ks, struct key_record *rec)
{
	if (rec->key)
		return 0;
	if (!rec->wrapped || rec->wrapped_len > INT32_MAX)
		return -EBADMSG;
	return unwrap(ks, rec->id, rec->owner, rec->suid, rec->nonce, NONCE_BYTES, rec->wrapped,
		      (int)rec->wrapped_len, &rec->key, &rec->key_len);
}

/*
 * Ownership transfer: the owner is part of the wrapping's associated data
 * (wrap_ad), so the key is unwrapped under the old owner and wrapped anew,
 * with a fresh nonce, under the new one.
 */
static int reown_locked(struct keystore *ks, const struct key_record *rec, const char *owner,
			unsigned max_per_owner)
{
	_cleanup_sodium_free_ uint8_t *key = sodium_malloc(32);
	_cleanup_free_ uint8_t *ad = NULL, *wrapped = NULL;
	uint8_t nonce[NONCE_BYTES];
	size_t key_len = 0, adlen;
	sqlite3_stmt *s;
	int r;

	if (!key)
		return -ENOMEM;
	r = check_quota(ks, owner, keystore_now(ks), max_per_owner);
	if (r < 0)
		return r;
	if (!rec->wrapped || rec->wrapped_len > INT32_MAX)
		return -EBADMSG;
	r = unwrap_into(ks, rec->id, rec->owner, rec->suid, rec->nonce, NONCE_BYTES, rec->wrapped,
			(int)rec->wrapped_len, key, &key_len);
	if (r < 0)
		return r;
	ad = wrap_ad(rec->id, owner, rec->suid, &adlen);
	wrapped = malloc(key_len + TAG_BYTES);
	if (!ad || !wrapped)
		return -ENOMEM;
	randombytes_buf(nonce, sizeof(nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped, NULL, key, key_len, ad, adlen, NULL,
						   nonce, ks->master);
	s = stmt_get(ks, STMT_REOWN);
	sqlite3_bind_blob(s, 1, rec->id, TEF_RELATIVE_KEY_ID_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, nonce, sizeof(nonce), SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, wrapped, (int)(key_len + TAG_BYTES), SQLITE_STATIC);
	r = errno_from_sqlite(sqlite3_step(s));
	sqlite3_reset(s);
	return r;
}

static int update_locked(struct keystore *ks, const uint8_t *id, const struct key_update *u,
			 struct key_record **ret)
{
	struct key_record *rec = NULL;
	_cleanup_free_ char *labels = NULL, *targets = NULL;
	sqlite3_stmt *s;
	int r;

	r = get_locked(ks, id, &rec);
	if (r < 0)
		return r;
	if (u->set_version && u->version < rec->version) {
		key_record_free(rec);
		return -ERANGE;
	}
	if (u->owner && strcmp(u->owner, rec->owner) != 0) {
		r = reown_locked(ks, rec, u->owner, u->max_per_owner);
		if (r < 0) {
			key_record_free(rec);
			return r;
		}
	}
	labels = strv_to_json(u->set_labels ? u->labels : rec->labels,
			      u->set_labels ? u->n_labels : rec->n_labels);
	targets = strv_to_json(u->set_targets ? u->targets : rec->targets,
			       u->set_targets ? u->n_targets : rec->n_targets);
	if (!labels || !targets) {
		key_record_free(rec);
		return -ENOMEM;
	}
	s = stmt_get(ks, STMT_UPDATE);
	sqlite3_bind_blob(s, 1, id, TEF_RELATIVE_KEY_ID_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, u->set_expires ? u->expires : rec->expires);
	sqlite3_bind_text(s, 3, labels, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, targets, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, (int64_t)(u->set_version ? u->version : rec->version));
	r = errno_from_sqlite(sqlite3_step(s));
	sqlite3_reset(s);
	key_record_free(rec);
	if (r == 0)
		r = store_hwm(ks, keystore_now(ks));
	if (r == 0)
		r = get_locked(ks, id, ret);
	return r;
}

int keystore_update(struct keystore *ks, const char *id_hex, const struct key_update *u,
		    struct key_record **ret)
{
	uint8_t id[TEF_RELATIVE_KEY_ID_BYTES];
	_cleanup_unlock_ pthread_mutex_t *l = NULL;
	struct key_record *rec = NULL;
	int r;

	if (id_from_hex(id_hex, id) < 0)
		return -ENOENT;
	l = lock(ks);
	r = exec_sql(ks->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = end_tx(ks, update_locked(ks, id, u, &rec));
	if (r < 0) {
		key_record_free(rec);
		return r;
	}
	*ret = rec;
	return 0;
}

/* Crypto-shredding: secure_delete zeroed the pages; this drops old WAL frames. */
static void shred_wal(struct keystore *ks)
{
	int rc = sqlite3_wal_checkpoint_v2(ks->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	if (rc != SQLITE_OK)
		log_debug("wal checkpoint: %s", sqlite3_errmsg(ks->db));
}

static int delete_locked(struct keystore *ks, const uint8_t *id)
{
	sqlite3_stmt *s = stmt_get(ks, STMT_DELETE);
	int r;

	sqlite3_bind_blob(s, 1, id, TEF_RELATIVE_KEY_ID_BYTES, SQLITE_STATIC);
	r = errno_from_sqlite(sqlite3_step(s));
	sqlite3_reset(s);
	if (r < 0)
		return r;
	if (sqlite3_changes(ks->db) == 0)
		return -ENOENT;
	s = stmt_get(ks, STMT_RETIRE);
	sqlite3_bind_blob(s, 1, id, TEF_RELATIVE_KEY_ID_BYTES, SQLITE_STATIC);
	r = errno_from_sqlite(sqlite3_step(s));
	sqlite3_reset(s);
	return r;
}

int keystore_delete(struct keystore *ks, const char *id_hex)
{
	uint8_t id[TEF_RELATIVE_KEY_ID_BYTES];
	_cleanup_unlock_ pthread_mutex_t *l = NULL;
	int r;

	if (id_from_hex(id_hex, id) < 0)
		return -ENOENT;
	l = lock(ks);
	r = exec_sql(ks->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = end_tx(ks, delete_locked(ks, id));
	if (r == 0)
		shred_wal(ks);
	return r;
}

int keystore_list(struct keystore *ks, const struct keystore_filter *f,
		  int (*fn)(const struct key_record *r, void *userdata), void *userdata)
{
	_cleanup_unlock_ pthread_mutex_t *l = lock(ks);
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(
	    ks->db,
	    "SELECT id, owner, suid, created, expires, version, labels, targets FROM keys"
	    " WHERE expires > ?1 AND (?2 IS NULL OR owner = ?2)"
	    " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(keys.labels) WHERE value = ?3))"
	    " AND (?4 = 0 OR expires < ?4) ORDER BY expires, id",
	    -1, &s, NULL);
	if (rc != SQLITE_OK)
		return errno_from_sqlite(rc);
	sqlite3_bind_int64(s, 1, f->now);
	if (f->owner)
		sqlite3_bind_text(s, 2, f->owner, -1, SQLITE_STATIC);
	if (f->label)
		sqlite3_bind_text(s, 3, f->label, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, f->expires_before);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct key_record *rec = NULL;

		if (sqlite3_column_bytes(s, 0) != TEF_RELATIVE_KEY_ID_BYTES)
			continue;
		r = record_from_row(s, 1, &rec);
		if (r < 0)
			return r;
		memcpy(rec->id, sqlite3_column_blob(s, 0), TEF_RELATIVE_KEY_ID_BYTES);
		id_to_hex(rec->id, rec->id_hex);
		r = fn(rec, userdata);
		key_record_free(rec);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return errno_from_sqlite(rc);
}

/* Deletes the expired rows, retiring their ids and reporting each to fn. */
static int sweep_locked(struct keystore *ks, int64_t now, void (*fn)(const char *, void *),
			void *userdata)
{
	_cleanup_sqlite_stmt_ sqlite3_stmt *s = NULL;
	sqlite3_stmt *retire;
	int rc, r, n = 0;

	rc = sqlite3_prepare_v2(ks->db, "DELETE FROM keys WHERE expires <= ?1 RETURNING id", -1, &s,
				NULL);
	if (rc != SQLITE_OK)
		return errno_from_sqlite(rc);
	sqlite3_bind_int64(s, 1, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char hex[TEF_RELATIVE_KEY_ID_HEX + 1];

		if (sqlite3_column_bytes(s, 0) != TEF_RELATIVE_KEY_ID_BYTES)
			continue;
		retire = stmt_get(ks, STMT_RETIRE);
		sqlite3_bind_blob(retire, 1, sqlite3_column_blob(s, 0), TEF_RELATIVE_KEY_ID_BYTES,
				  SQLITE_TRANSIENT);
		r = errno_from_sqlite(sqlite3_step(retire));
		sqlite3_reset(retire);
		if (r < 0)
			return r;
		id_to_hex(sqlite3_column_blob(s, 0), hex);
		if (fn)
			fn(hex, userdata);
		n++;
	}
	r = errno_from_sqlite(rc);
	if (r == 0)
		r = store_hwm(ks, keystore_now(ks));
	return r < 0 ? r : n;
}

int keystore_sweep(struct keystore *ks, int64_t now, void (*fn)(const char *id_hex, void *),
		   void *userdata)
{
	_cleanup_unlock_ pthread_mutex_t *l = lock(ks);
	int r, n;

	r = exec_sql(ks->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	n = sweep_locked(ks, now, fn, userdata);
	r = end_tx(ks, n < 0 ? n : 0);
	if (r < 0)
		return r;
	if (n > 0)
		shred_wal(ks);
	return n;
}

int keystore_snapshot(struct keystore *ks, uint8_t **ret, size_t *ret_len)
{
	_cleanup_unlock_ pthread_mutex_t *l = lock(ks);
	sqlite3_int64 n = 0;
	unsigned char *data;
	uint8_t *copy;

	/* under the lock no write is in flight: the pages form one consistent state */
	data = sqlite3_serialize(ks->db, "main", &n, 0);
	if (!data || n <= 0)
		return -ENOMEM;
	copy = malloc((size_t)n);
	if (copy)
		memcpy(copy, data, (size_t)n);
	sqlite3_free(data);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	*ret_len = (size_t)n;
	return 0;
}

int keystore_verify_file(const char *path, const uint8_t *master_key)
{
	struct keystore ks = {.master = master_key};
	int rc, r;

	rc = sqlite3_open_v2(path, &ks.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(ks.db);
		return errno_from_sqlite(rc);
	}
	r = check_master_key_readonly(&ks);
	if (r == 0)
		r = check_all_rows(&ks);
	sqlite3_close(ks.db);
	return r;
}
