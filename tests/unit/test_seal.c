/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing (TS-0003 8.5 ESData): round trips, header format, every tamper case, limits, keys. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include <jansson.h>

#include "atrest/base64url.h"
#include "atrest/seal.h"

#define KID "0123456789abcdef0123456789abcdef@tef.example"
#define FID "file-42"
#define SEG SEAL_SEGMENT_SIZE_MIN

struct fx {
	struct seal_key *key;
	struct seal_params p;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || sodium_init() < 0 || seal_key_generate(32, &f->key) < 0)
		return -1;
	f->p = (struct seal_params){.key = f->key,
				    .kid = KID,
				    .file_id = FID,
				    .protection = SEAL_CONFIDENTIALITY,
				    .enc = SEAL_ENC_AUTO};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	seal_key_free(f->key);
	free(f);
	return 0;
}

/* ---- helpers: take compact strings apart and put them back together ---- */

struct split {
	char *part[5];
	unsigned n;
};

static struct split split_compact(const char *c)
{
	struct split s = {0};
	char *dup = strdup(c), *save = NULL, *tok;

	assert_non_null(dup);
	/* strtok would merge the empty encrypted-key part: split by hand. */
	tok = dup;
	for (;;) {
		char *dot = strchr(tok, '.');

		assert_true(s.n < 5);
		if (dot)
			*dot = '\0';
		s.part[s.n++] = strdup(tok);
		if (!dot)
			break;
		tok = dot + 1;
	}
	(void)save;
	free(dup);
	return s;
}

static char *join(struct split *s)
{
	size_t len = 0;
	char *out;

	for (unsigned i = 0; i < s->n; i++)
		len += strlen(s->part[i]) + 1;
	out = calloc(1, len + 1);
	assert_non_null(out);
	for (unsigned i = 0; i < s->n; i++) {
		if (i)
			strcat(out, ".");
		strcat(out, s->part[i]);
	}
	for (unsigned i = 0; i < s->n; i++)
		free(s->part[i]);
	return out;
}

static uint8_t *decode_part(const char *b64, size_t *ret_len)
{
	uint8_t *buf = malloc(strlen(b64) + 1);
	int64_t n;

	assert_non_null(buf);
	n = base64url_decode(buf, b64, strlen(b64));
	assert_true(n >= 0);
	buf[n] = 0;
	*ret_len = (size_t)n;
	return buf;
}

static char *encode_part(const void *p, size_t len)
{
	char *s = malloc(base64url_encoded_len(len) + 1);

	assert_non_null(s);
	s[base64url_encode(s, p, len)] = '\0';
	return s;
}

/* Flips one bit in the decoded bytes of part i and re-encodes it. */
static char *flip_in_part(const char *compact, unsigned i, size_t byte, unsigned bit)
{
	struct split s = split_compact(compact);
	size_t n;
	uint8_t *raw = decode_part(s.part[i], &n);

	assert_true(byte < n);
	raw[byte] ^= (uint8_t)(1u << bit);
	free(s.part[i]);
	s.part[i] = encode_part(raw, n);
	free(raw);
	return join(&s);
}

static json_t *header_of(const char *compact)
{
	struct split s = split_compact(compact);
	size_t n;
	uint8_t *raw = decode_part(s.part[0], &n);
	json_t *h = json_loadb((const char *)raw, n, 0, NULL);

	assert_non_null(h);
	free(raw);
	free(join(&s));
	return h;
}

/*
 * A JWE built independently of lib/seal.c, straight from RFC 7516 5.1:
 * any header text, any plaintext, A256GCM or XC20P by header's enc.
 */
static char *jwe_by_hand(const struct seal_key *k, const char *header, const void *plain,
			 size_t len, bool xc20p)
{
	char *h64 = encode_part(header, strlen(header)), *out;
	uint8_t iv[24], tag[16], *ct = malloc(len + 1);
	size_t ivlen = xc20p ? 24 : 12;
	unsigned long long tl;
	char *iv64, *ct64, *tag64;

	assert_non_null(ct);
	randombytes_buf(iv, sizeof(iv));
	if (xc20p)
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		    ct, tag, &tl, plain, len, (const uint8_t *)h64, strlen(h64), NULL, iv,
		    seal_key_bytes(k));
	else
		crypto_aead_aes256gcm_encrypt_detached(ct, tag, &tl, plain, len,
						       (const uint8_t *)h64, strlen(h64), NULL, iv,
						       seal_key_bytes(k));
	iv64 = encode_part(iv, ivlen);
	ct64 = encode_part(ct, len);
	tag64 = encode_part(tag, 16);
	assert_true(asprintf(&out, "%s..%s.%s.%s", h64, iv64, ct64, tag64) > 0);
	free(h64);
	free(iv64);
	free(ct64);
	free(tag64);
	free(ct);
	return out;
}

/* A JWS HS256 built by hand (RFC 7515 5.1, key of 32 bytes). */
static char *jws_by_hand(const struct seal_key *k, const char *header, const void *payload,
			 size_t len)
{
	char *h64 = encode_part(header, strlen(header)), *p64 = encode_part(payload, len), *s64;
	uint8_t mac[32];
	char *input, *out;

	assert_true(asprintf(&input, "%s.%s", h64, p64) > 0);
	crypto_auth_hmacsha256(mac, (const uint8_t *)input, strlen(input), seal_key_bytes(k));
	s64 = encode_part(mac, 32);
	assert_true(asprintf(&out, "%s.%s", input, s64) > 0);
	free(h64);
	free(p64);
	free(s64);
	free(input);
	return out;
}

/* The header text with "A256GCM" replaced by "XC20P", for CPUs without
 * AES-GCM in libsodium. */
static char *with_xc20p(const char *h)
{
	const char *e = strstr(h, "A256GCM");
	char *out = NULL;

	if (!e)
		return strdup(h);
	assert_true(asprintf(&out, "%.*sXC20P%s", (int)(e - h), h, e + 7) > 0);
	return out;
}

/* Seals one small segment (index 1, generation 1). */
/* noinline: inlined, GCC 12 at -O3 takes pointers into the returned string
 * for pointers to its local c (-Wdangling-pointer, a false positive) */
