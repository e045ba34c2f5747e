/* SPDX-License-Identifier: Apache-2.0 */
/* base64url: RFC 4648 vectors, strict decoding, and the in-place encoding seal_segment() relies on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/base64url.h"

/* A slow, obviously correct encoder to compare against (RFC 4648 4 and 5). */
static void ref_encode(char *dst, const uint8_t *s, size_t len)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t bits = 0, o = 0;
	uint32_t acc = 0;

	for (size_t i = 0; i < len; i++) {
		acc = acc << 8 | s[i];
		bits += 8;
		while (bits >= 6) {
			dst[o++] = a[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits)
		dst[o++] = a[(acc << (6 - bits)) & 63];
	dst[o] = '\0';
}

static void test_rfc4648_vectors(void **state)
{
	/* RFC 4648 10, in the URL-safe alphabet without padding. */
	static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[32];
	uint8_t back[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = base64url_encode(out, in[i], strlen(in[i]));

		assert_int_equal(n, strlen(want[i]));
		assert_int_equal(n, base64url_encoded_len(strlen(in[i])));
		assert_memory_equal(out, want[i], n);
		assert_int_equal(base64url_decode(back, want[i], n), (int64_t)strlen(in[i]));
		assert_memory_equal(back, in[i], strlen(in[i]));
	}
}

static void test_url_alphabet(void **state)
{
	static const uint8_t in[] = {0xfb, 0xff, 0xbf};
	char out[8];
	uint8_t back[4];

	(void)state;
	assert_int_equal(base64url_encode(out, in, 3), 4);
	assert_memory_equal(out, "-_-_", 4);
	assert_int_equal(base64url_decode(back, "-_-_", 4), 3);
	assert_memory_equal(back, in, 3);
}

static void test_random_against_reference(void **state)
{
	uint8_t buf[700], back[700];
	char out[1000], ref[1000];

	(void)state;
	srand(1);
	for (size_t len = 0; len < sizeof(buf); len++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		size_t n = base64url_encode(out, buf, len);

		ref_encode(ref, buf, len);
		assert_int_equal(n, strlen(ref));
		assert_memory_equal(out, ref, n);
		assert_int_equal(base64url_decode(back, out, n), (int64_t)len);
		assert_memory_equal(back, buf, len);
	}
}

/* seal_segment() writes the ciphertext tail-aligned in the region its
 * encoding occupies and encodes in place: must equal a separate encode. */
static void test_encode_in_place(void **state)
{
	char ref[1400], region[1400];

	(void)state;
	srand(2);
	for (size_t len = 0; len < 1000; len += (len < 40 ? 1 : 37)) {
		size_t e = base64url_encoded_len(len);
		uint8_t src[1000] = {0};

		for (size_t i = 0; i < len; i++)
			src[i] = (uint8_t)rand();
		ref_encode(ref, src, len);
		memcpy(region + e - len, src, len);
		assert_int_equal(base64url_encode(region, region + e - len, len), e);
		assert_memory_equal(region, ref, e);
	}
}

/* Segment-sized inputs, where the 24-byte vector steps do nearly all the
 * work: equal to the reference, separately and in place. */
static void test_encode_large(void **state)
{
	static const size_t lens[] = {32, 55, 56, 57, 4096, 100003, 1 << 20, (1 << 20) + 1,
				      (1 << 20) + 2};
	size_t max = (1 << 20) + 2, e_max = base64url_encoded_len(max);
	uint8_t *src = malloc(max);
	char *ref = malloc(e_max + 1), *out = malloc(e_max), *region = malloc(e_max);

	(void)state;
	assert_non_null(src);
	assert_non_null(ref);
	assert_non_null(out);
	assert_non_null(region);
	srand(3);
	for (size_t i = 0; i < max; i++)
		src[i] = (uint8_t)rand();
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t len = lens[k], e = base64url_encoded_len(len);

		ref_encode(ref, src, len);
		assert_int_equal(base64url_encode(out, src, len), e);
		assert_memory_equal(out, ref, e);
		memcpy(region + e - len, src, len);
		assert_int_equal(base64url_encode(region, region + e - len, len), e);
		assert_memory_equal(region, ref, e);
	}
	free(src);
	free(ref);
	free(out);
	free(region);
}

