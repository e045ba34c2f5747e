/* SPDX-License-Identifier: Apache-2.0 */
/* The key store: master key files, wrapping bound to the row, updates, deletes, sweeps. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>

#include "keystore.h"

struct fixture {
	char dir[64];
	char mk[128];
	char db[128];
	uint8_t *master;
	struct keystore *ks;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-keystore.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->mk, sizeof(f->mk), "%s/master.key", f->dir);
	snprintf(f->db, sizeof(f->db), "%s/tef.db", f->dir);
	assert_int_equal(keystore_master_key_create(f->mk), 0);
	assert_int_equal(keystore_master_key_load(f->mk, &f->master), 0);
	assert_int_equal(keystore_open(f->db, f->master, &f->ks), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	keystore_close(f->ks);
	sodium_free(f->master);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Registers a key of `len` bytes filled with `fill`; returns its id in rec. */
static void put(struct fixture *f, const char *owner, int suid, uint8_t fill, size_t len,
		int64_t expires, struct key_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->owner = (char *)owner;
	rec->suid = suid;
	rec->expires = expires;
	rec->key = sodium_malloc(len);
	assert_non_null(rec->key);
	memset(rec->key, fill, len);
	rec->key_len = len;
	assert_int_equal(keystore_insert(f->ks, rec, 0), 0);
	sodium_free(rec->key);
	rec->key = NULL;
}

static void test_master_key_file(void **state)
{
	struct fixture *f = *state;
	uint8_t *k = NULL;
	struct stat st;
	char path[160], link[160];
	FILE *fp;

	assert_int_equal(stat(f->mk, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, KEYSTORE_MASTER_KEY_BYTES);
	/* never overwrites */
	assert_int_equal(keystore_master_key_create(f->mk), -EEXIST);

	/* group-readable: refused */
	snprintf(path, sizeof(path), "%s/loose.key", f->dir);
	assert_int_equal(keystore_master_key_create(path), 0);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keystore_master_key_load(path, &k), -EPERM);
	assert_null(k);

	/* symlink: refused */
	snprintf(link, sizeof(link), "%s/link.key", f->dir);
	assert_int_equal(symlink(f->mk, link), 0);
	assert_int_equal(keystore_master_key_load(link, &k), -ELOOP);

	/* wrong size */
	snprintf(path, sizeof(path), "%s/short.key", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("short", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keystore_master_key_load(path, &k), -EINVAL);

	snprintf(path, sizeof(path), "%s/missing.key", f->dir);
	assert_int_equal(keystore_master_key_load(path, &k), -ENOENT);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct key_record rec, *got = NULL;
	struct stat st;
	int64_t exp = time(NULL) + 3600;

	put(f, "uid:1000", 34, 0xab, 32, exp, &rec);
	assert_int_equal(strlen(rec.id_hex), TEF_RELATIVE_KEY_ID_HEX);
	assert_int_equal(keystore_get(f->ks, rec.id_hex, &got), 0);
	assert_string_equal(got->owner, "uid:1000");
	assert_int_equal(got->suid, 34);
	assert_int_equal(got->expires, exp);
	assert_null(got->key);
	assert_int_equal(keystore_unwrap(f->ks, got), 0);
	assert_int_equal(got->key_len, 32);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(got->key[i], 0xab);
	{
		uint8_t *buf = sodium_malloc(32);
		size_t len = 0;

		assert_int_equal(keystore_unwrap_into(f->ks, got, buf, &len), 0);
		assert_int_equal(len, 32);
		assert_memory_equal(buf, got->key, 32);
		sodium_free(buf);
	}
	key_record_free(got);

	assert_int_equal(keystore_get(f->ks, "00000000000000000000000000000000", &got), -ENOENT);
	assert_int_equal(keystore_get(f->ks, "zz", &got), -ENOENT);

	/* the database never appears with a loose mode */
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	assert_true(keystore_now(f->ks) >= (int64_t)time(NULL));
}

/* Swapping the wrapped columns of two rows must make both fail to unwrap. */
static void test_row_swap(void **state)
{
	struct fixture *f = *state;
	struct key_record a, b, *got = NULL;
	uint8_t *master2 = NULL;
	sqlite3 *db;
	char sql[512], mk2[160];
	struct keystore *ks2 = NULL;

	put(f, "uid:1", 34, 0x11, 32, time(NULL) + 3600, &a);
	put(f, "uid:2", 34, 0x22, 32, time(NULL) + 3600, &b);
	keystore_close(f->ks);
	f->ks = NULL;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "CREATE TEMP TABLE t AS SELECT id, nonce, wrapped FROM keys;"
		 "UPDATE keys SET nonce = (SELECT nonce FROM t WHERE t.id = x'%s'),"
		 " wrapped = (SELECT wrapped FROM t WHERE t.id = x'%s') WHERE id = x'%s';"
		 "UPDATE keys SET nonce = (SELECT nonce FROM t WHERE t.id = x'%s'),"
		 " wrapped = (SELECT wrapped FROM t WHERE t.id = x'%s') WHERE id = x'%s';",
		 b.id_hex, b.id_hex, a.id_hex, a.id_hex, a.id_hex, b.id_hex);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* tefd refuses to start over tampered rows */
	assert_int_equal(keystore_open(f->db, f->master, &f->ks), -EKEYREJECTED);
	assert_null(f->ks);

	/* and a wrong master key is refused too */
	snprintf(mk2, sizeof(mk2), "%s/other.key", f->dir);
	assert_int_equal(keystore_master_key_create(mk2), 0);
	assert_int_equal(keystore_master_key_load(mk2, &master2), 0);
	assert_int_equal(keystore_open(f->db, master2, &ks2), -EKEYREJECTED);
	sodium_free(master2);

	/* with the rows put back, it opens and unwraps again */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "DELETE FROM keys WHERE id = x'%s';", b.id_hex);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(keystore_open(f->db, f->master, &f->ks), -EKEYREJECTED);
	/* a's row still carries b's wrapped key: it stays unusable */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "DELETE FROM keys WHERE id = x'%s';", a.id_hex);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(keystore_open(f->db, f->master, &f->ks), 0);
	assert_int_equal(keystore_get(f->ks, a.id_hex, &got), -ENOENT);
}