static __attribute__((noinline)) char *seal_small(const struct seal_params *p, const char *text)
{
	char *c = NULL;
	size_t n;

	assert_int_equal(seal_segment(p, 1, 1, text, strlen(text), &c, &n), 0);
	assert_int_equal(strlen(c), n);
	return c;
}

/* Opens c (index 1, generation 1) into a canary-filled buffer; on failure
 * checks that nothing was written. */
static int open_small(const struct seal_params *p, const char *c)
{
	uint8_t out[256];
	size_t n = 777;
	int r;

	memset(out, 0xa5, sizeof(out));
	r = seal_open_segment(p, 1, 1, c, strlen(c), out, sizeof(out), &n);
	if (r < 0) {
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 0xa5);
		assert_int_equal(n, 777);
	}
	return r;
}

/* ---- streaming round trips ---------------------------------------------- */

struct store {
	char **c;
	size_t *len;
	size_t n, cap;
	long missing; /* index the source pretends is absent, or -1 */
	long swap;    /* serve index swap for swap+1 and back, or -1 */
};

static int sink(void *userdata, uint64_t index, const char *compact, size_t len)
{
	struct store *s = userdata;

	assert_int_equal(index, s->n);
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->c = realloc(s->c, s->cap * sizeof(*s->c));
		s->len = realloc(s->len, s->cap * sizeof(*s->len));
		assert_non_null(s->c);
		assert_non_null(s->len);
	}
	s->c[s->n] = strndup(compact, len);
	s->len[s->n] = len;
	s->n++;
	return 0;
}

static int source(void *userdata, uint64_t index, char **ret, size_t *ret_len)
{
	struct store *s = userdata;
	uint64_t i = index;

	if ((long)index == s->missing || index >= s->n)
		return -ENOENT;
	if (s->swap >= 0 && (long)index == s->swap)
		i = index + 1;
	else if (s->swap >= 0 && (long)index == s->swap + 1)
		i = index - 1;
	*ret = strdup(s->c[i]);
	*ret_len = s->len[i];
	return 0;
}

static void store_free(struct store *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->c[i]);
	free(s->c);
	free(s->len);
}

static int memfd_with(const uint8_t *data, size_t len)
{
	int fd = memfd_create("test", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Seals len random bytes as a file of segment size seg, seals and reopens
 * the manifest, streams the file back and compares. */
static void roundtrip(struct seal_params *p, size_t len, uint32_t seg)
{
	struct store st = {.missing = -1, .swap = -1};
	struct seal_manifest m = {.version = 5,
				  .segment_size = seg,
				  .mode = 0100640,
				  .uid = 1000,
				  .gid = 100,
				  .mtime_ns = 1700000000123456789,
				  .ctime_ns = -5};
	struct seal_manifest *back = NULL;
	uint8_t *data = malloc(len + 1), *got;
	char *mc = NULL;
	size_t mlen, expect_n = len / seg + (len % seg ? 1 : 0);
	int in, out;

	assert_non_null(data);
	randombytes_buf(data, len);
	in = memfd_with(data, len);
	assert_int_equal(seal_stream_seal(p, in, &m, sink, &st), 0);
	close(in);
	assert_int_equal(m.length, len);
	assert_int_equal(m.n_segments, expect_n);
	assert_int_equal(st.n, expect_n);

	assert_int_equal(seal_manifest_seal(p, &m, &mc, &mlen), 0);
	assert_int_equal(seal_manifest_open(p, mc, mlen, 5, &back), 0);
	assert_int_equal(back->version, 5);
	assert_int_equal(back->length, len);
	assert_int_equal(back->segment_size, seg);
	assert_int_equal(back->mode, 0100640);
	assert_int_equal(back->uid, 1000);
	assert_int_equal(back->gid, 100);
	assert_true(back->mtime_ns == 1700000000123456789);
	assert_true(back->ctime_ns == -5);
	assert_int_equal(back->n_segments, expect_n);
	for (size_t i = 0; i < expect_n; i++) {
		assert_int_equal(back->segments[i].index, i);
		assert_int_equal(back->segments[i].generation, 5);
		assert_int_equal(back->segments[i].length, m.segments[i].length);
	}

	out = memfd_create("out", 0);
	assert_true(out >= 0);
	assert_int_equal(seal_stream_open(p, back, source, &st, out), 0);
	assert_int_equal(lseek(out, 0, SEEK_END), (off_t)len);
	got = malloc(len + 1);
	assert_non_null(got);
	assert_int_equal(pread(out, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, data, len);
	close(out);

	free(got);
	free(data);
	free(mc);
	free(m.segments);
	seal_manifest_free(back);
	store_free(&st);
}

static void roundtrip_sizes(struct seal_params *p)
{
	const size_t sizes[] = {0, 1, SEG - 1, SEG, SEG + 1, 10 * SEG + 7};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(p, sizes[i], SEG);
	/* and the default segment size, where "segment" means 1 MiB */
	roundtrip(p, 0, SEAL_SEGMENT_SIZE_DEFAULT);
	roundtrip(p, SEAL_SEGMENT_SIZE_DEFAULT - 1, SEAL_SEGMENT_SIZE_DEFAULT);
	roundtrip(p, SEAL_SEGMENT_SIZE_DEFAULT + 1, SEAL_SEGMENT_SIZE_DEFAULT);
	roundtrip(p, 10 * SEAL_SEGMENT_SIZE_DEFAULT + 7, SEAL_SEGMENT_SIZE_DEFAULT);
}

static void test_roundtrip_a256gcm(void **state)
{
	struct fx *f = *state;

	if (!crypto_aead_aes256gcm_is_available())
		skip();
	f->p.enc = SEAL_ENC_A256GCM;
	roundtrip_sizes(&f->p);
}

static void test_roundtrip_xc20p(void **state)
{
	struct fx *f = *state;

	f->p.enc = SEAL_ENC_XC20P;
	roundtrip_sizes(&f->p);
}

static void test_roundtrip_jws(void **state)
{
	struct fx *f = *state;

	f->p.protection = SEAL_INTEGRITY;
	roundtrip_sizes(&f->p);
}

/* ---- format ------------------------------------------------------------------ */

static void test_jwe_header_members(void **state)
{
	struct fx *f = *state;
	char *c = NULL;
	size_t n;
	json_t *h, *a;
	struct split s;

	f->p.enc = SEAL_ENC_XC20P;
	assert_int_equal(seal_segment(&f->p, 7, 3, "x", 1, &c, &n), 0);
	h = header_of(c);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "dir");
	assert_string_equal(json_string_value(json_object_get(h, "enc")), "XC20P");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), KID);
	a = json_object_get(h, "atrest");
	assert_int_equal(json_integer_value(json_object_get(a, "v")), 1);
	assert_string_equal(json_string_value(json_object_get(a, "t")), "seg");
	assert_string_equal(json_string_value(json_object_get(a, "fid")), FID);
	assert_int_equal(json_integer_value(json_object_get(a, "idx")), 7);
	assert_int_equal(json_integer_value(json_object_get(a, "gen")), 3);
	assert_int_equal(json_object_size(h), 4);
	assert_int_equal(json_object_size(a), 5);
	json_decref(h);

	s = split_compact(c);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.part[1], ""); /* "dir": no encrypted key */
	assert_int_equal(strlen(s.part[2]), base64url_encoded_len(24));
	assert_int_equal(strlen(s.part[3]), base64url_encoded_len(1));
	assert_int_equal(strlen(s.part[4]), base64url_encoded_len(16));
	free(join(&s));
	free(c);
}

