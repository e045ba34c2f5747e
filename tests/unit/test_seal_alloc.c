/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing under allocation failure: every malloc/calloc of lib/seal.c failed in turn (-Wl,--wrap). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "atrest/seal.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);

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
	return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : __real_calloc(n, size);
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
		params = (struct seal_params){.key = key, .kid = "k@tef", .file_id = "f",
					      .protection = prots[i], .enc = SEAL_ENC_XC20P};
		each_failure(op_seal, &params);
		assert_int_equal(seal_segment(&params, 2, 3, "some plaintext", 14, &sealed,
					      &sealed_len),
				 0);
		each_failure(op_open, &params);
		each_failure(op_esdata, &params);
		each_failure(op_manifest, &params);
		{
			struct seal_manifest m = {.version = 4, .segment_size = 4096};

			assert_int_equal(seal_manifest_seal(&params, &m, &sealed_manifest,
							    &sealed_manifest_len),
					 0);
		}
		each_failure(op_manifest_open, &params);
		free(sealed);
		free(sealed_manifest);
	}
	seal_key_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