/* Long inputs, where the 32-character vector steps decode nearly all:
 * equal to the bytes encoded, separately and in place. */
static void test_decode_large(void **state)
{
	static const size_t lens[] = {33, 34, 35, 36, 4096, 100003, 1 << 20, (1 << 20) + 1,
				      (1 << 20) + 2};
	size_t max = (1 << 20) + 2, e_max = base64url_encoded_len(max);
	uint8_t *src = malloc(max), *back = malloc(max);
	char *enc = malloc(e_max + 1), *region = malloc(e_max);

	(void)state;
	assert_non_null(src);
	assert_non_null(back);
	assert_non_null(enc);
	assert_non_null(region);
	srand(4);
	for (size_t i = 0; i < max; i++)
		src[i] = (uint8_t)rand();
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t len = lens[k], e = base64url_encoded_len(len);

		ref_encode(enc, src, len);
		memset(back, 0, len);
		assert_int_equal(base64url_decode(back, enc, e), (int64_t)len);
		assert_memory_equal(back, src, len);
		memcpy(region, enc, e);
		assert_int_equal(base64url_decode(region, region, e), (int64_t)len);
		assert_memory_equal(region, src, len);
	}
	free(src);
	free(back);
	free(enc);
	free(region);
}

/* Every byte value at every position of a 200-character input: decoded
 * exactly when it is in the alphabet, refused otherwise (the vector
 * classifier must agree with the table, character by character). */
static void test_decode_every_byte_everywhere(void **state)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char s[200];
	uint8_t out[160];

	(void)state;
	for (size_t i = 0; i < sizeof(s); i++)
		s[i] = a[(i * 7) % 64];
	for (size_t pos = 0; pos < sizeof(s); pos++) {
		char keep = s[pos];

		for (int c = 0; c < 256; c++) {
			const char *in_alpha = c ? memchr(a, c, 64) : NULL;
			int64_t r;

			s[pos] = (char)c;
			r = base64url_decode(out, s, sizeof(s));
			if (!in_alpha) {
				assert_int_equal(r, -EPROTO);
				continue;
			}
			assert_int_equal(r, 150);
			/* the 6 bits of that character are where they belong */
			size_t bit = pos * 6, v = (size_t)(in_alpha - a);
			unsigned got = 0;
			for (size_t b = 0; b < 6; b++)
				got = got << 1 | ((out[(bit + b) / 8] >> (7 - (bit + b) % 8)) & 1);
			assert_int_equal(got, v);
		}
		s[pos] = keep;
	}
}

static void test_decode_in_place(void **state)
{
	char s[] = "Zm9vYmFy";

	(void)state;
	assert_int_equal(base64url_decode(s, s, 8), 6);
	assert_memory_equal(s, "foobar", 6);
}

static void test_decode_rejects(void **state)
{
	/* padding, standard-alphabet characters, whitespace, an impossible
	 * length, non-zero unused bits (non-canonical), NUL. */
	static const char *bad[] = {"Zg==",  "Zg=", "Zm9+", "Zm9/",    "Zm9 v", "Zm9v\n", "Z",
				    "Zm9vY", "Zh",  "Zm9",  "Zm9vYmF", "Z\x80", "Zm.v"};
	uint8_t out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(base64url_decode(out, bad[i], strlen(bad[i])), -EPROTO);
	assert_int_equal(base64url_decode(out, "Zm\0v", 4), -EPROTO);
	/* every single trailing character that is not canonical */
	for (int c = 0; c < 256; c++) {
		char s[3] = {'Z', (char)c, 0};
		int64_t r = base64url_decode(out, s, 2);

		if (c == 'A' || c == 'Q' || c == 'g' || c == 'w')
			assert_int_equal(r, 1);
		else
			assert_int_equal(r, -EPROTO);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),	     cmocka_unit_test(test_url_alphabet),
	    cmocka_unit_test(test_random_against_reference), cmocka_unit_test(test_encode_in_place),
	    cmocka_unit_test(test_encode_large),
	    cmocka_unit_test(test_decode_large),
	    cmocka_unit_test(test_decode_every_byte_everywhere),
	    cmocka_unit_test(test_decode_in_place),	     cmocka_unit_test(test_decode_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