static void test_enc_auto(void **state)
{
	struct fx *f = *state;
	char *c = seal_small(&f->p, "auto");
	json_t *h = header_of(c);

	assert_string_equal(json_string_value(json_object_get(h, "enc")),
			    crypto_aead_aes256gcm_is_available() ? "A256GCM" : "XC20P");
	assert_int_equal(seal_enc_default(),
			 crypto_aead_aes256gcm_is_available() ? SEAL_ENC_A256GCM : SEAL_ENC_XC20P);
	if (crypto_aead_aes256gcm_is_available()) {
		struct split s = split_compact(c);

		assert_int_equal(strlen(s.part[2]), base64url_encoded_len(12));
		free(join(&s));
	}
	json_decref(h);
	free(c);
}

static void test_jws_header_members(void **state)
{
	struct fx *f = *state;
	char *c;
	json_t *h;
	struct split s;

	f->p.protection = SEAL_INTEGRITY;
	c = seal_small(&f->p, "integrity only");
	h = header_of(c);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "HS256");
	assert_null(json_object_get(h, "enc"));
	assert_string_equal(json_string_value(json_object_get(h, "kid")), KID);
	json_decref(h);
	s = split_compact(c);
	assert_int_equal(s.n, 3);
	assert_int_equal(strlen(s.part[2]), base64url_encoded_len(32));
	free(join(&s));
	free(c);
}

static void test_empty_null_plaintext(void **state)
{
	struct fx *f = *state;
	uint8_t out[4];
	char *c = NULL;
	size_t n = 9;

	assert_int_equal(seal_segment(&f->p, 0, 0, NULL, 0, &c, &n), 0);
	assert_int_equal(seal_open_segment(&f->p, 0, 0, c, strlen(c), out, 0, &n), 0);
	assert_int_equal(n, 0);
	free(c);
	assert_int_equal(seal_segment(&f->p, 0, 0, NULL, 1, &c, &n), -EINVAL);
}

static void test_fresh_iv(void **state)
{
	struct fx *f = *state;
	char *a = seal_small(&f->p, "same"), *b = seal_small(&f->p, "same");
	struct split sa = split_compact(a), sb = split_compact(b);

	assert_string_not_equal(sa.part[2], sb.part[2]);
	assert_string_not_equal(sa.part[3], sb.part[3]);
	free(join(&sa));
	free(join(&sb));
	free(a);
	free(b);
}

static void test_any_segment_alone(void **state)
{
	struct fx *f = *state;
	char *c[10];
	size_t n;
	char buf[16];

	for (unsigned i = 0; i < 10; i++) {
		snprintf(buf, sizeof(buf), "segment %u", i);
		assert_int_equal(seal_segment(&f->p, i, 2, buf, strlen(buf), &c[i], &n), 0);
	}
	/* the sixth opens with nothing else at hand */
	assert_int_equal(seal_open_segment(&f->p, 5, 2, c[5], strlen(c[5]), buf, sizeof(buf), &n),
			 0);
	assert_memory_equal(buf, "segment 5", n);
	for (unsigned i = 0; i < 10; i++)
		free(c[i]);
}

/* ---- tampering: each case its own test --------------------------------------- */

/* Seals a small object with protection prot, lets tamper() change it and
 * expects SEAL_E_AUTH with nothing written. */
static void expect_tamper_detected(struct fx *f, enum seal_protection prot,
				   char *(*tamper)(const char *c, unsigned part), unsigned part)
{
	char *c, *t;

	f->p.protection = prot;
	c = seal_small(&f->p, "payload");
	t = tamper(c, part);
	assert_string_not_equal(c, t);
	assert_int_equal(open_small(&f->p, t), SEAL_E_AUTH);
	free(t);
	free(c);
}

/* "file-42" -> "file-43" in the decoded header: still valid JSON with the
 * same kid, so only the tag (AAD) can tell. */
static char *tamper_header_fid(const char *c, unsigned part)
{
	struct split s = split_compact(c);
	size_t n;
	uint8_t *raw = decode_part(s.part[part], &n);
	char *pos = strstr((char *)raw, FID);

	assert_non_null(pos);
	pos[6] ^= 0x07;
	free(s.part[part]);
	s.part[part] = encode_part(raw, n);
	free(raw);
	return join(&s);
}

/* One bit flipped in the middle of the decoded part. */
static char *tamper_bit(const char *c, unsigned part)
{
	struct split s = split_compact(c);
	size_t n;
	uint8_t *raw = decode_part(s.part[part], &n);

	free(raw);
	free(join(&s));
	return flip_in_part(c, part, n / 2, part % 8);
}

