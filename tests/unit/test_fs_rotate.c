/* SPDX-License-Identifier: Apache-2.0 */
/* atrestfs's key rotation rules (fs/rotate.c): when it is due, whose key is current, the seal count
 * a manifest brings. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <sodium.h>

#include "atrestfs.h"

struct fs *the_fs; /* main.c's; the functions under test do not use it */

static void test_adopt_seals(void **state)
{
	struct node n = {0};

	(void)state;
	/* a fresh node takes the manifest's count, and saves at least that */
	rotate_adopt_seals(&n, 259);
	assert_int_equal(n.seals, 259);
	assert_int_equal(n.seals_saved, 259);
	/* never lowered: the index may know more (a reserve, later seals) */
	n.seals = 70000;
	n.seals_saved = 70000 + DATA_SEALS_RESERVE;
	rotate_adopt_seals(&n, 300);
	assert_int_equal(n.seals, 70000);
	assert_int_equal(n.seals_saved, 70000 + DATA_SEALS_RESERVE);
	/* a manifest without the member (older data): due for rotation */
	memset(&n, 0, sizeof(n));
	rotate_adopt_seals(&n, 0);
	assert_true(n.seals == SEAL_ROTATE_SEALS);
	assert_true(n.seals_saved == SEAL_ROTATE_SEALS);
	/* beyond the rotation point already: kept */
	n.seals = SEAL_MAX_SEALS - 1;
	rotate_adopt_seals(&n, 0);
	assert_true(n.seals == SEAL_MAX_SEALS - 1);
}

static void test_is_due(void **state)
{
	char rkid[] = "00112233445566778899aabbccddeeff";
	struct node n = {.rkid = rkid};
	struct timespec ts;

	(void)state;
	n.seals = SEAL_ROTATE_SEALS - 1;
	assert_false(rotate_is_due(&n));
	n.seals = SEAL_ROTATE_SEALS;
	assert_true(rotate_is_due(&n));
	n.seals = SEAL_MAX_SEALS;
	assert_true(rotate_is_due(&n));
	/* a failed try waits for its retry time */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n.rotate_retry = ts.tv_sec + 30;
	assert_false(rotate_is_due(&n));
	n.rotate_retry = ts.tv_sec - 1;
	assert_true(rotate_is_due(&n));
	/* no key of ours: nothing to rotate */
	n.foreign = true;
	assert_false(rotate_is_due(&n));
	n.foreign = false;
	n.rkid = NULL;
	assert_false(rotate_is_due(&n));
}

static void test_key_is_current(void **state)
{
	struct seal_key *old = NULL, *new = NULL, *copy = NULL;
	struct node n = {0};

	(void)state;
	assert_int_equal(seal_key_generate(32, &old), 0);
	assert_int_equal(seal_key_generate(32, &new), 0);
	assert_int_equal(seal_key_new(seal_key_bytes(new), 32, &copy), 0);
	/* never rotated in this mount: every handle's key is the file's */
	assert_true(rotate_key_is_current(&n, old));
	assert_true(rotate_key_is_current(&n, new));
	rotate_key_adopt(&n, new);
	assert_false(rotate_key_is_current(&n, old));
	assert_true(rotate_key_is_current(&n, new));
	/* the same key as another caller got it from tefd */
	assert_true(rotate_key_is_current(&n, copy));
	/* the fingerprint is not the key */
	assert_true(sodium_memcmp(n.key_fp, seal_key_bytes(new), sizeof(n.key_fp)) != 0);
	seal_key_free(old);
	seal_key_free(new);
	seal_key_free(copy);
}

static void test_kid_rkid(void **state)
{
	struct seal_key *key = NULL;
	struct seal_params p = {.file_id = "f", .protection = SEAL_CONFIDENTIALITY};
	char *c = NULL, buf[64];
	size_t len;

	(void)state;
	assert_int_equal(seal_key_generate(32, &key), 0);
	p.key = key;
	p.kid = "00112233445566778899aabbccddeeff@tef.example";
	assert_int_equal(seal_segment(&p, 0, 1, "x", 1, &c, &len), 0);
	strcpy(buf, "unchanged");
	rotate_kid_rkid(c, len, buf, sizeof(buf));
	assert_string_equal(buf, "00112233445566778899aabbccddeeff");
	/* too small a buffer, no '@', not compact JOSE: left alone */
	strcpy(buf, "unchanged");
	rotate_kid_rkid(c, len, buf, 8);
	assert_string_equal(buf, "unchanged");
	free(c);
	p.kid = "no-at-sign";
	assert_int_equal(seal_segment(&p, 0, 1, "x", 1, &c, &len), 0);
	rotate_kid_rkid(c, len, buf, sizeof(buf));
	assert_string_equal(buf, "unchanged");
	free(c);
	rotate_kid_rkid("not.jose", 8, buf, sizeof(buf));
	assert_string_equal(buf, "unchanged");
	seal_key_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_adopt_seals),
	    cmocka_unit_test(test_is_due),
	    cmocka_unit_test(test_key_is_current),
	    cmocka_unit_test(test_kid_rkid),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