static void test_update_delete(void **state)
{
	struct fixture *f = *state;
	struct key_record rec, *got = NULL;
	char *labels[] = {"x", "y"}, *targets[] = {"uid:5"};
	struct key_update u = {.set_labels = true,
			       .labels = labels,
			       .n_labels = 2,
			       .set_targets = true,
			       .targets = targets,
			       .n_targets = 1,
			       .set_version = true,
			       .version = 7};

	put(f, "uid:1000", 35, 0x33, 16, time(NULL) + 3600, &rec);
	assert_int_equal(keystore_update(f->ks, rec.id_hex, &u, &got), 0);
	assert_int_equal(got->n_labels, 2);
	assert_string_equal(got->labels[1], "y");
	assert_int_equal(got->n_targets, 1);
	assert_string_equal(got->targets[0], "uid:5");
	assert_int_equal(got->version, 7);
	assert_int_equal(got->suid, 35);
	got = key_record_free(got);

	/* the version never goes down */
	u = (struct key_update){.set_version = true, .version = 6};
	assert_int_equal(keystore_update(f->ks, rec.id_hex, &u, &got), -ERANGE);
	assert_null(got);
	u.version = 7;
	assert_int_equal(keystore_update(f->ks, rec.id_hex, &u, &got), 0);
	got = key_record_free(got);

	assert_int_equal(keystore_delete(f->ks, rec.id_hex), 0);
	assert_int_equal(keystore_delete(f->ks, rec.id_hex), -ENOENT);
	assert_int_equal(keystore_get(f->ks, rec.id_hex, &got), -ENOENT);
	assert_int_equal(keystore_update(f->ks, rec.id_hex, &u, &got), -ENOENT);
}

