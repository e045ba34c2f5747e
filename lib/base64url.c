/* SPDX-License-Identifier: Apache-2.0 */
/* base64url without padding (RFC 4648 5): a table-driven encoder and a strict decoder. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "atrest/base64url.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_ENCODER 1
#endif

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

#ifdef HAVE_AVX2_ENCODER
static bool use_avx2;

/*
 * 24 bytes in, 32 characters out per step: each 128-bit lane turns 12 bytes
 * into 16 characters (W. Mula and D. Lemire, "Faster Base64 Encoding and
 * Decoding using AVX2 Instructions", ACM TWEB 12(3), 2018): a byte shuffle
 * puts each 3-byte block in a 32-bit word as bytes 1,0,2,1; two masked
 * 16-bit multiplies move its four 6-bit values into the four bytes; a
 * 16-entry table then adds the offset of each value's alphabet range.
 * In place (see base64url_encode), with the input h bytes after the
 * output, h = encoded_len(len) - len >= floor(len/3): step k loads input
 * bytes [24k, 24k+28) before it stores characters [32k, 32k+32), and the
 * input not read yet starts at h + 24(k+1) in the output's terms. The step
 * runs only while 32 bytes are left (24k <= len-32), so its store ends at
 * 32(k+1) = 24(k+1) + 8(k+1) <= 24(k+1) + (len-8)/3 <= 24(k+1) + h: it
 * never overwrites input not yet read.
 * Returns the bytes consumed (a multiple of 24); *d moves by 4/3 of that.
 */
__attribute__((target("avx2"))) static size_t encode_avx2(char **d, const uint8_t *s,
							   size_t len)
{
	const __m256i shuffle = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
						 1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
	/* value 0..25 -> 'A'+v, 26..51 -> 'a'+v-26, 52..61 -> '0'+v-52, 62 -> '-', 63 -> '_' */
	const __m256i offset = _mm256_setr_epi8('A', 'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
						'0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
						'0' - 52, '-' - 62, '_' - 63, 0, 0, 'A', 'a' - 26,
						'0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
						'0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
						'-' - 62, '_' - 63, 0, 0);
	char *out = *d;
	size_t done = 0;

	for (; len - done >= 32; done += 24, out += 32) {
		__m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(s + done));
		__m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(s + done + 12));
		__m256i in = _mm256_shuffle_epi8(_mm256_set_m128i(hi, lo), shuffle);
		/* bytes a,b,c of a block: the 6-bit values a>>2, (a<<4|b>>4)&63, (b<<2|c>>6)&63, c&63 */
		__m256i t0 = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
						_mm256_set1_epi32(0x04000040));
		__m256i t1 = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
						_mm256_set1_epi32(0x01000010));
		__m256i v = _mm256_or_si256(t0, t1);
		/* the range: 0..51 -> 0, 52..63 -> 1..12; then +1 for 26 and above */
		__m256i range = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
		range = _mm256_sub_epi8(range, _mm256_cmpgt_epi8(v, _mm256_set1_epi8(25)));
		v = _mm256_add_epi8(v, _mm256_shuffle_epi8(offset, range));
		_mm256_storeu_si256((__m256i *)(void *)out, v);
	}
	*d = out;
	return done;
}

/*
 * 32 characters in, 24 bytes out per step, after the same paper: each
 * character is classified by its high and low nibbles (two 16-entry
 * tables whose entries share a bit exactly when the pair is outside the
 * alphabet), its value is the character plus an offset chosen by the high
 * nibble ('_', whose nibble it shares with 'P'..'Z', is picked out by
 * comparison), and two multiply-adds pack four 6-bit values into three
 * bytes. The store is 32 bytes wide, 24 of them output: the step runs only
 * while 44 characters are left, so the 8 extra bytes fall on output that
 * the steps after it (this loop's or the scalar one's) overwrite. In place
 * it is safe as the scalar loop is: step k loads characters [32k, 32k+32)
 * before it stores bytes [24k, 24k+32), which end where step k+1's input
 * begins, at the latest.
 * Returns the characters consumed; *d moves by 3/4 of that, *bad collects
 * the classification (non-zero: a character outside the alphabet).
 */
__attribute__((target("avx2"))) static size_t decode_avx2(uint8_t **d, const uint8_t *s,
							   size_t len, unsigned *bad)
{
	/* lut_lo[l] has the bit of each high-nibble class for which low
	 * nibble l is outside the alphabet; lut_hi[h] is h's class:
	 * 0x01 never valid (h 0, 1, 8-15), 0x02 '-' only (h 2), 0x04 '0'-'9'
	 * (h 3), 0x08 all but l 0 ('A'-'O', 'a'-'o'), 0x10 l 0-A and F
	 * ('P'-'Z', '_'), 0x20 l 0-A ('p'-'z') */
	const __m256i lut_lo = _mm256_setr_epi8(
		0x0b, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x07, 0x37, 0x37, 0x35,
		0x37, 0x27, 0x0b, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x07, 0x37,
		0x37, 0x35, 0x37, 0x27);
	const __m256i lut_hi = _mm256_setr_epi8(0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x08, 0x20,
						0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
						0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x08, 0x20,
						0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01);
	/* '-' -> 62, '0' -> 52, 'A' -> 0, 'a' -> 26, by high nibble */
	const __m256i lut_roll = _mm256_setr_epi8(0, 0, 62 - '-', 52 - '0', -'A', -'A', 26 - 'a',
						  26 - 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						  62 - '-', 52 - '0', -'A', -'A', 26 - 'a', 26 - 'a',
						  0, 0, 0, 0, 0, 0, 0, 0);
	const __m256i nibble = _mm256_set1_epi8(0x0f);
	const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
					      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
	__m256i badv = _mm256_setzero_si256();
	uint8_t *out = *d;
	size_t done = 0;

	for (; len - done >= 44; done += 32, out += 24) {
		__m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(s + done));
		__m256i hi = _mm256_and_si256(_mm256_srli_epi32(in, 4), nibble);
		__m256i lo = _mm256_and_si256(in, nibble);

		badv = _mm256_or_si256(badv, _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo),
							      _mm256_shuffle_epi8(lut_hi, hi)));
		__m256i roll = _mm256_blendv_epi8(_mm256_shuffle_epi8(lut_roll, hi),
						  _mm256_set1_epi8(63 - '_'),
						  _mm256_cmpeq_epi8(in, _mm256_set1_epi8('_')));
		__m256i v = _mm256_add_epi8(in, roll);
		/* a,b,c,d -> a<<6|b, c<<6|d -> (a<<6|b)<<12 | c<<6|d, then big-endian bytes */
		v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
		v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
		v = _mm256_shuffle_epi8(v, pack);
		v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)(void *)out, v);
	}
	*bad |= _mm256_testz_si256(badv, badv) ? 0 : 0x80;
	*d = out;
	return done;
}
#endif

static void tables_init(void)
{
#ifdef HAVE_AVX2_ENCODER
	use_avx2 = __builtin_cpu_supports("avx2");
#endif
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

#ifdef HAVE_AVX2_ENCODER
	if (use_avx2 && len >= 32) {
		size_t n = encode_avx2(&d, s, len);

		s += n;
		len -= n;
	}
#endif
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

#ifdef HAVE_AVX2_ENCODER
	if (use_avx2 && len >= 44) {
		size_t n = decode_avx2(&d, s, len, &bad);

		s += n;
		len -= n;
	}
#endif

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
