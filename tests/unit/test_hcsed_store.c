/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's SQLite store: lookups, ordering by sequence, subtree deletes, discovery filters, group
 * commit. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "atrest/cleanup.h"
#include "store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hcsed-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	assert_int_equal(store_open(f->path, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct ins {
	const char *ri, *pi, *path, *rn, *ct, *aei, *lbl;
	int ty, depth;
	int64_t et;
};

static int insert_cb(struct store_txn *t, void *userdata)
{
	const struct ins *in = userdata;
	struct store_res r = {
	    .ri = (char *)in->ri,
	    .pi = (char *)in->pi,
	    .path = (char *)in->path,
	    .rn = (char *)in->rn,
	    .ct = (char *)(in->ct ? in->ct : "20260101T000000"),
	    .aei = (char *)in->aei,
	    .ty = in->ty,
	    .depth = in->depth,
	    .et = in->et ? in->et : 253402300799LL,
	    .attrs = in->lbl ? json_pack("{s:[s]}", "lbl", in->lbl) : json_object(),
	};
	int ret = store_insert(t, &r);

	json_decref(r.attrs);
	return ret;
}

static void put(struct store *s, struct ins in)
{
	assert_int_equal(store_write(s, insert_cb, &in), 0);
}

static void tree(struct store *s)
{
	put(s, (struct ins){"cb", NULL, "cse", "cse", .ty = 5, .depth = 1});
	put(s, (struct ins){"Cae", "cb", "cse/ae", "ae", .aei = "Cae", .ty = 2, .depth = 2});
	put(s, (struct ins){"cnt1", "Cae", "cse/ae/t", "t", .lbl = "dir", .ty = 3, .depth = 3});
	put(s, (struct ins){"cnt2", "Cae", "cse/ae/t-sibling", "t-sibling", .lbl = "file", .ty = 3,
			    .depth = 3, .ct = "20270101T000000"});
	put(s, (struct ins){"cin1", "cnt1", "cse/ae/t/a", "a", .ty = 4, .depth = 4});
	put(s, (struct ins){"cin2", "cnt1", "cse/ae/t/b", "b", .ty = 4, .depth = 4, .et = 100});
	put(s, (struct ins){"cin3", "cnt1", "cse/ae/t/c", "c", .ty = 4, .depth = 4});
}

struct get_args {
	const char *key;
	int mode; /* 0 path, 1 ri, 2 aei */
	int ret;
	char rn[64];
};

static int get_cb(struct store_txn *t, void *userdata)
{
	struct get_args *a = userdata;
	struct store_res r = {0};

	a->ret = a->mode == 0	? store_get_by_path(t, a->key, false, &r)
		 : a->mode == 1 ? store_get_by_ri(t, a->key, false, &r)
				: store_get_by_aei(t, a->key, &r);
	if (a->ret == 0)
		snprintf(a->rn, sizeof(a->rn), "%s", r.rn);
	store_res_clear(&r);
	return 0;
}

static int get(struct store *s, int mode, const char *key, char *rn)
{
	struct get_args a = {.key = key, .mode = mode};

	assert_int_equal(store_read(s, get_cb, &a), 0);
	if (rn)
		strcpy(rn, a.rn);
	return a.ret;
}

static void test_lookup(void **state)
{
	struct fixture *f = *state;
	char rn[64];

	tree(f->s);
	assert_int_equal(get(f->s, 0, "cse/ae/t/b", rn), 0);
	assert_string_equal(rn, "b");
	assert_int_equal(get(f->s, 1, "cnt2", rn), 0);
	assert_string_equal(rn, "t-sibling");
	assert_int_equal(get(f->s, 2, "Cae", rn), 0);
	assert_string_equal(rn, "ae");
	assert_int_equal(get(f->s, 0, "cse/none", NULL), -ENOENT);
	assert_int_equal(get(f->s, 2, "Cnone", NULL), -ENOENT);
	/* path, ri and aei are unique */
	assert_int_equal(store_write(f->s, insert_cb,
				     &(struct ins){"x", "cb", "cse/ae", "ae", .ty = 2, .depth = 2}),
			 -EEXIST);
	assert_int_equal(
	    store_write(f->s, insert_cb,
			&(struct ins){"cin1", "cb", "cse/zz", "zz", .ty = 2, .depth = 2}),
	    -EEXIST);
}

struct list_args {
	const char *pi;
	bool newest;
	int64_t limit, offset;
	char names[256];
};

static int list_row(struct store_res *r, void *userdata)
{
	struct list_args *a = userdata;

	strcat(a->names, r->rn);
	return 0;
}

static int list_cb(struct store_txn *t, void *userdata)
{
	struct list_args *a = userdata;

	return store_children(t, a->pi, 4, a->newest, false, a->limit, a->offset, list_row, a);
}

static void test_children_order(void **state)
{
	struct fixture *f = *state;
	struct list_args a = {.pi = "cnt1", .limit = -1};

	tree(f->s);
	assert_int_equal(store_read(f->s, list_cb, &a), 0);
	assert_string_equal(a.names, "abc");
	a = (struct list_args){.pi = "cnt1", .newest = true, .limit = 2};
	assert_int_equal(store_read(f->s, list_cb, &a), 0);
	assert_string_equal(a.names, "cb");
	a = (struct list_args){.pi = "cnt1", .limit = -1, .offset = 1};
	assert_int_equal(store_read(f->s, list_cb, &a), 0);
	assert_string_equal(a.names, "bc");
}

