/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs's cache: segments written by several threads at once, small ones in the index and large ones in files, what a restart sweeps away, eviction, group commit. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "atrest/cleanup.h"
#include "atrestfs.h"
#include "cache.h"

struct fs *the_fs; /* main.c's; the cache does not use it */

#define ROUNDS 300
#define BIG (256 * 1024)

struct writer {
	struct cache *c;
	char *data;
	size_t len;
	int failures;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < ROUNDS; i++)
		if (cache_seg_write(w->c, 7, 0, 3, w->data, w->len) < 0)
			w->failures++;
	return NULL;
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/test_fs_cache.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

/* A sealer, a reader storing a fetched copy and the read-ahead may write one
 * segment at once: each write succeeds and the file is always one whole copy. */
static void test_concurrent_writes_of_one_segment(void **state)
{
	char *dir = tmpdir(), cdir[300];
	struct cache *c = NULL;
	struct writer w[2];
	pthread_t t[2];
	int fresh;

	(void)state;
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct writer){ .c = c, .len = i ? 100 : BIG, .data = malloc(BIG) };
		assert_non_null(w[i].data);
		memset(w[i].data, i ? 'b' : 'a', BIG);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, write_loop, &w[i]), 0);
	for (int round = 0; round < ROUNDS; round++) {
		char *got = NULL;
		size_t len = 0;

		if (cache_seg_read(c, 7, 0, 3, &got, &len) == 0) {
			/* never a truncated or mixed file */
			assert_true(len == BIG || len == 100);
			for (size_t k = 1; k < len; k++)
				assert_int_equal(got[k], got[0]);
			free(got);
		}
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		free(w[i].data);
	}
	cache_close(c);
	rm_rf(dir);
	free(dir);
}

/* What a crash leaves (a temp file, a segment no committed row names) goes at
 * the next open; committed segments stay. */
static void test_sweep_at_open(void **state)
{
	char *dir = tmpdir(), cdir[300], p[400];
	struct node *n = calloc(1, sizeof(*n));
	struct seg segs[1] = { { .gen = 2, .len = 5 } };
	struct cache *c = NULL;
	struct stat st;
	int fresh;

	(void)state;
	assert_non_null(n);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	n->ino = 9;
	n->mode = S_IFREG | 0644;
	n->version = 2;
	n->size = 5;
	assert_int_equal(cache_seg_write(c, 9, 0, 2, "sealed", 6), 0);
	uint64_t batch = 0;
	assert_int_equal(cache_commit(c, n, segs, 1, "manifest", 8, NULL, 0, &batch), 0);
	assert_int_equal(cache_wait_durable(c, batch), 0);
	assert_int_equal(cache_seg_write(c, 9, 1, 3, "uncommitted", 11), 0);
	char *big = calloc(1, BIG);
	assert_non_null(big);
	assert_int_equal(cache_seg_write(c, 9, 2, 3, big, BIG), 0); /* a file */
	free(big);
	cache_close(c);
	/* temp files of a write in flight, old and new style */
	snprintf(p, sizeof(p), "%s/seg/9", cdir);
	assert_true(mkdir(p, 0700) == 0 || errno == EEXIST);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.tmp", cdir);
	assert_int_equal(close(creat(p, 0600)), 0);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.1234.tmp", cdir);
	assert_int_equal(close(creat(p, 0600)), 0);

	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_true(cache_seg_exists(c, 9, 0, 2));
	assert_false(cache_seg_exists(c, 9, 1, 3));
	assert_false(cache_seg_exists(c, 9, 2, 3));
	snprintf(p, sizeof(p), "%s/seg/9/2.3", cdir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.tmp", cdir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.1234.tmp", cdir);
	assert_int_equal(stat(p, &st), -1);
	cache_close(c);
	free(n);
	rm_rf(dir);
	free(dir);
}

/* Group commit: commits made before anyone waits share one batch (one
 * transaction, one WAL sync); savepoint writes nest in it; a wait makes it
 * durable and the next commit opens a new batch; it all reopens intact. */