static void test_tamper_header(void **state)
{
	expect_tamper_detected(*state, SEAL_CONFIDENTIALITY, tamper_header_fid, 0);
}

static void test_tamper_iv(void **state)
{
	expect_tamper_detected(*state, SEAL_CONFIDENTIALITY, tamper_bit, 2);
}

static void test_tamper_ciphertext(void **state)
{
	expect_tamper_detected(*state, SEAL_CONFIDENTIALITY, tamper_bit, 3);
}

static void test_tamper_tag(void **state)
{
	expect_tamper_detected(*state, SEAL_CONFIDENTIALITY, tamper_bit, 4);
}

static void test_tamper_jws_header(void **state)
{
	expect_tamper_detected(*state, SEAL_INTEGRITY, tamper_header_fid, 0);
}

static void test_tamper_jws_payload(void **state)
{
	expect_tamper_detected(*state, SEAL_INTEGRITY, tamper_bit, 1);
}

static void test_tamper_jws_signature(void **state)
{
	expect_tamper_detected(*state, SEAL_INTEGRITY, tamper_bit, 2);
}

/* Every single bit of the compact string, flipped one at a time: never
 * accepted, never a byte written. */
static void every_bit(struct fx *f)
{
	char *c = seal_small(&f->p, "every bit counts");
	size_t len = strlen(c);

	for (size_t i = 0; i < len; i++) {
		for (unsigned b = 0; b < 8; b++) {
			int r;

			c[i] ^= (char)(1u << b);
			r = open_small(&f->p, c);
			assert_true(r == SEAL_E_AUTH || r == SEAL_E_MALFORMED || r == SEAL_E_KID);
			c[i] ^= (char)(1u << b);
		}
	}
	assert_int_equal(open_small(&f->p, c), 0);
	free(c);
}

static void test_every_bit_flip_jwe(void **state)
{
	every_bit(*state);
}

static void test_every_bit_flip_jws(void **state)
{
	struct fx *f = *state;

	f->p.protection = SEAL_INTEGRITY;
	every_bit(f);
}

static void test_wrong_key(void **state)
{
	struct fx *f = *state;
	struct seal_key *other = NULL;
	struct seal_params q = f->p;
	char *c = seal_small(&f->p, "payload");

	assert_int_equal(seal_key_generate(32, &other), 0);
	q.key = other;
	assert_int_equal(open_small(&q, c), SEAL_E_AUTH);
	seal_key_free(other);
	free(c);
}

static void test_reordered(void **state)
{
	struct fx *f = *state;
	char *c = NULL;
	uint8_t out[16];
	size_t n;

	assert_int_equal(seal_segment(&f->p, 3, 1, "third", 5, &c, &n), 0);
	assert_int_equal(seal_open_segment(&f->p, 4, 1, c, n, out, sizeof(out), &n),
			 SEAL_E_REORDERED);
	free(c);
}

static void test_reordered_stream(void **state)
{
	struct fx *f = *state;
	struct store st = {.missing = -1, .swap = 1};
	struct seal_manifest m = {.version = 1, .segment_size = SEG};
	uint8_t *data = calloc(1, 4 * SEG);
	int in = memfd_with(data, 4 * SEG), out = memfd_create("out", 0);

	assert_int_equal(seal_stream_seal(&f->p, in, &m, sink, &st), 0);
	assert_int_equal(seal_stream_open(&f->p, &m, source, &st, out), SEAL_E_REORDERED);
	close(in);
	close(out);
	free(data);
	free(m.segments);
	store_free(&st);
}

static void test_truncated_stream(void **state)
{
	struct fx *f = *state;
	struct store st = {.missing = -1, .swap = -1};
	struct seal_manifest m = {.version = 1, .segment_size = SEG};
	uint8_t *data = calloc(1, 3 * SEG + 10);
	int in = memfd_with(data, 3 * SEG + 10), out = memfd_create("out", 0);

	assert_int_equal(seal_stream_seal(&f->p, in, &m, sink, &st), 0);
	assert_int_equal(m.n_segments, 4);
	/* the trailing segment dropped */
	st.missing = 3;
	assert_int_equal(seal_stream_open(&f->p, &m, source, &st, out), SEAL_E_TRUNCATED);
	close(in);
	close(out);
	free(data);
	free(m.segments);
	store_free(&st);
}

static void test_truncated_segment(void **state)
{
	struct fx *f = *state;
	struct seal_manifest *m = NULL;
	uint8_t buf[SEG] = {0};
	char *c = NULL;
	size_t n;

	/* a two-segment file, last segment 100 bytes; a shorter authentic
	 * segment with the right binding is still a truncation */
	assert_int_equal(seal_manifest_new(2, &m), 0);
	m->version = 2;
	m->segment_size = SEG;
	m->length = SEG + 100;
	m->segments[0] = (struct seal_segment_ref){0, 2, SEG};
	m->segments[1] = (struct seal_segment_ref){1, 2, 100};
	assert_int_equal(seal_segment(&f->p, 1, 2, buf, 99, &c, &n), 0);
	assert_int_equal(seal_open_segment_in(&f->p, m, 1, c, n, buf, sizeof(buf), &n),
			 SEAL_E_TRUNCATED);
	free(c);
	/* a segment beyond the manifest's list */
	assert_int_equal(seal_segment(&f->p, 2, 2, buf, 10, &c, &n), 0);
	assert_int_equal(seal_open_segment_in(&f->p, m, 2, c, n, buf, sizeof(buf), &n),
			 SEAL_E_REORDERED);
	free(c);
	seal_manifest_free(m);
}

static void test_other_file(void **state)
{
	struct fx *f = *state;
	struct seal_params q = f->p;
	char *c = seal_small(&f->p, "payload");

	q.file_id = "file-43";
	assert_int_equal(open_small(&q, c), SEAL_E_OTHER_FILE);
	free(c);
}

