/* SPDX-License-Identifier: Apache-2.0 */
/* Locked plaintext memory: zeroed, mlock()ed and MADV_DONTDUMP per /proc/self/smaps, wiped on free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/secmem.h"

/* The VmFlags of the mapping holding p, from /proc/self/smaps. */
static bool mapping_has(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			char pat[8];

			snprintf(pat, sizeof(pat), " %s", flag);
			found = strstr(line, pat) != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_locked_undumpable_zeroed(void **state)
{
	size_t before = secmem_locked_bytes();
	uint8_t *p = secmem_alloc(1 << 20);

	(void)state;
	assert_non_null(p);
	assert_true(all_zero(p, 1 << 20));
	assert_true(mapping_has(p, "lo"));
	assert_true(mapping_has(p, "dd"));
	assert_true(secmem_locked_bytes() >= before + (1 << 20));
	secmem_free(p, 1 << 20);
}

static void test_wiped_on_free(void **state)
{
	uint8_t *p = secmem_alloc(300000), *q;

	(void)state;
	assert_non_null(p);
	memset(p, 0xa5, 300000);
	secmem_free(p, 300000);
	/* pooled, still mapped: what the next user gets must be zeros */
	assert_true(all_zero(p, 300000));
	q = secmem_alloc(300000);
	assert_ptr_equal(q, p);
	assert_true(all_zero(q, 300000));
	secmem_free(q, 300000);
}

/* only the bytes a caller wrote are wiped, and the buffer comes back all zeros */
static void test_free_used_wipes_what_was_written(void **state)
{
	uint8_t *p = secmem_alloc(1 << 20), *q;

	(void)state;
	assert_non_null(p);
	memset(p, 0x5a, 4096);
	secmem_free_used(p, 1 << 20, 4096);
	assert_true(all_zero(p, 1 << 20));
	q = secmem_alloc(1 << 20);
	assert_ptr_equal(q, p);
	assert_true(all_zero(q, 1 << 20));
	secmem_free(q, 1 << 20);
}

static void test_pool_is_bounded(void **state)
{
	enum { N = 40 };
	void *p[N];
	size_t peak, limit = 0;

	(void)state;
	assert_int_equal(secmem_init(&limit), 0);
	if (limit < 64u << 20)
		skip(); /* RLIMIT_MEMLOCK too small to hold 40 MiB locked */
	for (int i = 0; i < N; i++) {
		p[i] = secmem_alloc(1 << 20);
		assert_non_null(p[i]);
	}
	peak = secmem_locked_bytes();
	for (int i = 0; i < N; i++)
		secmem_free(p[i], 1 << 20);
	/* at most 16 MiB stay pooled; the rest is unmapped */
	assert_true(secmem_locked_bytes() <= peak - (N - 16) * (1u << 20));
}

static void test_lock_range(void **state)
{
	size_t n = 5 * 4096 + 100;
	char *p = malloc(n);

	(void)state;
	assert_non_null(p);
	assert_int_equal(secmem_lock_range(p + 10, n - 10), 0);
	assert_true(mapping_has(p + 4096, "lo"));
	assert_true(mapping_has(p + 4096, "dd"));
	assert_int_equal(secmem_lock_range(p + 20, 100), 0); /* again: cached */
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_locked_undumpable_zeroed),
	    cmocka_unit_test(test_wiped_on_free),
	    cmocka_unit_test(test_free_used_wipes_what_was_written),
	    cmocka_unit_test(test_pool_is_bounded),
	    cmocka_unit_test(test_lock_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