static void test_group_commit(void **state)
{
	char *dir = tmpdir(), cdir[300];
	struct node *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct seg segs[1] = { { .gen = 1, .len = 6 } };
	uint64_t b1 = 0, b2 = 0, b3 = 0, b4 = 0, version = 0, length = 0;
	struct cache *c = NULL;
	char *m = NULL;
	size_t mlen = 0;
	int fresh;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	*a = (struct node){ .ino = 5, .mode = S_IFREG | 0600, .version = 1, .size = 6 };
	*b = (struct node){ .ino = 6, .mode = S_IFREG | 0600, .version = 1, .size = 6 };
	assert_int_equal(cache_seg_write(c, 5, 0, 1, "sealed", 6), 0);
	assert_int_equal(cache_seg_write(c, 6, 0, 1, "sealed", 6), 0);
	assert_int_equal(cache_segs_sync(c, 5, segs, 1, 1), 0);
	assert_int_equal(cache_segs_sync(c, 6, segs, 1, 1), 0);
	assert_int_equal(cache_commit(c, a, segs, 1, "m-a-1", 5, NULL, 0, &b1), 0);
	assert_int_equal(cache_commit(c, b, segs, 1, "m-b-1", 5, NULL, 0, &b2), 0);
	assert_true(b1 > 0);
	assert_int_equal(b2, b1);
	assert_int_equal(cache_node_delete(c, 77), 0); /* a savepoint inside the batch */
	a->version = 2;
	assert_int_equal(cache_commit(c, a, segs, 1, "m-a-2", 5, NULL, 0, &b3), 0);
	assert_int_equal(b3, b1);
	assert_int_equal(cache_wait_durable(c, b1), 0);
	assert_int_equal(cache_wait_durable(c, b2), 0); /* already durable */
	assert_int_equal(cache_sync(c), 0);              /* nothing new */
	b->version = 2;
	assert_int_equal(cache_commit(c, b, segs, 1, "m-b-2", 5, NULL, 0, &b4), 0);
	assert_true(b4 > b1);
	assert_int_equal(cache_wait_durable(c, b4), 0);
	cache_close(c);

	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_int_equal(cache_manifest_get(c, 5, &version, &length, &m, &mlen), 0);
	assert_int_equal(version, 2);
	assert_string_equal(m, "m-a-2");
	free(m);
	assert_int_equal(cache_manifest_get(c, 6, &version, &length, &m, &mlen), 0);
	assert_string_equal(m, "m-b-2");
	free(m);
	cache_close(c);
	free(a);
	free(b);
	rm_rf(dir);
	free(dir);
}

/* cache_nodes_load's allocator: keeps the nodes it hands out. */
struct loaded {
	struct node *nodes[8];
	size_t n;
};

static struct node *keep_node(void *ud, uint64_t ino)
{
	struct loaded *l = ud;
	struct node *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	assert_true(l->n < ELEMENTSOF(l->nodes));
	x->ino = ino;
	l->nodes[l->n++] = x;
	return x;
}