static void test_other_generation(void **state)
{
	struct fx *f = *state;
	char *c = NULL;
	uint8_t out[16];
	size_t n;

	assert_int_equal(seal_segment(&f->p, 1, 4, "old", 3, &c, &n), 0);
	assert_int_equal(seal_open_segment(&f->p, 1, 5, c, n, out, sizeof(out), &n),
			 SEAL_E_GENERATION);
	free(c);
}

static void test_kid_mismatch(void **state)
{
	struct fx *f = *state;
	struct seal_params q = f->p;
	char *c = seal_small(&f->p, "payload");

	q.kid = "ffffffffffffffffffffffffffffffff@tef.example";
	assert_int_equal(open_small(&q, c), SEAL_E_KID);
	free(c);
}

static void test_kind_mismatch(void **state)
{
	struct fx *f = *state;
	struct seal_manifest m = {.version = 1, .segment_size = SEG};
	struct seal_manifest *back = NULL;
	char *mc = NULL, *c = seal_small(&f->p, "payload");
	size_t n;

	assert_int_equal(seal_manifest_seal(&f->p, &m, &mc, &n), 0);
	assert_int_equal(open_small(&f->p, mc), SEAL_E_KIND);
	assert_int_equal(seal_manifest_open(&f->p, c, strlen(c), 0, &back), SEAL_E_KIND);
	assert_null(back);
	free(mc);
	free(c);
}

static void test_rollback(void **state)
{
	struct fx *f = *state;
	struct seal_manifest m = {.version = 3, .segment_size = SEG};
	struct seal_manifest *back = NULL;
	char *mc = NULL;
	size_t n;

	assert_int_equal(seal_manifest_seal(&f->p, &m, &mc, &n), 0);
	assert_int_equal(seal_manifest_open(&f->p, mc, n, 4, &back), SEAL_E_ROLLBACK);
	assert_null(back);
	assert_int_equal(seal_manifest_open(&f->p, mc, n, 3, &back), 0);
	assert_int_equal(back->version, 3);
	seal_manifest_free(back);
	free(mc);
}

static void test_manifest_times(void **state)
{
	struct fx *f = *state;
	const int64_t times[] = {
	    0, -1, 1, -999999999, -1000000000, 1700000000123456789, INT64_MIN, INT64_MAX};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		struct seal_manifest m = {
		    .version = 1, .segment_size = SEG, .mtime_ns = times[i], .ctime_ns = ~times[i]};
		struct seal_manifest *back = NULL;
		char *mc = NULL;
		size_t n;

		assert_int_equal(seal_manifest_seal(&f->p, &m, &mc, &n), 0);
		assert_int_equal(seal_manifest_open(&f->p, mc, n, 1, &back), 0);
		assert_true(back->mtime_ns == times[i]);
		assert_true(back->ctime_ns == ~times[i]);
		seal_manifest_free(back);
		free(mc);
	}
}

static void test_manifest_tamper_and_bindings(void **state)
{
	struct fx *f = *state;
	struct seal_manifest m = {.version = 3, .segment_size = SEG};
	struct seal_manifest *back = NULL;
	struct seal_params q = f->p;
	char *mc = NULL, *t;
	size_t n;

	assert_int_equal(seal_manifest_seal(&f->p, &m, &mc, &n), 0);
	t = flip_in_part(mc, 3, 4, 2);
	assert_int_equal(seal_manifest_open(&f->p, t, strlen(t), 0, &back), SEAL_E_AUTH);
	free(t);
	q.file_id = "file-43";
	assert_int_equal(seal_manifest_open(&q, mc, n, 0, &back), SEAL_E_OTHER_FILE);
	q = f->p;
	q.kid = "other@tef.example";
	assert_int_equal(seal_manifest_open(&q, mc, n, 0, &back), SEAL_E_KID);
	assert_null(back);
	free(mc);
}

/* ---- malformed input ---------------------------------------------------------- */

static void test_malformed_structure(void **state)
{
	struct fx *f = *state;
	char *c = seal_small(&f->p, "payload");
	char *bad[8];
	size_t nb = 0, len = strlen(c);

	bad[nb++] = strdup("");
	bad[nb++] = strdup("....");
	bad[nb++] = strdup("a.b");
	bad[nb++] = strndup(c, len - 1);		 /* last tag char cut: bad length */
	assert_true(asprintf(&bad[nb++], "%s.", c) > 0); /* six parts */
	assert_true(asprintf(&bad[nb++], "%s=", c) > 0); /* padding */
	assert_true(asprintf(&bad[nb++], " %s", c) > 0); /* whitespace */
	/* a non-empty encrypted key, which "dir" forbids (RFC 7516 5.1 step 6) */
	assert_true(asprintf(&bad[nb++], "%.*s.AAAA.%s", (int)(strchr(c, '.') - c), c,
			     strchr(c, '.') + 2) > 0);
	for (size_t i = 0; i < nb; i++) {
		assert_int_equal(open_small(&f->p, bad[i]), SEAL_E_MALFORMED);
		free(bad[i]);
	}
	free(c);
}

static void test_malformed_headers(void **state)
{
	struct fx *f = *state;
	static const char *headers[] = {
	    "not json",
	    "[\"alg\",\"dir\"]",
	    "{\"alg\":\"dir\",\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\"}",
	    "{\"alg\":\"none\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\"}",
	    "{\"alg\":\"dir\",\"enc\":\"A128GCM\",\"kid\":\"" KID "\"}",
	    "{\"alg\":\"dir\",\"kid\":\"" KID "\"}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\",\"zip\":\"DEF\"}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\",\"crit\":[\"x\"],\"x\":1}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":7}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\"} trailing",
	    /* authentic but with a broken binding member */
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\"}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
	    "\",\"atrest\":{\"v\":2,\"t\":\"seg\",\"fid\":\"" FID "\",\"idx\":1,\"gen\":1}}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
	    "\",\"atrest\":{\"v\":1,\"t\":\"seg\",\"fid\":\"" FID "\",\"idx\":-1,\"gen\":1}}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
	    "\",\"atrest\":{\"v\":1,\"t\":\"seg\",\"fid\":\"" FID "\",\"idx\":1.0,\"gen\":1}}",
	    "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
	    "\",\"atrest\":{\"v\":1,\"t\":\"xyz\",\"fid\":\"" FID "\",\"idx\":1,\"gen\":1}}",
	};
	bool xc = !crypto_aead_aes256gcm_is_available();

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *h = xc ? with_xc20p(headers[i]) : strdup(headers[i]), *c;

		c = jwe_by_hand(f->key, h, "payload", 7, xc);
		print_message("header %zu: %s\n", i, h);
		assert_int_equal(open_small(&f->p, c), SEAL_E_MALFORMED);
		free(c);
		free(h);
	}
}

