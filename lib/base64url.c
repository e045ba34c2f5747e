/* SPDX-License-Identifier: Apache-2.0 */
/* base64url without padding (RFC 4648 5): a table-driven encoder and a strict decoder. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "atrest/base64url.h"

static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* enc12[v] holds the two characters for the 12-bit value v, first character
 * in the low byte, so one lookup covers half of a 3-byte block. */
static uint16_t enc12[4096];
/* dec[c] is the 6-bit value of character c, or 0xff for anything outside
 * the base64url alphabet (padding '=' included: RFC 7515 2 forbids it).
 * decN[c] is that value already shifted into place in a 24-bit group
 * (character N of 4), or INVALID for a character outside the alphabet. */
static uint8_t dec[256];
static uint32_t dec0[256], dec1[256], dec2[256], dec3[256];
#define INVALID 0xff000000u
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
	for (unsigned v = 0; v < 4096; v++)
		enc12[v] = (uint16_t)((uint8_t)alphabet[v >> 6] | ((uint8_t)alphabet[v & 63] << 8));
	memset(dec, 0xff, sizeof(dec));
	for (unsigned i = 0; i < 64; i++)
		dec[(uint8_t)alphabet[i]] = (uint8_t)i;
	for (unsigned c = 0; c < 256; c++) {
		bool ok = dec[c] != 0xff;

		dec0[c] = ok ? (uint32_t)dec[c] << 18 : INVALID;
		dec1[c] = ok ? (uint32_t)dec[c] << 12 : INVALID;
		dec2[c] = ok ? (uint32_t)dec[c] << 6 : INVALID;
		dec3[c] = ok ? (uint32_t)dec[c] : INVALID;
	}
}

size_t base64url_encoded_len(size_t len)
{
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

static inline uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void store_pair(char *d, uint16_t pair)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	pair = __builtin_bswap16(pair);
#endif
	memcpy(d, &pair, sizeof(pair));
}

/*
 * No restrict on dst/src: seal_segment() encodes in place from a tail-aligned
 * input. Every step reads its input bytes before it writes, and the writes of
 * step k end at most where the input of step k+1 begins (the output grows by
 * a third, the head start of a tail-aligned input is a third), so nothing is
 * overwritten before it is read.
 */
size_t base64url_encode(char *dst, const void *src, size_t len)
{
	const uint8_t *s = src;
	char *d = dst;

	pthread_once(&tables_once, tables_init);

	/* 6 bytes in, 8 characters out, one 64-bit load and one 64-bit store. */
	while (len >= 8) {
		uint64_t v = load_be64(s);
		uint64_t out = (uint64_t)enc12[(v >> 52) & 0xfff] |
			       (uint64_t)enc12[(v >> 40) & 0xfff] << 16 |
			       (uint64_t)enc12[(v >> 28) & 0xfff] << 32 |
			       (uint64_t)enc12[(v >> 16) & 0xfff] << 48;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
		out = __builtin_bswap64(out);
#endif
		memcpy(d, &out, sizeof(out));
		s += 6;
		d += 8;
		len -= 6;
	}
	while (len >= 3) {
		uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];

		store_pair(d, enc12[v >> 12]);
		store_pair(d + 2, enc12[v & 0xfff]);
		s += 3;
		d += 4;
		len -= 3;
	}
	if (len == 2) {
		uint32_t v = (uint32_t)s[0] << 8 | s[1];

		d[0] = alphabet[v >> 10];
		d[1] = alphabet[(v >> 4) & 63];
		d[2] = alphabet[(v << 2) & 63];
		d += 3;
	} else if (len == 1) {
		d[0] = alphabet[s[0] >> 2];
		d[1] = alphabet[(s[0] << 4) & 63];
		d += 2;
	}
	return (size_t)(d - dst);
}

int64_t base64url_decode(void *dst, const char *src, size_t len)
{
	const uint8_t *s = (const uint8_t *)src;
	uint8_t *d = dst;
	uint32_t bad32 = 0;
	unsigned bad = 0;

	pthread_once(&tables_once, tables_init);

	/* RFC 4648 5 without padding: a final group of one character cannot
	 * carry a whole byte. */
	if (len % 4 == 1 || len > (size_t)(INT64_MAX / 4) * 3)
		return -EPROTO;

	/* Invalid characters are 0xff: OR them all and test once at the end,
	 * instead of a branch per character. 8 characters in, one 64-bit store
	 * of which 6 bytes count; the 2 extra bytes are overwritten by the next
	 * step (len >= 12 guarantees one), and stay behind s when in place. */
	for (; len >= 12; len -= 8, s += 8, d += 6) {
		uint32_t hi = dec0[s[0]] | dec1[s[1]] | dec2[s[2]] | dec3[s[3]];
		uint32_t lo = dec0[s[4]] | dec1[s[5]] | dec2[s[6]] | dec3[s[7]];
		uint64_t v = (uint64_t)hi << 40 | (uint64_t)(lo & 0xffffff) << 16;

		bad32 |= hi | lo;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		memcpy(d, &v, sizeof(v));
	}
	for (; len >= 4; len -= 4, s += 4, d += 3) {
		unsigned a = dec[s[0]], b = dec[s[1]], c = dec[s[2]], e = dec[s[3]];
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | e;

		bad |= a | b | c | e;
		d[0] = (uint8_t)(v >> 16);
		d[1] = (uint8_t)(v >> 8);
		d[2] = (uint8_t)v;
	}
	if (len == 3) {
		unsigned a = dec[s[0]], b = dec[s[1]], c = dec[s[2]];

		bad |= a | b | c;
		/* Canonical form: the 2 unused low bits must be zero, so each
		 * byte string has exactly one encoding (no malleable tokens). */
		bad |= (c & 3) ? 0x40 : 0;
		d[0] = (uint8_t)(a << 2 | b >> 4);
		d[1] = (uint8_t)(b << 4 | c >> 2);
		d += 2;
	} else if (len == 2) {
		unsigned a = dec[s[0]], b = dec[s[1]];

		bad |= a | b;
		bad |= (b & 15) ? 0x40 : 0;
		d[0] = (uint8_t)(a << 2 | b >> 4);
		d += 1;
	}
	if ((bad & 0xc0) || (bad32 & INVALID))
		return -EPROTO;
	return (int64_t)(d - (uint8_t *)dst);
}