struct count {
	unsigned n;
	char last[TEF_RELATIVE_KEY_ID_HEX + 1];
};

static int count_cb(const struct key_record *r, void *userdata)
{
	struct count *c = userdata;

	assert_null(r->key);
	c->n++;
	strcpy(c->last, r->id_hex);
	return 0;
}

static void swept(const char *id_hex, void *userdata)
{
	struct count *c = userdata;

	c->n++;
	strcpy(c->last, id_hex);
}

static void test_list_sweep_quota(void **state)
{
	struct fixture *f = *state;
	struct key_record a, b, c, rec = {0};
	struct count n = {0};
	int64_t now = time(NULL);
	char *labels[] = {"blue"};
	struct key_update u = {.set_labels = true, .labels = labels, .n_labels = 1};
	struct key_record *got = NULL;

	put(f, "uid:1", 34, 1, 32, now + 100, &a);
	put(f, "uid:1", 34, 2, 32, now + 5000, &b);
	put(f, "uid:2", 34, 3, 32, now - 1, &c); /* already expired */
	assert_int_equal(keystore_update(f->ks, b.id_hex, &u, &got), 0);
	key_record_free(got);

	struct keystore_filter all = {.now = now};
	assert_int_equal(keystore_list(f->ks, &all, count_cb, &n), 0);
	assert_int_equal(n.n, 2); /* the expired one is not listed */

	n = (struct count){0};
	struct keystore_filter by_label = {.now = now, .label = "blue"};
	assert_int_equal(keystore_list(f->ks, &by_label, count_cb, &n), 0);
	assert_int_equal(n.n, 1);
	assert_string_equal(n.last, b.id_hex);

	n = (struct count){0};
	struct keystore_filter soon = {.now = now, .owner = "uid:1", .expires_before = now + 200};
	assert_int_equal(keystore_list(f->ks, &soon, count_cb, &n), 0);
	assert_int_equal(n.n, 1);
	assert_string_equal(n.last, a.id_hex);

	n = (struct count){0};
	assert_int_equal(keystore_sweep(f->ks, now, swept, &n), 1);
	assert_int_equal(n.n, 1);
	assert_string_equal(n.last, c.id_hex);
	assert_int_equal(keystore_get(f->ks, c.id_hex, &got), -ENOENT);
	assert_int_equal(keystore_sweep(f->ks, now, NULL, NULL), 0);
	/* a purged id is retired: never handed out again, never found */
	assert_int_equal(keystore_delete(f->ks, c.id_hex), -ENOENT);

	/* at most two live registrations for uid:1 */
	rec.owner = "uid:1";
	rec.suid = 34;
	rec.expires = now + 10;
	rec.key = sodium_malloc(32);
	rec.key_len = 32;
	assert_int_equal(keystore_insert(f->ks, &rec, 2), -EDQUOT);
	rec.owner = "uid:3";
	assert_int_equal(keystore_insert(f->ks, &rec, 2), 0);
	rec.key_len = 20;
	assert_int_equal(keystore_insert(f->ks, &rec, 2), -EINVAL);
	sodium_free(rec.key);
}

/* Registers a 32-byte key for owner under a quota of max; returns keystore_insert's result. */
static int put_quota(struct fixture *f, const char *owner, int64_t expires, unsigned max,
		     struct key_record *rec)
{
	int r;

	memset(rec, 0, sizeof(*rec));
	rec->owner = (char *)owner;
	rec->suid = 34;
	rec->expires = expires;
	rec->key = sodium_malloc(32);
	assert_non_null(rec->key);
	memset(rec->key, 7, 32);
	rec->key_len = 32;
	r = keystore_insert(f->ks, rec, max);
	sodium_free(rec->key);
	rec->key = NULL;
	return r;
}

/* owner's rows as the triggers counted them */
static int64_t rows_of(struct fixture *f, const char *owner)
{
	int64_t n = -1;

	assert_int_equal(keystore_owner_rows(f->ks, owner, &n), 0);
	return n;
}