static void test_protection_mismatch(void **state)
{
	struct fx *f = *state;
	struct seal_params q = f->p;
	char *c;

	q.protection = SEAL_INTEGRITY;
	c = seal_small(&q, "signed");
	assert_int_equal(open_small(&f->p, c), SEAL_E_MALFORMED);
	free(c);
	c = seal_small(&f->p, "encrypted");
	assert_int_equal(open_small(&q, c), SEAL_E_MALFORMED);
	free(c);
}

static void test_manifest_malformed_body(void **state)
{
	struct fx *f = *state;
	static const char *bodies[] = {
	    "[]",
	    "{\"v\":1}",
	    /* n_segments does not match length */
	    "{\"v\":1,\"version\":1,\"length\":5000,\"segmentSize\":4096,\"mode\":0,\"uid\":0,"
	    "\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[[0,1,4096]]}",
	    /* index out of place */
	    "{\"v\":1,\"version\":1,\"length\":10,\"segmentSize\":4096,\"mode\":0,\"uid\":0,"
	    "\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[[1,1,10]]}",
	    /* generation newer than the version */
	    "{\"v\":1,\"version\":1,\"length\":10,\"segmentSize\":4096,\"mode\":0,\"uid\":0,"
	    "\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[[0,2,10]]}",
	    /* segment size below the minimum */
	    "{\"v\":1,\"version\":1,\"length\":0,\"segmentSize\":1024,\"mode\":0,\"uid\":0,\"gid\":"
	    "0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[]}",
	    /* version in the header (1) differs from the body (2) */
	    "{\"v\":1,\"version\":2,\"length\":0,\"segmentSize\":4096,\"mode\":0,\"uid\":0,\"gid\":"
	    "0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[]}",
	    /* duplicate member */
	    "{\"v\":1,\"version\":1,\"version\":1,\"length\":0,\"segmentSize\":4096,\"mode\":0,"
	    "\"uid\":0,\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[]}",
	};
	static const char *ok =
	    "{\"v\":1,\"version\":1,\"length\":10,\"segmentSize\":4096,\"mode\":0,\"uid\":0,"
	    "\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],\"segments\":[[0,1,10]]}";
	bool xc = !crypto_aead_aes256gcm_is_available();
	const char *gcm = "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
			  "\",\"atrest\":{\"v\":1,\"t\":\"man\",\"fid\":\"" FID "\",\"ver\":1}}";
	char *hdr = xc ? with_xc20p(gcm) : strdup(gcm);
	struct seal_manifest *m = NULL;
	char *c;

	/* the hand-made form is accepted when the body is right */
	c = jwe_by_hand(f->key, hdr, ok, strlen(ok), xc);
	assert_int_equal(seal_manifest_open(&f->p, c, strlen(c), 1, &m), 0);
	assert_int_equal(m->length, 10);
	assert_int_equal(m->seals, 0); /* absent: unknown */
	m = seal_manifest_free(m);
	free(c);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		c = jwe_by_hand(f->key, hdr, bodies[i], strlen(bodies[i]), xc);
		print_message("body %zu\n", i);
		assert_int_equal(seal_manifest_open(&f->p, c, strlen(c), 0, &m), SEAL_E_MALFORMED);
		assert_null(m);
		free(c);
	}
	free(hdr);
}

/* The seal count a manifest carries: round trip, absent, invalid forms. */
static void test_manifest_seals(void **state)
{
	struct fx *f = *state;
	const uint64_t counts[] = { 1, 2, UINT64_C(1) << 30, SEAL_MAX_SEALS, SEAL_MAX_NUMBER };
	static const char *bad[] = { "0", "-1", "1.5", "\"7\"", "null", "9007199254740992" };
	const char *gcm = "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID
			  "\",\"atrest\":{\"v\":1,\"t\":\"man\",\"fid\":\"" FID "\",\"ver\":1}}";
	bool xc = !crypto_aead_aes256gcm_is_available();
	char *hdr = xc ? with_xc20p(gcm) : strdup(gcm);
	struct seal_manifest *back = NULL;
	char *mc = NULL, *body = NULL, *c;
	size_t n;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct seal_manifest m = { .version = 1, .segment_size = SEG, .seals = counts[i] };

		assert_int_equal(seal_manifest_seal(&f->p, &m, &mc, &n), 0);
		assert_int_equal(seal_manifest_open(&f->p, mc, n, 1, &back), 0);
		assert_true(back->seals == counts[i]);
		back = seal_manifest_free(back);
		free(mc);
	}
	/* 0 is "unknown": sealed without the member, read back as 0 */
	struct seal_manifest z = { .version = 1, .segment_size = SEG };
	assert_int_equal(seal_manifest_seal(&f->p, &z, &mc, &n), 0);
	assert_int_equal(seal_manifest_open(&f->p, mc, n, 1, &back), 0);
	assert_int_equal(back->seals, 0);
	back = seal_manifest_free(back);
	free(mc);
	/* beyond the I-JSON range: refused when sealing */
	z.seals = SEAL_MAX_NUMBER + 1;
	assert_int_equal(seal_manifest_seal(&f->p, &z, &mc, &n), -EINVAL);
	/* present but not a count of at least this manifest: malformed */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(asprintf(&body,
				     "{\"v\":1,\"version\":1,\"length\":0,\"segmentSize\":4096,"
				     "\"mode\":0,\"uid\":0,\"gid\":0,\"mtime\":[0,0],\"ctime\":[0,0],"
				     "\"segments\":[],\"seals\":%s}",
				     bad[i]) > 0);
		c = jwe_by_hand(f->key, hdr, body, strlen(body), xc);
		print_message("seals %s\n", bad[i]);
		assert_int_equal(seal_manifest_open(&f->p, c, strlen(c), 0, &back), SEAL_E_MALFORMED);
		assert_null(back);
		free(c);
		free(body);
	}
	free(hdr);
}

