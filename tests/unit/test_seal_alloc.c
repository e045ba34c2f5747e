/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing's allocations (-Wl,--wrap): each one failed in turn, and the streaming memory bound. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "atrest/seal.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);

/* Bytes held in large blocks (>= BIG) allocated through the wrappers, and
 * the most ever held at once: the streaming memory bound. */
#define BIG (64u * 1024u)
static size_t held, held_max;

static void *track(void *p, size_t size)
{
	if (p && size >= BIG) {
		held += malloc_usable_size(p);
		if (held > held_max)
			held_max = held;
	}
	return p;
}

void __wrap_free(void *p)
{
	if (p && malloc_usable_size(p) >= BIG)
		held -= malloc_usable_size(p);
	__real_free(p);
}

/* Allocations left before one fails; -1: never fail. */
static long countdown = -1;
static bool failed;

static bool should_fail(void)
{
	if (countdown < 0)
		return false;
	if (countdown-- == 0) {
		failed = true;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t size)
{
	return should_fail() ? NULL : track(__real_malloc(size), size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : track(__real_calloc(n, size), n * size);
}

/* Runs op with the k-th allocation failing, for k = 0, 1, ... until op
 * completes without a failure injected; each failing run must return
 * -ENOMEM (and leak nothing: the ASan build checks). */
static void each_failure(int (*op)(void *), void *arg)
{
	for (long k = 0;; k++) {
		assert_true(k < 1000);
		int r;

		failed = false;
		countdown = k;
		r = op(arg);
		countdown = -1;
		if (!failed) {
			assert_int_equal(r, 0);
			/* the operation does allocate: failures were injected */
			assert_true(k > 0);
			return;
		}
		assert_int_equal(r, -ENOMEM);
	}
}

static struct seal_key *key;
static struct seal_params params;
static char *sealed, *sealed_manifest;
static size_t sealed_len, sealed_manifest_len;

static int op_key(void *arg)
{
	struct seal_key *k = NULL;
	int r = seal_key_generate(32, &k);

	(void)arg;
	seal_key_free(k);
	return r;
}

static int op_seal(void *arg)
{
	char *c = NULL;
	size_t n;
	int r = seal_segment(arg, 2, 3, "some plaintext", 14, &c, &n);

	free(c);
	return r;
}

static int op_open(void *arg)
{
	uint8_t out[32];
	size_t n;

	return seal_open_segment(arg, 2, 3, sealed, sealed_len, out, sizeof(out), &n);
}

static int op_manifest(void *arg)
{
	struct seal_manifest *m = NULL;
	char *c = NULL;
	size_t n;
	int r;

	r = seal_manifest_new(2, &m);
	if (r < 0)
		return r;
	m->version = 4;
	m->segment_size = 4096;
	m->length = 5000;
	m->segments[0] = (struct seal_segment_ref){0, 4, 4096};
	m->segments[1] = (struct seal_segment_ref){1, 4, 904};
	r = seal_manifest_seal(arg, m, &c, &n);
	seal_manifest_free(m);
	free(c);
	return r;
}

static int op_manifest_open(void *arg)
{
	struct seal_manifest *m = NULL;
	int r = seal_manifest_open(arg, sealed_manifest, sealed_manifest_len, 4, &m);

	seal_manifest_free(m);
	return r;
}

static int op_esdata(void *arg)
{
	char *out = NULL;
	size_t n;
	int r = seal_open_esdata(key, NULL, sealed, sealed_len, &out, &n);

	(void)arg;
	free(out);
	return r;
}

static void test_alloc_failures(void **state)
{
	enum seal_protection prots[] = {SEAL_CONFIDENTIALITY, SEAL_INTEGRITY};

	(void)state;
	assert_int_equal(sodium_init() >= 0, 1);
	assert_int_equal(seal_key_generate(32, &key), 0);
	each_failure(op_key, NULL);
	for (size_t i = 0; i < 2; i++) {
		params = (struct seal_params){.key = key,
					      .kid = "k@tef",
					      .file_id = "f",
					      .protection = prots[i],
					      .enc = SEAL_ENC_XC20P};
		each_failure(op_seal, &params);
		assert_int_equal(
		    seal_segment(&params, 2, 3, "some plaintext", 14, &sealed, &sealed_len), 0);
		each_failure(op_open, &params);
		each_failure(op_esdata, &params);
		each_failure(op_manifest, &params);
		{
			struct seal_manifest m = {.version = 4, .segment_size = 4096};

			assert_int_equal(
			    seal_manifest_seal(&params, &m, &sealed_manifest, &sealed_manifest_len),
			    0);
		}
		each_failure(op_manifest_open, &params);
		free(sealed);
		free(sealed_manifest);
	}
	seal_key_free(key);
}

/* The sealed segments, kept outside the accounting (__real_malloc). */
struct store {
	char *c[512];
	size_t len[512];
	size_t n;
};

static int sink(void *userdata, uint64_t index, const char *compact, size_t len)
{
	struct store *st = userdata;

	assert_int_equal(index, st->n);
	assert_true(st->n < 512);
	st->c[st->n] = __real_malloc(len);
	assert_non_null(st->c[st->n]);
	memcpy(st->c[st->n], compact, len);
	st->len[st->n++] = len;
	return 0;
}

static int source(void *userdata, uint64_t index, char **ret, size_t *ret_len)
{
	struct store *st = userdata;
	char *c;

	if (index >= st->n)
		return -ENOENT;
	/* the library frees it: allocated through the wrapper, so counted */
	c = malloc(st->len[index]);
	assert_non_null(c);
	memcpy(c, st->c[index], st->len[index]);
	*ret = c;
	*ret_len = st->len[index];
	return 0;
}

/* DESIGN.md 4: memory bounded by a small multiple of the segment size,
 * whatever the file size: a file of 256 segments, streamed both ways. */
static void test_stream_memory_bound(void **state)
{
	const size_t seg = BIG, file = 256 * BIG + 1000;
	struct seal_params p = {.kid = "k@tef",
				.file_id = "f",
				.protection = SEAL_CONFIDENTIALITY,
				.enc = SEAL_ENC_XC20P};
	struct seal_manifest m = {.version = 1, .segment_size = seg};
	struct store st = {.n = 0};
	int in = memfd_create("in", 0), out = memfd_create("out", 0);
	uint8_t *chunk = __real_malloc(seg);

	(void)state;
	assert_true(in >= 0 && out >= 0 && chunk);
	assert_int_equal(seal_key_generate(32, &key), 0);
	p.key = key;
	for (size_t off = 0; off < file; off += seg) {
		size_t n = file - off < seg ? file - off : seg;

		randombytes_buf(chunk, n);
		assert_int_equal(write(in, chunk, n), (ssize_t)n);
	}
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);

	held = held_max = 0;
	assert_int_equal(seal_stream_seal(&p, in, &m, sink, &st), 0);
	assert_int_equal(st.n, 257);
	print_message("sealing held at most %zu bytes (%.2f segments)\n", held_max,
		      (double)held_max / (double)seg);
	assert_true(held_max <= 3 * seg);

	held = held_max = 0;
	assert_int_equal(seal_stream_open(&p, &m, source, &st, out), 0);
	print_message("opening held at most %zu bytes (%.2f segments)\n", held_max,
		      (double)held_max / (double)seg);
	assert_true(held_max <= 4 * seg);
	assert_int_equal(lseek(out, 0, SEEK_END), (off_t)file);

	for (size_t i = 0; i < st.n; i++)
		__real_free(st.c[i]);
	__real_free(chunk);
	free(m.segments);
	close(in);
	close(out);
	key = seal_key_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_failures),
	    cmocka_unit_test(test_stream_memory_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