/* The seal count bound of a file survives a restart (data_seal_count). */
static void test_seal_count_persists(void **state)
{
	char *dir = tmpdir(), cdir[300];
	struct node *n = calloc(1, sizeof(*n));
	struct loaded l = { .n = 0 };
	struct cache *c = NULL;
	int fresh;

	(void)state;
	assert_non_null(n);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	n->ino = 4;
	n->mode = S_IFREG | 0600;
	n->seals_saved = (UINT64_C(1) << 31) - 5;
	assert_int_equal(cache_node_save(c, n), 0);
	cache_close(c);

	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_int_equal(cache_nodes_load(c, keep_node, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.nodes[0]->ino, 4);
	/* the node starts from the bound: every seal it may have made counted */
	assert_int_equal(l.nodes[0]->seals_saved, (UINT64_C(1) << 31) - 5);
	assert_int_equal(l.nodes[0]->seals, (UINT64_C(1) << 31) - 5);
	for (size_t i = 0; i < l.n; i++)
		free(l.nodes[i]);
	free(n);
	cache_close(c);
	rm_rf(dir);
	free(dir);
}

/* Reads segment idx.gen of ino and checks it is len bytes of fill. */
static void assert_seg(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, size_t len,
		       char fill)
{
	char *got = NULL;
	size_t got_len = 0;

	assert_int_equal(cache_seg_read(c, ino, idx, gen, &got, &got_len), 0);
	assert_int_equal(got_len, len);
	for (size_t k = 0; k < len; k++)
		assert_int_equal(got[k], fill);
	assert_int_equal(got[len], '\0');
	free(got);
}

/* Commits version gen of a regular file ino made of segs. */
static void commit_file(struct cache *c, uint64_t ino, const struct seg *segs, size_t n,
			uint64_t gen)
{
	struct node n_ = { .ino = ino, .parent = 1, .mode = S_IFREG | 0600, .version = gen };
	uint64_t batch = 0;

	for (size_t i = 0; i < n; i++)
		n_.size += segs[i].len;
	assert_int_equal(cache_segs_sync(c, ino, segs, n, gen), 0);
	assert_int_equal(cache_commit(c, &n_, segs, n, "manifest", 8, NULL, 0, &batch), 0);
	assert_int_equal(cache_wait_durable(c, batch), 0);
}

#define INLINE (64 * 1024)

/* Segments up to 64 KiB sealed live in the index, larger ones in files of
 * their own (mode 0600); both read back whole, sync, count as pending until
 * uploaded, survive a reopen and go at unlink. A rewrite of one segment at
 * another size replaces the other kind. A segment file of a cache made
 * before the index held any is still read and synced. */
static void test_inline_and_files(void **state)
{
	char *dir = tmpdir(), cdir[300], p[400];
	char *buf = malloc(BIG);
	struct seg segs[3] = { { .gen = 1, .len = 1000 }, { .gen = 1, .len = INLINE },
			       { .gen = 1, .len = INLINE + 1 } };
	const size_t sizes[3] = { 1000, INLINE, INLINE + 1 };
	struct cache *c = NULL;
	struct stat st;
	int fresh, fd;

	(void)state;
	assert_non_null(buf);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	cache_batch_writes(c);
	for (int i = 0; i < 3; i++) {
		memset(buf, 'a' + i, sizes[i]);
		assert_int_equal(cache_seg_write(c, 3, (uint64_t)i, 1, buf, sizes[i]), 0);
	}
	snprintf(p, sizeof(p), "%s/seg/3/0.1", cdir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/seg/3/1.1", cdir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/seg/3/2.1", cdir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	for (int i = 0; i < 3; i++)
		assert_seg(c, 3, (uint64_t)i, 1, sizes[i], (char)('a' + i));
	assert_int_equal(cache_pending_bytes(c), 0); /* nothing committed yet */
	commit_file(c, 3, segs, 3, 1);
	uint64_t pending = 0;
	for (int i = 0; i < 3; i++)
		pending += (uint64_t)sizes[i] * 4 / 3 + 256;
	assert_int_equal(cache_pending_bytes(c), pending);
	assert_int_equal(cache_seg_uploaded(c, 3, 0, 1), 1);
	assert_int_equal(cache_pending_bytes(c), pending - (1000 * 4 / 3 + 256));

	/* rewritten at the other size: the other kind goes */
	memset(buf, 'x', BIG);
	assert_int_equal(cache_seg_write(c, 3, 2, 1, buf, 10), 0);
	snprintf(p, sizeof(p), "%s/seg/3/2.1", cdir);
	assert_int_equal(stat(p, &st), -1);
	assert_seg(c, 3, 2, 1, 10, 'x');
	memset(buf, 'y', BIG);
	assert_int_equal(cache_seg_write(c, 3, 2, 1, buf, BIG), 0);
	assert_seg(c, 3, 2, 1, BIG, 'y');

	/* the layout before: a committed segment file, no row in the index */
	snprintf(p, sizeof(p), "%s/seg/4", cdir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/seg/4/0.2", cdir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "zzzz", 4), 4);
	assert_int_equal(close(fd), 0);
	struct seg old[1] = { { .gen = 2, .len = 4 } };
	commit_file(c, 4, old, 1, 2);
	cache_close(c);

	/* a reopen keeps what was committed, and the pending count */
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_seg(c, 3, 0, 1, 1000, 'a');
	assert_seg(c, 3, 1, 1, INLINE, 'b');
	assert_seg(c, 3, 2, 1, BIG, 'y');
	assert_seg(c, 4, 0, 2, 4, 'z');
	assert_int_equal(cache_pending_bytes(c), pending - (1000 * 4 / 3 + 256) + 4 * 4 / 3 + 256);
	cache_seg_unlink(c, 3, 1, 1);
	cache_seg_unlink(c, 3, 2, 1);
	assert_false(cache_seg_exists(c, 3, 1, 1));
	assert_false(cache_seg_exists(c, 3, 2, 1));
	assert_true(cache_seg_exists(c, 3, 0, 1));
	assert_int_equal(cache_node_delete(c, 3), 0);
	assert_false(cache_seg_exists(c, 3, 0, 1));
	cache_close(c);
	free(buf);
	rm_rf(dir);
	free(dir);
}

/* Eviction takes segments in the index like files: clean ones, least
 * recently used first, down to the bound; never a pending one. */
static void test_evict_inline(void **state)
{
	char *dir = tmpdir(), cdir[300];
	char *buf = malloc(4096);
	struct seg segs[1] = { { .gen = 1, .len = 4096 } };
	struct cache *c = NULL;
	int fresh;

	(void)state;
	assert_non_null(buf);
	memset(buf, 'e', 4096);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	/* room for two 4 KiB segments (4096 * 4 / 3 + 256 each), not three */
	assert_int_equal(cache_open(cdir, 12000, &c, &fresh), 0);
	for (uint64_t ino = 10; ino < 13; ino++) {
		assert_int_equal(cache_seg_write(c, ino, 0, 1, buf, 4096), 0);
		commit_file(c, ino, segs, 1, 1);
	}
	cache_evict(c); /* all pending: nothing goes */
	for (uint64_t ino = 10; ino < 13; ino++)
		assert_true(cache_seg_exists(c, ino, 0, 1));
	assert_int_equal(cache_seg_uploaded(c, 10, 0, 1), 1);
	assert_int_equal(cache_seg_uploaded(c, 11, 0, 1), 1);
	cache_evict(c);
	assert_false(cache_seg_exists(c, 10, 0, 1));
	assert_true(cache_seg_exists(c, 11, 0, 1));
	assert_true(cache_seg_exists(c, 12, 0, 1));
	assert_seg(c, 12, 0, 1, 4096, 'e');
	cache_close(c);
	free(buf);
	rm_rf(dir);
	free(dir);
}

/* Writes batched (cache_batch_writes): a node saved with nobody waiting is
 * committed by the committer thread, and by cache_close at the latest. */
static void test_batched_writes(void **state)
{
	char *dir = tmpdir(), cdir[300];
	struct node n = { .ino = 8, .parent = 1, .mode = S_IFDIR | 0700 };
	struct loaded l = { .n = 0 };
	struct cache *c = NULL;
	int fresh;

	(void)state;
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	cache_batch_writes(c);
	assert_int_equal(cache_node_save(c, &n), 0);
	assert_int_equal(cache_sync(c), 0);
	n.ino = 9;
	assert_int_equal(cache_node_save(c, &n), 0);
	cache_close(c);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_int_equal(cache_nodes_load(c, keep_node, &l), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		free(l.nodes[i]);
	cache_close(c);
	rm_rf(dir);
	free(dir);
}

/* The index's page size, read as anyone would: with SQLite, read-only. */
static int index_page_size(const char *cdir)
{
	char p[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int size;

	snprintf(p, sizeof(p), "%s/index.db", cdir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	size = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return size;
}

/* A new index has 2 KiB pages; one made with 4 KiB pages (before) keeps
 * them, and works: what is written to it is there after a reopen. */
static void test_page_size(void **state)
{
	char *dir = tmpdir(), cdir[300], p[400];
	struct seg seg = { .gen = 1, .len = 100 };
	char data[100];
	struct loaded l = { .n = 0 };
	struct cache *c = NULL;
	sqlite3 *db = NULL;
	int fresh;

	(void)state;
	snprintf(cdir, sizeof(cdir), "%s/new", dir);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	cache_close(c);
	assert_int_equal(index_page_size(cdir), 2048);

	snprintf(cdir, sizeof(cdir), "%s/old", dir);
	assert_int_equal(mkdir(cdir, 0700), 0);
	snprintf(p, sizeof(p), "%s/index.db", cdir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
				      " CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	cache_batch_writes(c);
	memset(data, 'q', sizeof(data));
	assert_int_equal(cache_seg_write(c, 5, 0, 1, data, sizeof(data)), 0);
	commit_file(c, 5, &seg, 1, 1);
	cache_close(c);
	assert_int_equal(index_page_size(cdir), 4096);
	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_int_equal(cache_nodes_load(c, keep_node, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.nodes[0]->ino, 5);
	free(l.nodes[0]);
	assert_seg(c, 5, 0, 1, sizeof(data), 'q');
	cache_close(c);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_writes_of_one_segment),
		cmocka_unit_test(test_sweep_at_open),
		cmocka_unit_test(test_seal_count_persists),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_inline_and_files),
		cmocka_unit_test(test_evict_inline),
		cmocka_unit_test(test_batched_writes),
		cmocka_unit_test(test_page_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