/* ---- standalone ESData, peeking ------------------------------------------------ */

static void test_open_esdata_foreign(void **state)
{
	struct fx *f = *state;
	const char *gcm = "{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"" KID "\"}";
	const char *xc = "{\"kid\":\"" KID "\",\"enc\":\"XC20P\",\"alg\":\"dir\"}";
	char *c, *out = NULL;
	size_t n;

	if (crypto_aead_aes256gcm_is_available()) {
		c = jwe_by_hand(f->key, gcm, "from another AE", 15, false);
		assert_int_equal(seal_open_esdata(f->key, KID, c, strlen(c), &out, &n), 0);
		assert_int_equal(n, 15);
		assert_string_equal(out, "from another AE");
		free(out);
		assert_int_equal(seal_open_esdata(f->key, "someone@else", c, strlen(c), &out, &n),
				 SEAL_E_KID);
		free(c);
	}
	c = jwe_by_hand(f->key, xc, "", 0, true);
	assert_int_equal(seal_open_esdata(f->key, NULL, c, strlen(c), &out, &n), 0);
	assert_int_equal(n, 0);
	free(out);
	free(c);
	c = jws_by_hand(f->key, "{\"alg\":\"HS256\",\"kid\":\"" KID "\"}", "signed", 6);
	assert_int_equal(seal_open_esdata(f->key, KID, c, strlen(c), &out, &n), 0);
	assert_memory_equal(out, "signed", 6);
	free(out);
	free(c);
}

static void test_peek_kid(void **state)
{
	struct fx *f = *state;
	char *c = seal_small(&f->p, "payload"), *kid = NULL, *h;

	assert_int_equal(seal_peek_kid(c, strlen(c), &kid), 0);
	assert_string_equal(kid, KID);
	free(kid);
	free(c);
	/* peeking trusts nothing: a header without kid is malformed */
	h = encode_part("{\"alg\":\"dir\"}", 13);
	assert_true(asprintf(&c, "%s..AAAA.AAAA.AAAA", h) > 0);
	assert_int_equal(seal_peek_kid(c, strlen(c), &kid), SEAL_E_MALFORMED);
	free(c);
	free(h);
	assert_int_equal(seal_peek_kid("garbage", 7, &kid), SEAL_E_MALFORMED);
}

/* ---- keys, counter, limits ----------------------------------------------------- */

static void test_key_new(void **state)
{
	uint8_t raw[64];
	struct seal_key *k = NULL;

	(void)state;
	memset(raw, 0x42, sizeof(raw));
	assert_int_equal(seal_key_new(raw, 15, &k), -EINVAL);
	assert_int_equal(seal_key_new(raw, 65, &k), -EINVAL);
	assert_null(k);
	assert_int_equal(seal_key_new(raw, 16, &k), 0);
	assert_int_equal(seal_key_len(k), 16);
	assert_memory_equal(seal_key_bytes(k), raw, 16);
	/* a copy: the caller's buffer is its own */
	assert_ptr_not_equal(seal_key_bytes(k), raw);
	assert_null(seal_key_free(k));
	assert_null(seal_key_free(NULL));
	assert_int_equal(seal_key_generate(32, &k), 0);
	assert_int_equal(seal_key_len(k), 32);
	seal_key_free(k);
}

static void test_key_lengths(void **state)
{
	struct fx *f = *state;
	struct seal_key *k16 = NULL, *k64 = NULL;
	struct seal_params q = f->p;
	char *c = NULL, *out = NULL;
	size_t n;

	assert_int_equal(seal_key_generate(16, &k16), 0);
	assert_int_equal(seal_key_generate(64, &k64), 0);
	q.key = k16;
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), -EINVAL); /* JWE needs 256 bits */
	q.protection = SEAL_INTEGRITY;
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), -EINVAL); /* RFC 7518 3.2 */
	q.key = k64;
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), 0); /* HS256: >= 256 bits */
	assert_int_equal(seal_open_esdata(k64, KID, c, n, &out, &n), 0);
	assert_string_equal(out, "x");
	free(out);
	free(c);
	q.protection = SEAL_CONFIDENTIALITY;
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), -EINVAL);
	seal_key_free(k16);
	seal_key_free(k64);
}

static void test_seal_counter(void **state)
{
	struct fx *f = *state;
	char *c = NULL;
	size_t n;

	assert_int_equal(seal_key_seal_count(f->key), 0);
	c = seal_small(&f->p, "one");
	assert_int_equal(seal_key_seal_count(f->key), 1);
	assert_int_equal(open_small(&f->p, c), 0);
	assert_int_equal(seal_key_seal_count(f->key), 1); /* opening is free */
	free(c);
	assert_false(seal_key_needs_rotation(f->key));
	seal_key_set_seal_count(f->key, SEAL_ROTATE_SEALS);
	assert_true(seal_key_needs_rotation(f->key));
	seal_key_set_seal_count(f->key, SEAL_MAX_SEALS - 1);
	c = seal_small(&f->p, "last one");
	free(c);
	c = NULL;
	assert_int_equal(seal_segment(&f->p, 1, 1, "x", 1, &c, &n), SEAL_E_KEY_EXHAUSTED);
	assert_null(c);
	assert_int_equal(seal_segment(&f->p, 1, 1, "x", 1, &c, &n), SEAL_E_KEY_EXHAUSTED);
	f->p.protection = SEAL_INTEGRITY;
	assert_int_equal(seal_segment(&f->p, 1, 1, "x", 1, &c, &n), SEAL_E_KEY_EXHAUSTED);
	assert_int_equal(seal_key_seal_count(f->key), SEAL_MAX_SEALS);
}

