/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs's namespace layer: reversible names, and nodes through container labels and back. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrestfs.h"

struct fs *the_fs; /* main.c's; the layer under test does not use it */

static void roundtrip(const char *name)
{
	char *enc = name_encode(name), *dec;

	assert_non_null(enc);
	/* only characters every oneM2M rn and label accepts */
	for (const char *p = enc; *p; p++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-%", *p));
	dec = name_decode(enc);
	assert_non_null(dec);
	assert_string_equal(dec, name);
	free(enc);
	free(dec);
}

static void test_names_roundtrip(void **state)
{
	char long_name[256];

	(void)state;
	roundtrip("plain.txt");
	roundtrip("with space & ampersand");
	roundtrip("100%");
	roundtrip("%41 looks encoded");
	roundtrip("la"); /* a virtual resource name in oneM2M */
	roundtrip(".hidden");
	roundtrip("tab\there\nnewline");
	roundtrip("équipe-ü-日本語");
	roundtrip("a=b,c;d:e\"f'g\\h");
	memset(long_name, 'x', 255);
	long_name[255] = '\0';
	roundtrip(long_name);
}

static void test_names_reject(void **state)
{
	(void)state;
	assert_null(name_decode("%zz"));
	assert_null(name_decode("%4"));
	assert_null(name_decode("%00")); /* no NUL inside a name */
	char *empty = name_decode("");
	assert_non_null(empty);
	assert_string_equal(empty, "");
	free(empty);
}

static struct node *file_node(const char *name)
{
	struct node *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->ino = 42;
	n->parent = 7;
	n->name = strdup(name);
	n->mode = S_IFREG | 0640;
	n->uid = 1000;
	n->gid = 100;
	n->atime = (struct timespec){ 1700000000, 1 };
	n->mtime = (struct timespec){ 1700000001, 999999999 };
	n->ctime = (struct timespec){ 1700000002, 5 };
	snprintf(n->file_id, sizeof(n->file_id), "%s", "00112233445566778899aabbccddeeff");
	n->cred_id = strdup("0123456789abcdef0123456789abcdef@gateway.example");
	n->rkid = strdup("0123456789abcdef0123456789abcdef");
	n->protection = SEAL_INTEGRITY;
	n->seg_size = 65536;
	n->expires = 1800000000;
	n->xattrs_rver = 3;
	return n;
}

static void free_node(struct node *n)
{
	free(n->name);
	free(n->symlink);
	free(n->cred_id);
	free(n->rkid);
	free(n->xattrs);
	free(n);
}

/* labels -> node -> the same labels: what a fresh cache rebuilds from */
static void check_roundtrip(struct node *in, uint64_t size, uint64_t version)
{
	char **labels = NULL;
	size_t n_labels = 0;
	struct node *out = calloc(1, sizeof(*out));

	assert_non_null(out);
	assert_int_equal(node_labels(in, size, version, &labels, &n_labels), 0);
	assert_true(n_labels <= 64); /* hcsed's limits: 64 labels of <= 256 characters */
	for (size_t i = 0; i < n_labels; i++)
		assert_true(strlen(labels[i]) <= 256);
	/* the HCSE may return them in any order */
	for (size_t i = 0; i + 1 < n_labels; i += 2) {
		char *t = labels[i];
		labels[i] = labels[n_labels - 1 - i];
		labels[n_labels - 1 - i] = t;
	}
	assert_int_equal(node_from_labels(out, (const char *const *)labels, n_labels), 0);
	assert_int_equal(out->ino, in->ino);
	assert_int_equal(out->parent, in->parent);
	assert_string_equal(out->name, in->name);
	assert_int_equal(out->mode, in->mode);
	assert_int_equal(out->uid, in->uid);
	assert_int_equal(out->gid, in->gid);
	assert_int_equal(out->mtime.tv_sec, in->mtime.tv_sec);
	assert_int_equal(out->mtime.tv_nsec, in->mtime.tv_nsec);
	assert_int_equal(out->ctime.tv_nsec, in->ctime.tv_nsec);
	if (S_ISREG(in->mode)) {
		assert_int_equal(out->size, size);
		assert_int_equal(out->version, version);
		assert_string_equal(out->file_id, in->file_id);
		assert_string_equal(out->cred_id, in->cred_id);
		assert_string_equal(out->rkid, in->rkid);
		assert_int_equal(out->protection, in->protection);
		assert_int_equal(out->seg_size, in->seg_size);
		assert_int_equal(out->expires, in->expires);
		assert_int_equal(out->xattrs_ver, in->xattrs_rver);
	}
	if (in->symlink)
		assert_string_equal(out->symlink, in->symlink);
	labels_free(labels, n_labels);
	free_node(out);
}

static void test_labels_file(void **state)
{
	struct node *n = file_node("report 2026.csv");

	(void)state;
	check_roundtrip(n, 123456789, 17);
	free_node(n);
}

static void test_labels_long_name(void **state)
{
	/* 255 bytes of UTF-8 encode to 765 characters: several label chunks */
	char name[256];
	struct node *n;

	(void)state;
	for (int i = 0; i < 255; i++)
		name[i] = (char)(0x80 | (i % 64));
	name[255] = '\0';
	n = file_node(name);
	check_roundtrip(n, 0, 1);
	free_node(n);
}

static void test_labels_dir_and_symlink(void **state)
{
	struct node *d = file_node("dir"), *l = file_node("link");
	char target[1025];

	(void)state;
	d->mode = S_IFDIR | 01777;
	check_roundtrip(d, 0, 0);
	memset(target, '/', 1024);
	target[1024] = '\0';
	target[3] = ' ';
	l->mode = S_IFLNK | 0777;
	l->symlink = strdup(target);
	check_roundtrip(l, 0, 0);
	free_node(d);
	free_node(l);
}

static void test_labels_foreign_rejected(void **state)
{
	const char *labels[] = { "color:blue", "atrest:name=x" };
	const char *no_key[] = { "atrest:file", "atrest:ino=5", "atrest:parent=1", "atrest:name=f" };
	struct node *n = calloc(1, sizeof(*n));

	(void)state;
	assert_non_null(n);
	/* not ours: no type */
	assert_int_equal(node_from_labels(n, labels, 2), -EBADMSG);
	/* a file without its sealing identity cannot be served */
	assert_int_equal(node_from_labels(n, no_key, 4), -EBADMSG);
	free_node(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_roundtrip),
		cmocka_unit_test(test_names_reject),
		cmocka_unit_test(test_labels_file),
		cmocka_unit_test(test_labels_long_name),
		cmocka_unit_test(test_labels_dir_and_symlink),
		cmocka_unit_test(test_labels_foreign_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
