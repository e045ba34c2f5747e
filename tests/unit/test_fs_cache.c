/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs's cache: segment files written by several threads at once, and what a restart sweeps away. */
#include <errno.h>
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
	assert_int_equal(cache_commit(c, n, segs, 1, "manifest", 8, NULL, 0), 0);
	assert_int_equal(cache_seg_write(c, 9, 1, 3, "uncommitted", 11), 0);
	cache_close(c);
	/* temp files of a write in flight, old and new style */
	snprintf(p, sizeof(p), "%s/seg/9/0.2.tmp", cdir);
	assert_int_equal(close(creat(p, 0600)), 0);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.1234.tmp", cdir);
	assert_int_equal(close(creat(p, 0600)), 0);

	assert_int_equal(cache_open(cdir, 1 << 30, &c, &fresh), 0);
	assert_true(cache_seg_exists(c, 9, 0, 2));
	assert_false(cache_seg_exists(c, 9, 1, 3));
	snprintf(p, sizeof(p), "%s/seg/9/0.2.tmp", cdir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/seg/9/0.2.1234.tmp", cdir);
	assert_int_equal(stat(p, &st), -1);
	cache_close(c);
	free(n);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_writes_of_one_segment),
		cmocka_unit_test(test_sweep_at_open),
		cmocka_unit_test(test_seal_count_persists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