static void *sealer(void *arg)
{
	struct fx *f = arg;

	for (int i = 0; i < 500; i++) {
		char *c = NULL;
		size_t n;

		if (seal_segment(&f->p, 0, 0, "t", 1, &c, &n) < 0)
			return (void *)1;
		free(c);
	}
	return NULL;
}

static void test_seal_counter_threads(void **state)
{
	struct fx *f = *state;
	pthread_t t[4];
	void *rv;

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sealer, f), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_int_equal(seal_key_seal_count(f->key), 2000);
}

static void test_limits(void **state)
{
	struct fx *f = *state;
	struct seal_manifest m = {.version = 1, .segment_size = SEAL_SEGMENT_SIZE_MIN - 1};
	struct seal_params q = f->p;
	char *c = NULL, *longid;
	uint8_t *big;
	size_t n;

	assert_int_equal(seal_segment(&f->p, SEAL_MAX_NUMBER + 1, 0, "x", 1, &c, &n), -ERANGE);
	assert_int_equal(seal_segment(&f->p, 0, SEAL_MAX_NUMBER + 1, "x", 1, &c, &n), -ERANGE);
	big = calloc(1, SEAL_SEGMENT_SIZE_MAX + 1);
	assert_int_equal(seal_segment(&f->p, 0, 0, big, SEAL_SEGMENT_SIZE_MAX + 1, &c, &n),
			 -EMSGSIZE);
	free(big);
	assert_int_equal(seal_manifest_seal(&f->p, &m, &c, &n), -EINVAL);
	m.segment_size = SEAL_SEGMENT_SIZE_MAX + 1;
	assert_int_equal(seal_manifest_seal(&f->p, &m, &c, &n), -EINVAL);
	m.segment_size = SEAL_SEGMENT_SIZE_MAX;
	m.length = 1; /* but no segment listed */
	assert_int_equal(seal_manifest_seal(&f->p, &m, &c, &n), -EINVAL);
	longid = malloc(SEAL_ID_MAX + 2);
	memset(longid, 'a', SEAL_ID_MAX + 1);
	longid[SEAL_ID_MAX + 1] = '\0';
	q.kid = longid;
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), -EMSGSIZE);
	q.kid = "\xff\xfe not UTF-8";
	assert_int_equal(seal_segment(&q, 0, 0, "x", 1, &c, &n), -EINVAL);
	assert_null(c);

	/* the longest ids, each byte escaped in the JSON header, still open */
	memset(longid, 0x01, SEAL_ID_MAX);
	longid[SEAL_ID_MAX] = '\0';
	q.kid = q.file_id = longid;
	assert_int_equal(seal_segment(&q, SEAL_MAX_NUMBER, SEAL_MAX_NUMBER, "x", 1, &c, &n), 0);
	assert_true(n < seal_compact_max_len(&q, 1));
	uint8_t out[4];
	assert_int_equal(seal_open_segment(&q, SEAL_MAX_NUMBER, SEAL_MAX_NUMBER, c, n, out, 4, &n),
			 0);
	free(c);
	free(longid);
}

static void test_enobufs(void **state)
{
	struct fx *f = *state;
	char *c = seal_small(&f->p, "0123456789");
	uint8_t out[9];
	size_t n = 0;

	memset(out, 0x5a, sizeof(out));
	assert_int_equal(seal_open_segment(&f->p, 1, 1, c, strlen(c), out, sizeof(out), &n),
			 -ENOBUFS);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x5a);
	free(c);
}

static void test_enc_names(void **state)
{
	(void)state;
	assert_string_equal(seal_enc_to_string(SEAL_ENC_A256GCM), "A256GCM");
	assert_string_equal(seal_enc_to_string(SEAL_ENC_XC20P), "XC20P");
	assert_null(seal_enc_to_string(SEAL_ENC_AUTO));
}

static void test_error_codes_distinct(void **state)
{
	const int codes[] = {SEAL_E_MALFORMED, SEAL_E_AUTH,
			     SEAL_E_KID,       SEAL_E_OTHER_FILE,
			     SEAL_E_REORDERED, SEAL_E_GENERATION,
			     SEAL_E_TRUNCATED, SEAL_E_ROLLBACK,
			     SEAL_E_KIND,      SEAL_E_KEY_EXHAUSTED,
			     -EINVAL,	       -ENOMEM,
			     -ENOBUFS,	       -ERANGE,
			     -EMSGSIZE,	       -ENOTSUP,
			     -ENOENT};

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(codes[i] < 0);
		for (size_t j = i + 1; j < sizeof(codes) / sizeof(codes[0]); j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_roundtrip_a256gcm),
	    T(test_roundtrip_xc20p),
	    T(test_roundtrip_jws),
	    T(test_jwe_header_members),
	    T(test_enc_auto),
	    T(test_jws_header_members),
	    T(test_empty_null_plaintext),
	    T(test_fresh_iv),
	    T(test_any_segment_alone),
	    T(test_tamper_header),
	    T(test_tamper_iv),
	    T(test_tamper_ciphertext),
	    T(test_tamper_tag),
	    T(test_tamper_jws_payload),
	    T(test_tamper_jws_signature),
	    T(test_tamper_jws_header),
	    T(test_every_bit_flip_jwe),
	    T(test_every_bit_flip_jws),
	    T(test_wrong_key),
	    T(test_reordered),
	    T(test_reordered_stream),
	    T(test_truncated_stream),
	    T(test_truncated_segment),
	    T(test_other_file),
	    T(test_other_generation),
	    T(test_kid_mismatch),
	    T(test_kind_mismatch),
	    T(test_rollback),
	    T(test_manifest_times),
	    T(test_manifest_tamper_and_bindings),
	    T(test_malformed_structure),
	    T(test_malformed_headers),
	    T(test_protection_mismatch),
	    T(test_manifest_malformed_body),
	    T(test_manifest_seals),
	    T(test_open_esdata_foreign),
	    T(test_peek_kid),
	    T(test_key_new),
	    T(test_key_lengths),
	    T(test_seal_counter),
	    T(test_seal_counter_threads),
	    T(test_limits),
	    T(test_enobufs),
	    T(test_enc_names),
	    T(test_error_codes_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