/* The quota reads counts kept by triggers: every way a row comes, goes or
 * changes owner moves them (checked exactly: a count too high would only
 * make the quota check count again, and pass), expired rows are counted
 * out exactly, and a reopened store counts again. */
static void test_quota_counts(void **state)
{
	struct fixture *f = *state;
	struct key_record a, b, c, x, *got = NULL;
	int64_t now = time(NULL);

	assert_int_equal(put_quota(f, "uid:7", now - 1, 0, &a), 0); /* expired, not swept */
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &b), 0);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &c), 0);
	/* three rows, two live: a third live one fits, a fourth does not */
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &x), 0);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &x), -EDQUOT);
	assert_int_equal(put_quota(f, "uid:8", now + 100, 3, &x), 0); /* per owner */
	assert_int_equal(rows_of(f, "uid:7"), 4);
	assert_int_equal(rows_of(f, "uid:8"), 1);
	assert_int_equal(rows_of(f, "uid:404"), 0);

	/* a de-registration frees a place */
	assert_int_equal(keystore_delete(f->ks, b.id_hex), 0);
	assert_int_equal(rows_of(f, "uid:7"), 3);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &b), 0);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 3, &x), -EDQUOT);
	/* so does the sweep, and the swept row no longer counts at all */
	assert_int_equal(keystore_sweep(f->ks, now, NULL, NULL), 1);
	assert_int_equal(rows_of(f, "uid:7"), 3);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 4, &x), 0);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 4, &x), -EDQUOT);

	/* an owner transfer moves the count: uid:8 holds 1 and takes c */
	char *owner8 = "uid:8";
	struct key_update u = {.owner = owner8, .max_per_owner = 2};
	assert_int_equal(keystore_update(f->ks, c.id_hex, &u, &got), 0);
	got = key_record_free(got);
	assert_int_equal(rows_of(f, "uid:7"), 3);
	assert_int_equal(rows_of(f, "uid:8"), 2);
	assert_int_equal(put_quota(f, "uid:8", now + 100, 2, &x), -EDQUOT);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 4, &x), 0);

	/* a refused batch leaves the counts as they were (rolled back) */
	struct key_record batch[3];
	for (int i = 0; i < 3; i++) {
		batch[i] = (struct key_record){.owner = "uid:9", .suid = 34, .expires = now + 100};
		batch[i].key = sodium_malloc(32);
		assert_non_null(batch[i].key);
		memset(batch[i].key, i, 32);
		batch[i].key_len = 32;
	}
	assert_int_equal(keystore_insert_batch(f->ks, batch, 3, 2), -EDQUOT);
	assert_int_equal(rows_of(f, "uid:9"), 0); /* rolled back with the batch */
	assert_int_equal(put_quota(f, "uid:9", now + 100, 2, &x), 0);
	assert_int_equal(keystore_insert_batch(f->ks, batch, 1, 2), 0);
	assert_int_equal(put_quota(f, "uid:9", now + 100, 2, &x), -EDQUOT);
	for (int i = 0; i < 3; i++)
		sodium_free(batch[i].key);

	/* counted again from the rows when the store is opened */
	keystore_close(f->ks);
	assert_int_equal(keystore_open(f->db, f->master, &f->ks), 0);
	assert_int_equal(rows_of(f, "uid:7"), 4);
	assert_int_equal(rows_of(f, "uid:8"), 2);
	assert_int_equal(rows_of(f, "uid:9"), 2);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 4, &x), -EDQUOT);
	assert_int_equal(put_quota(f, "uid:7", now + 100, 5, &x), 0);
	assert_int_equal(put_quota(f, "uid:8", now + 100, 2, &x), -EDQUOT);
}

static void test_symlink_db(void **state)
{
	struct fixture *f = *state;
	struct keystore *ks = NULL;
	char link[160];

	snprintf(link, sizeof(link), "%s/link.db", f->dir);
	assert_int_equal(symlink(f->db, link), 0);
	assert_int_equal(keystore_open(link, f->master, &ks), -ELOOP);
	assert_null(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_master_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_row_swap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_sweep_quota, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_db, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