static int delete_cb(struct store_txn *t, void *userdata)
{
	return store_delete_subtree(t, userdata);
}

static void test_delete_subtree(void **state)
{
	struct fixture *f = *state;

	tree(f->s);
	/* "cse/ae/t" must not take "cse/ae/t-sibling" with it */
	assert_int_equal(store_write(f->s, delete_cb, "cse/ae/t"), 4);
	assert_int_equal(get(f->s, 0, "cse/ae/t/a", NULL), -ENOENT);
	assert_int_equal(get(f->s, 0, "cse/ae/t", NULL), -ENOENT);
	assert_int_equal(get(f->s, 0, "cse/ae/t-sibling", NULL), 0);
}

struct find_args {
	struct store_filter f;
	char names[256];
};

static int find_row(struct store_res *r, void *userdata)
{
	struct find_args *a = userdata;

	strcat(a->names, r->rn);
	strcat(a->names, ",");
	return 0;
}

static int find_cb(struct store_txn *t, void *userdata)
{
	struct find_args *a = userdata;

	return store_find(t, &a->f, find_row, a);
}

static void test_find(void **state)
{
	struct fixture *f = *state;
	const int cnt = 3, cin = 4;
	const char *dir = "dir", *labels[] = {"file", "nope"};
	struct find_args a = {.f = {.base_path = "cse", .tys = &cnt, .n_tys = 1, .now = 1000}};

	tree(f->s);
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "t,t-sibling,");
	a = (struct find_args){
	    .f = {.base_path = "cse/ae/t", .tys = &cin, .n_tys = 1, .now = 1000}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "a,c,"); /* b expired at 100 */
	a = (struct find_args){.f = {.base_path = "cse", .labels = &dir, .n_labels = 1}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "t,");
	a = (struct find_args){.f = {.base_path = "cse", .labels = labels, .n_labels = 2}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "t-sibling,");
	a = (struct find_args){.f = {.base_path = "cse", .max_depth = 2}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "ae,");
	a = (struct find_args){
	    .f = {.base_path = "cse", .tys = &cnt, .n_tys = 1, .cra = "20260601T000000"}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "t-sibling,");
	a = (struct find_args){
	    .f = {.base_path = "cse", .tys = &cnt, .n_tys = 1, .crb = "20260601T000000"}};
	assert_int_equal(store_read(f->s, find_cb, &a), 0);
	assert_string_equal(a.names, "t,");
}

/* An acknowledged write is durable before store_write() returns: the
 * writer commits with synchronous=FULL (SQLite fsyncs the WAL inside
 * COMMIT), and a fresh open sees the write. */
static void test_durable_on_return(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_synchronous(f->s), 2);
	put(f->s, (struct ins){"cb", NULL, "cse", "cse", .ty = 5, .depth = 1});
	put(f->s, (struct ins){"x", "cb", "cse/x", "x", .ty = 4, .depth = 2});
	store_free(f->s);
	assert_int_equal(store_open(f->path, &f->s), 0);
	assert_int_equal(get(f->s, 1, "x", NULL), 0);
}

static int fail_cb(struct store_txn *t, void *userdata)
{
	insert_cb(t, userdata);
	return -EINVAL; /* the insert above must be rolled back */
}

static void test_rollback(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	    store_write(f->s, fail_cb,
			&(struct ins){"gone", NULL, "gone", "gone", .ty = 5, .depth = 1}),
	    -EINVAL);
	assert_int_equal(get(f->s, 1, "gone", NULL), -ENOENT);
}

struct writer {
	struct store *s;
	int id;
};

static void *writer_thread(void *userdata)
{
	struct writer *w = userdata;

	for (int i = 0; i < 200; i++) {
		char ri[32], path[64];

		snprintf(ri, sizeof(ri), "w%d-%d", w->id, i);
		snprintf(path, sizeof(path), "cse/%s", ri);
		struct ins in = {ri, "cb", path, ri, .ty = 4, .depth = 2};
		if (store_write(w->s, insert_cb, &in) != 0)
			return (void *)1;
	}
	return NULL;
}

static int count_cb(struct store_txn *t, void *userdata)
{
	return store_count(t, userdata);
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct writer w[8];
	pthread_t th[8];
	int64_t n = 0;

	put(f->s, (struct ins){"cb", NULL, "cse", "cse", .ty = 5, .depth = 1});
	for (int i = 0; i < 8; i++) {
		w[i] = (struct writer){f->s, i};
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(store_read(f->s, count_cb, &n), 0);
	assert_int_equal(n, 1 + 8 * 200);
	/* durable: a fresh open sees everything */
	store_free(f->s);
	assert_int_equal(store_open(f->path, &f->s), 0);
	n = 0;
	assert_int_equal(store_read(f->s, count_cb, &n), 0);
	assert_int_equal(n, 1 + 8 * 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_children_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_subtree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_durable_on_return, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
