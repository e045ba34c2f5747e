/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing as oneM2M ESData (TS-0003 8.5): compact JWE/JWS, segments, manifests, streaming. */
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <jansson.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "atrest/base64url.h"
#include "atrest/cleanup.h"
#include "atrest/seal.h"
#include "atrest/secmem.h"
#include "atrest/secure_scratch.h"

#define GCM_IV_LEN crypto_aead_aes256gcm_NPUBBYTES		  /* 12 */
#define XC20P_IV_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define TAG_LEN 16u
#define HS256_LEN crypto_auth_hmacsha256_BYTES /* 32 */
#define JWE_KEY_LEN 32u
#define KEY_LEN_MIN 16u
#define KEY_LEN_MAX 64u /* == SECURE_SLOT_SIZE */
/* Encoded protected header: kid and fid of SEAL_ID_MAX bytes each, even
 * fully \u-escaped, fit. */
#define HEADER_B64_MAX (24u * 1024u)

struct seal_key {
	uint8_t *bytes; /* a secure_slot_get() slot (sodium_malloc memory) */
	size_t len;
	/* Counts seals; atomic and mutable through a const key, because sealing
	 * is logically read-only on the key and runs from many threads. */
	_Atomic uint64_t seals;
};

/* ---- keys ---------------------------------------------------------------- */

/* A key object with len bytes of secure memory, not yet filled. */
static int key_alloc(size_t len, struct seal_key **ret)
{
	struct seal_key *k;

	if (!ret || len < KEY_LEN_MIN || len > KEY_LEN_MAX)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOTSUP;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	/* a slot of a locked, guarded chunk: no mapping per key (secure_scratch.h) */
	k->bytes = secure_slot_get();
	if (!k->bytes) {
		free(k);
		return -ENOMEM;
	}
	k->len = len;
	atomic_init(&k->seals, 0);
	*ret = k;
	return 0;
}

int seal_key_new(const void *bytes, size_t len, struct seal_key **ret)
{
	int r;

	if (!bytes)
		return -EINVAL;
	if ((r = key_alloc(len, ret)) < 0)
		return r;
	memcpy((*ret)->bytes, bytes, len);
	return 0;
}

int seal_key_generate(size_t len, struct seal_key **ret)
{
	int r;

	/* Generated straight into secure memory: never a copy elsewhere. */
	if ((r = key_alloc(len, ret)) < 0)
		return r;
	randombytes_buf((*ret)->bytes, len);
	return 0;
}

struct seal_key *seal_key_free(struct seal_key *k)
{
	if (!k)
		return NULL;
	secure_slot_put(k->bytes); /* wiped there */
	free(k);
	return NULL;
}

const uint8_t *seal_key_bytes(const struct seal_key *k)
{
	return k ? k->bytes : NULL;
}

size_t seal_key_len(const struct seal_key *k)
{
	return k ? k->len : 0;
}

uint64_t seal_key_seal_count(const struct seal_key *k)
{
	return k ? atomic_load(&((struct seal_key *)k)->seals) : 0;
}

void seal_key_set_seal_count(struct seal_key *k, uint64_t count)
{
	if (k)
		atomic_store(&k->seals, count);
}

bool seal_key_needs_rotation(const struct seal_key *k)
{
	return seal_key_seal_count(k) >= SEAL_ROTATE_SEALS;
}

/* Takes one seal from the key's budget (docs/FORMAT.md "Key rotation"). */
static int key_take_seal(const struct seal_key *k)
{
	uint64_t n = atomic_fetch_add(&((struct seal_key *)k)->seals, 1);

	if (n >= SEAL_MAX_SEALS) {
		/* Keep the counter pinned so it can never wrap back into range. */
		atomic_store(&((struct seal_key *)k)->seals, SEAL_MAX_SEALS);
		return SEAL_E_KEY_EXHAUSTED;
	}
	return 0;
}

/* ---- algorithms -------------------------------------------------------------- */

enum seal_enc seal_enc_default(void)
{
	if (sodium_init() < 0)
		return SEAL_ENC_XC20P;
	return crypto_aead_aes256gcm_is_available() ? SEAL_ENC_A256GCM : SEAL_ENC_XC20P;
}

const char *seal_enc_to_string(enum seal_enc enc)
{
	switch (enc) {
	case SEAL_ENC_A256GCM:
		return "A256GCM";
	case SEAL_ENC_XC20P:
		return "XC20P";
	default:
		return NULL;
	}
}

static size_t enc_iv_len(enum seal_enc enc)
{
	return enc == SEAL_ENC_A256GCM ? GCM_IV_LEN : XC20P_IV_LEN;
}

/*
 * A256GCM through GnuTLS (already linked for TLS): its AES-NI/PCLMUL code
 * seals a 1 MiB segment about twice as fast as libsodium 1.0.18's, the
 * largest share of a sequential write's CPU time (issue 5's benchmark).
 * The same algorithm and output (RFC 7518 5.3; test_seal opens what this
 * seals with libsodium). The key is copied into GnuTLS's cipher context
 * for this one call and wiped with it at deinit, as libsodium's one-shot
 * call expands it into a stack state it wipes; the key itself stays in
 * its sodium_malloc slot. The ciphertext and the tag are written together
 * at c (mlen + TAG_LEN bytes: the caller leaves room), the tag copied out.
 * -ENOTSUP when GnuTLS cannot (a FIPS policy, say): libsodium does it then.
 */
static int gcm_encrypt_gnutls(uint8_t *c, uint8_t tag[TAG_LEN], const void *m, size_t mlen,
			      const char *aad, size_t aadlen, const uint8_t *iv, const uint8_t *key)
{
	gnutls_datum_t k = { (unsigned char *)key, JWE_KEY_LEN };
	gnutls_aead_cipher_hd_t h;
	size_t clen = mlen + TAG_LEN;
	int r;

	if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0)
		return -ENOTSUP;
	r = gnutls_aead_cipher_encrypt(h, iv, GCM_IV_LEN, aad, aadlen, TAG_LEN, m, mlen, c, &clen);
	gnutls_aead_cipher_deinit(h);
	if (r < 0 || clen != mlen + TAG_LEN)
		return -ENOTSUP;
	memcpy(tag, c + mlen, TAG_LEN);
	return 0;
}

/* The AEAD, detached, so the tag lands in its own JWE part (RFC 7516 7.1).
 * c has room for mlen + TAG_LEN bytes (gcm_encrypt_gnutls). */
static int aead_encrypt(enum seal_enc enc, uint8_t *c, uint8_t tag[TAG_LEN], const void *m,
			size_t mlen, const char *aad, size_t aadlen, const uint8_t *iv,
			const uint8_t *key)
{
	unsigned long long taglen;

	if (enc == SEAL_ENC_A256GCM && gcm_encrypt_gnutls(c, tag, m, mlen, aad, aadlen, iv, key) == 0)
		return 0;
	if (enc == SEAL_ENC_A256GCM)
		return crypto_aead_aes256gcm_encrypt_detached(c, tag, &taglen, m, mlen,
							      (const uint8_t *)aad, aadlen, NULL,
							      iv, key) == 0
			   ? 0
			   : -EIO;
	return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		   c, tag, &taglen, m, mlen, (const uint8_t *)aad, aadlen, NULL, iv, key) == 0
		   ? 0
		   : -EIO;
}

/*
 * A256GCM opening through GnuTLS (gcm_encrypt_gnutls says why), in place in
 * buf (locked memory). GnuTLS decrypts before it compares the tag: on a
 * wrong tag the bytes are wiped here before SEAL_E_AUTH returns, so no one
 * ever sees unverified plaintext (libsodium wipes its output alike).
 * -ENOTSUP, buf untouched, when GnuTLS cannot: libsodium opens it then.
 */
static int gcm_decrypt_gnutls(uint8_t *buf, size_t len, const uint8_t tag[TAG_LEN],
			      const char *aad, size_t aadlen, const uint8_t *iv, const uint8_t *key)
{
	gnutls_datum_t k = { (unsigned char *)key, JWE_KEY_LEN };
	giovec_t a = { (void *)aad, aadlen }, d = { buf, len };
	gnutls_aead_cipher_hd_t h;
	int r;

	if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0)
		return -ENOTSUP;
	r = gnutls_aead_cipher_decryptv2(h, iv, GCM_IV_LEN, &a, 1, &d, 1, (void *)tag, TAG_LEN);
	gnutls_aead_cipher_deinit(h);
	if (r < 0) {
		sodium_memzero(buf, len);
		return SEAL_E_AUTH;
	}
	return 0;
}

/* In place when m == c (the only use: open_compact). */
static int aead_decrypt(enum seal_enc enc, uint8_t *m, const uint8_t *c, size_t clen,
			const uint8_t tag[TAG_LEN], const char *aad, size_t aadlen,
			const uint8_t *iv, const uint8_t *key)
{
	int r;

	if (enc == SEAL_ENC_A256GCM && m == c) {
		r = gcm_decrypt_gnutls(m, clen, tag, aad, aadlen, iv, key);
		if (r != -ENOTSUP)
			return r;
	}
	if (enc == SEAL_ENC_A256GCM)
		r = crypto_aead_aes256gcm_decrypt_detached(m, NULL, c, clen, tag,
							   (const uint8_t *)aad, aadlen, iv, key);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    m, NULL, c, clen, tag, (const uint8_t *)aad, aadlen, iv, key);
	return r == 0 ? 0 : SEAL_E_AUTH;
}

/* HMAC-SHA-256 over the JWS signing input (RFC 7515 5.1 step 5, RFC 7518 3.2). */
static void hs256(uint8_t mac[HS256_LEN], const struct seal_key *k, const char *input, size_t len)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)input, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

/* ---- protected header ------------------------------------------------------ */

static bool is_number_ok(uint64_t v)
{
	return v <= SEAL_MAX_NUMBER;
}

static int id_check(const char *id)
{
	if (!id)
		return 0;
	if (strlen(id) > SEAL_ID_MAX)
		return -EMSGSIZE;
	return 0;
}

/* Builds the protected header JSON (compact, members in this order). */
static int header_build(const struct seal_params *p, enum seal_enc enc, json_t *atrest, char **ret)
{
	_cleanup_json_ json_t *h = json_object();
	char *s;

	if (!h)
		return -ENOMEM;
	if (p->protection == SEAL_CONFIDENTIALITY) {
		if (json_object_set_new(h, "alg", json_string("dir")) < 0 ||
		    json_object_set_new(h, "enc", json_string(seal_enc_to_string(enc))) < 0)
			return -ENOMEM;
	} else if (json_object_set_new(h, "alg", json_string("HS256")) < 0)
		return -ENOMEM;
	/* json_string() refuses invalid UTF-8: the header must be UTF-8 JSON. */
	if (p->kid && json_object_set_new(h, "kid", json_string(p->kid)) < 0)
		return -EINVAL;
	if (atrest && json_object_set(h, "atrest", atrest) < 0)
		return -ENOMEM;
	s = json_dumps(h, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* The "atrest" private header parameter (docs/FORMAT.md "Protected header"). */
static int atrest_member(const char *kind, const char *file_id, const char *num1_name,
			 uint64_t num1, const char *num2_name, uint64_t num2, json_t **ret)
{
	_cleanup_json_ json_t *a = NULL;
	json_t *fid;

	if (!file_id)
		return -EINVAL;
	fid = json_string(file_id);
	if (!fid)
		return -EINVAL;
	a = json_pack("{s:i,s:s,s:o}", "v", 1, "t", kind, "fid", fid);
	if (!a)
		return -ENOMEM;
	if (json_object_set_new(a, num1_name, json_integer((json_int_t)num1)) < 0)
		return -ENOMEM;
	if (num2_name && json_object_set_new(a, num2_name, json_integer((json_int_t)num2)) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(a);
	return 0;
}

/* ---- sealing --------------------------------------------------------------- */

static int params_check(const struct seal_params *p, enum seal_enc *ret_enc)
{
	int r;

	if (!p || !p->key)
		return -EINVAL;
	if ((r = id_check(p->kid)) < 0 || (r = id_check(p->file_id)) < 0)
		return r;
	if (p->protection == SEAL_CONFIDENTIALITY) {
		enum seal_enc enc = p->enc == SEAL_ENC_AUTO ? seal_enc_default() : p->enc;

		if (enc != SEAL_ENC_A256GCM && enc != SEAL_ENC_XC20P)
			return -EINVAL;
		/* "dir" with A256GCM or XC20P uses the key as the CEK: 256 bits
		 * (RFC 7518 5.3). */
		if (p->key->len != JWE_KEY_LEN)
			return -EINVAL;
		if (enc == SEAL_ENC_A256GCM && !crypto_aead_aes256gcm_is_available())
			return -ENOTSUP;
		*ret_enc = enc;
		return 0;
	}
	if (p->protection == SEAL_INTEGRITY) {
		/* RFC 7518 3.2: an HS256 key is at least 256 bits. */
		if (p->key->len < HS256_LEN)
			return -EINVAL;
		*ret_enc = SEAL_ENC_AUTO;
		return 0;
	}
	return -EINVAL;
}

size_t seal_compact_max_len(const struct seal_params *p, size_t len)
{
	/* header + 4 dots + IV + tag (JWE), or + HMAC (JWS), + NUL; the header
	 * bound assumes every id byte escaped as \u00XX. */
	size_t fixed = base64url_encoded_len(256 + 6 * 2 * SEAL_ID_MAX) + 5 +
		       base64url_encoded_len(XC20P_IV_LEN) + base64url_encoded_len(HS256_LEN) + 1;

	(void)p;
	if (len > SIZE_MAX / 2 - fixed)
		return 0;
	return fixed + base64url_encoded_len(len);
}

/* Appends s (n bytes) at *pos. */
static void put(char *out, size_t *pos, const void *s, size_t n)
{
	memcpy(out + *pos, s, n);
	*pos += n;
}

static void put_b64(char *out, size_t *pos, const void *s, size_t n)
{
	*pos += base64url_encode(out + *pos, s, n);
}

/*
 * Seals plain under p with the given "atrest" member (or none). JWE: the
 * ciphertext is written tail-aligned into the region its encoding will
 * occupy and encoded in place, so sealing needs no buffer besides the result.
 */
static int seal_compact(const struct seal_params *p, json_t *atrest, const void *plain, size_t len,
			char **ret_compact, size_t *ret_len)
{
	_cleanup_free_ char *hdr = NULL;
	_cleanup_free_ char *out = NULL;
	enum seal_enc enc;
	size_t hlen, hb64, pos = 0, total;
	int r;

	if (!ret_compact || !ret_len || (!plain && len))
		return -EINVAL;
	/* Never hand NULL to the AEAD or the encoder, even for 0 bytes. */
	if (!plain)
		plain = "";
	if ((r = params_check(p, &enc)) < 0)
		return r;
	if (len > SEAL_COMPACT_MAX / 4 * 3)
		return -EMSGSIZE;
	if ((r = header_build(p, enc, atrest, &hdr)) < 0)
		return r;
	hlen = strlen(hdr);
	hb64 = base64url_encoded_len(hlen);

	if (p->protection == SEAL_CONFIDENTIALITY) {
		uint8_t iv[XC20P_IV_LEN], tag[TAG_LEN];
		size_t ivlen = enc_iv_len(enc), clen = base64url_encoded_len(len);
		uint8_t *c;

		total = hb64 + 2 + base64url_encoded_len(ivlen) + 1 + clen + 1 +
			base64url_encoded_len(TAG_LEN) + 1;
		out = malloc(total);
		if (!out)
			return -ENOMEM;
		if ((r = key_take_seal(p->key)) < 0)
			return r;
		put_b64(out, &pos, hdr, hlen);
		put(out, &pos, "..", 2); /* "dir": empty JWE Encrypted Key (RFC 7516 A.3 form) */
		/* RFC 7516 5.1 step 9: a fresh random IV for every seal. */
		randombytes_buf(iv, ivlen);
		put_b64(out, &pos, iv, ivlen);
		put(out, &pos, ".", 1);
		/* tail-aligned in the region its encoding takes; the tag part's
		 * room after it takes the AEAD's TAG_LEN bytes of tag */
		c = (uint8_t *)out + pos + clen - len;
		/* RFC 7516 5.1 step 14: AAD = ASCII(BASE64URL(UTF8(header))). */
		r = aead_encrypt(enc, c, tag, plain, len, out, hb64, iv, p->key->bytes);
		if (r < 0)
			return r;
		pos += base64url_encode(out + pos, c, len);
		put(out, &pos, ".", 1);
		put_b64(out, &pos, tag, TAG_LEN);
	} else {
		uint8_t mac[HS256_LEN];

		total = hb64 + 1 + base64url_encoded_len(len) + 1 +
			base64url_encoded_len(HS256_LEN) + 1;
		out = malloc(total);
		if (!out)
			return -ENOMEM;
		if ((r = key_take_seal(p->key)) < 0)
			return r;
		put_b64(out, &pos, hdr, hlen);
		put(out, &pos, ".", 1);
		put_b64(out, &pos, plain, len);
		/* RFC 7515 5.1: the MAC covers ASCII(header.payload). */
		hs256(mac, p->key, out, pos);
		put(out, &pos, ".", 1);
		put_b64(out, &pos, mac, HS256_LEN);
	}
	out[pos] = '\0';
	*ret_len = pos;
	*ret_compact = TAKE_PTR(out);
	return 0;
}

int seal_segment(const struct seal_params *p, uint64_t index, uint64_t generation,
		 const void *plain, size_t len, char **ret_compact, size_t *ret_len)
{
	_cleanup_json_ json_t *a = NULL;
	int r;

	if (!p)
		return -EINVAL;
	if (!is_number_ok(index) || !is_number_ok(generation))
		return -ERANGE;
	if (len > SEAL_SEGMENT_SIZE_MAX)
		return -EMSGSIZE;
	if ((r = atrest_member("seg", p->file_id, "idx", index, "gen", generation, &a)) < 0)
		return r;
	return seal_compact(p, a, plain, len, ret_compact, ret_len);
}

/* ---- opening ---------------------------------------------------------------- */

/* A verified object: header and plaintext (secmem_alloc()ed: never swapped,
 * NUL-terminated, wiped when freed). */
struct opened {
	json_t *header;
	uint8_t *plain;
	size_t len;
	size_t cap;
};

static void opened_done(struct opened *o)
{
	json_decref(o->header);
	secmem_free(o->plain, o->cap);
	*o = (struct opened){0};
}

/* The pieces of a compact serialization, split at the dots. */
struct parts {
	const char *p[5];
	size_t n[5];
	unsigned count;
};

static int split(const char *s, size_t len, struct parts *ret)
{
	struct parts pt = {0};
	const char *end = s + len, *cur = s;

	for (;;) {
		const char *dot = memchr(cur, '.', (size_t)(end - cur));

		if (pt.count == 5)
			return SEAL_E_MALFORMED;
		pt.p[pt.count] = cur;
		pt.n[pt.count] = (size_t)((dot ? dot : end) - cur);
		pt.count++;
		if (!dot)
			break;
		cur = dot + 1;
	}
	if (pt.count != 3 && pt.count != 5)
		return SEAL_E_MALFORMED;
	*ret = pt;
	return 0;
}

/* Decodes a part that must be exactly n bytes. */
static int decode_fixed(uint8_t *dst, const char *s, size_t slen, size_t n)
{
	if (slen != base64url_encoded_len(n))
		return SEAL_E_MALFORMED;
	return base64url_decode(dst, s, slen) == (int64_t)n ? 0 : SEAL_E_MALFORMED;
}

/* Decodes the ciphertext or payload part into a new buffer with room for a
 * trailing NUL; *ret_cap is what the buffer holds, for wiping. The buffer
 * is locked memory: the plaintext is decrypted in place there. */
static int decode_body(const char *s, size_t slen, uint8_t **ret_buf, size_t *ret_cap,
		       size_t *ret_len)
{
	size_t cap = slen / 4 * 3 + 3;
	uint8_t *buf = secmem_alloc(cap);
	int64_t n;

	if (!buf)
		return -ENOMEM;
	n = base64url_decode(buf, s, slen);
	if (n < 0) {
		secmem_free(buf, cap);
		return SEAL_E_MALFORMED;
	}
	*ret_buf = buf;
	*ret_cap = cap;
	*ret_len = (size_t)n;
	return 0;
}

/* Parses the protected header: a JSON object, UTF-8, no duplicate members
 * (RFC 7515 4: names must be unique; we reject rather than pick one). */
static int header_parse(const char *b64, size_t n, json_t **ret)
{
	_cleanup_free_ char *raw = NULL;
	json_t *h;
	int64_t m;

	if (n == 0 || n > HEADER_B64_MAX)
		return SEAL_E_MALFORMED;
	raw = malloc(n);
	if (!raw)
		return -ENOMEM;
	m = base64url_decode(raw, b64, n);
	if (m < 0)
		return SEAL_E_MALFORMED;
	h = json_loadb(raw, (size_t)m, JSON_REJECT_DUPLICATES, NULL);
	if (!h)
		return SEAL_E_MALFORMED;
	if (!json_is_object(h)) {
		json_decref(h);
		return SEAL_E_MALFORMED;
	}
	*ret = h;
	return 0;
}

static const char *member_string(json_t *h, const char *name)
{
	return json_string_value(json_object_get(h, name));
}

/* Reads a non-negative JSON integer within SEAL_MAX_NUMBER. */
static int member_u64(json_t *o, const char *name, uint64_t *ret)
{
	json_t *v = json_object_get(o, name);
	json_int_t i;

	if (!json_is_integer(v))
		return SEAL_E_MALFORMED;
	i = json_integer_value(v);
	if (i < 0 || !is_number_ok((uint64_t)i))
		return SEAL_E_MALFORMED;
	*ret = (uint64_t)i;
	return 0;
}

/*
 * Verifies a compact JWE/JWS and returns its header and plaintext. want is
 * the protection the caller requires, or -1 for either. kid is checked
 * before the tag, so an object under another Credential-Id is reported as
 * such rather than as tampering. Nothing is returned unless authentic.
 */
static int open_compact(const struct seal_key *key, int want, const char *kid, const char *compact,
			size_t len, struct opened *ret)
{
	_cleanup_json_ json_t *h = NULL;
	struct parts pt;
	const char *alg, *hkid;
	uint8_t *buf = NULL;
	size_t cap, n;
	int r;

	if (!key || !ret || (!compact && len))
		return -EINVAL;
	if (!compact || len > SEAL_COMPACT_MAX)
		return SEAL_E_MALFORMED;
	if ((r = split(compact, len, &pt)) < 0)
		return r;
	if ((r = header_parse(pt.p[0], pt.n[0], &h)) < 0)
		return r;

	/* RFC 7515 4.1.11 / RFC 7516 4.1.13: we implement no "crit" extension;
	 * "zip" (RFC 7516 4.1.3) is not supported. */
	if (json_object_get(h, "crit") || json_object_get(h, "zip"))
		return SEAL_E_MALFORMED;
	alg = member_string(h, "alg");
	if (!alg)
		return SEAL_E_MALFORMED;
	if (pt.count == 5) {
		if (strcmp(alg, "dir") != 0 || pt.n[1] != 0)
			return SEAL_E_MALFORMED;
		if (want >= 0 && want != SEAL_CONFIDENTIALITY)
			return SEAL_E_MALFORMED;
	} else {
		if (strcmp(alg, "HS256") != 0)
			return SEAL_E_MALFORMED;
		if (want >= 0 && want != SEAL_INTEGRITY)
			return SEAL_E_MALFORMED;
	}
	hkid = member_string(h, "kid");
	if (json_object_get(h, "kid") && !hkid)
		return SEAL_E_MALFORMED;
	if (kid && (!hkid || strcmp(hkid, kid) != 0))
		return SEAL_E_KID;

	if (pt.count == 5) {
		const char *encs = member_string(h, "enc");
		uint8_t iv[XC20P_IV_LEN], tag[TAG_LEN];
		enum seal_enc enc;
		size_t ivlen;

		if (!encs)
			return SEAL_E_MALFORMED;
		if (strcmp(encs, "A256GCM") == 0)
			enc = SEAL_ENC_A256GCM;
		else if (strcmp(encs, "XC20P") == 0)
			enc = SEAL_ENC_XC20P;
		else
			return SEAL_E_MALFORMED;
		ivlen = enc_iv_len(enc);
		if ((r = decode_fixed(iv, pt.p[2], pt.n[2], ivlen)) < 0 ||
		    (r = decode_fixed(tag, pt.p[4], pt.n[4], TAG_LEN)) < 0)
			return r;
		if (key->len != JWE_KEY_LEN)
			return -EINVAL;
		if (enc == SEAL_ENC_A256GCM && !crypto_aead_aes256gcm_is_available())
			return -ENOTSUP;
		if ((r = decode_body(pt.p[3], pt.n[3], &buf, &cap, &n)) < 0)
			return r;
		/* In place: the AEAD verifies the tag before it returns data. */
		r = aead_decrypt(enc, buf, buf, n, tag, pt.p[0], pt.n[0], iv, key->bytes);
	} else {
		uint8_t sig[HS256_LEN], mac[HS256_LEN];

		if (key->len < HS256_LEN)
			return -EINVAL;
		if ((r = decode_fixed(sig, pt.p[2], pt.n[2], HS256_LEN)) < 0)
			return r;
		if ((r = decode_body(pt.p[1], pt.n[1], &buf, &cap, &n)) < 0)
			return r;
		/* RFC 7515 5.2 step 8, in constant time. */
		hs256(mac, key, compact, pt.n[0] + 1 + pt.n[1]);
		r = sodium_memcmp(mac, sig, HS256_LEN) == 0 ? 0 : SEAL_E_AUTH;
	}
	if (r < 0) {
		secmem_free(buf, cap);
		return r;
	}
	buf[n] = '\0';
	*ret = (struct opened){.header = TAKE_PTR(h), .plain = buf, .len = n, .cap = cap};
	return 0;
}

/* Checks the authenticated "atrest" member against what the caller expects. */
static int binding_check(json_t *h, const char *kind, const char *file_id, json_t **ret_a)
{
	json_t *a = json_object_get(h, "atrest");
	const char *t, *fid;
	uint64_t v;

	if (!json_is_object(a) || member_u64(a, "v", &v) < 0 || v != 1)
		return SEAL_E_MALFORMED;
	t = member_string(a, "t");
	fid = member_string(a, "fid");
	if (!t || !fid)
		return SEAL_E_MALFORMED;
	if (strcmp(t, kind) != 0)
		return strcmp(t, "seg") == 0 || strcmp(t, "man") == 0 ? SEAL_E_KIND
								      : SEAL_E_MALFORMED;
	if (!file_id || strcmp(fid, file_id) != 0)
		return SEAL_E_OTHER_FILE;
	*ret_a = a;
	return 0;
}

/* Opens a segment into a verified struct opened, all bindings checked. */
static int segment_open(const struct seal_params *p, uint64_t index, uint64_t generation,
			const char *compact, size_t len, struct opened *ret)
{
	struct opened o = {0};
	uint64_t idx, gen;
	json_t *a;
	int r;

	if (!p || (p->protection != SEAL_CONFIDENTIALITY && p->protection != SEAL_INTEGRITY))
		return -EINVAL;
	r = open_compact(p->key, (int)p->protection, p->kid, compact, len, &o);
	if (r < 0)
		return r;
	if ((r = binding_check(o.header, "seg", p->file_id, &a)) < 0)
		goto fail;
	if ((r = member_u64(a, "idx", &idx)) < 0 || (r = member_u64(a, "gen", &gen)) < 0)
		goto fail;
	if (idx != index) {
		r = SEAL_E_REORDERED;
		goto fail;
	}
	if (gen != generation) {
		r = SEAL_E_GENERATION;
		goto fail;
	}
	*ret = o;
	return 0;
fail:
	opened_done(&o);
	return r;
}

/* Copies a verified plaintext to the caller's buffer and releases o. want
 * is the length the manifest lists (SIZE_MAX: any). */
static int opened_deliver(struct opened *o, size_t want, void *out, size_t cap, size_t *ret_len)
{
	int r = 0;

	if (want != SIZE_MAX && o->len != want)
		r = SEAL_E_TRUNCATED;
	else if (o->len > cap || (!out && o->len))
		r = -ENOBUFS;
	else {
		if (o->len)
			memcpy(out, o->plain, o->len);
		*ret_len = o->len;
	}
	opened_done(o);
	return r;
}

int seal_open_segment(const struct seal_params *p, uint64_t index, uint64_t generation,
		      const char *compact, size_t len, void *out, size_t cap, size_t *ret_len)
{
	struct opened o;
	int r;

	if (!ret_len)
		return -EINVAL;
	r = segment_open(p, index, generation, compact, len, &o);
	if (r < 0)
		return r;
	return opened_deliver(&o, SIZE_MAX, out, cap, ret_len);
}

int seal_open_esdata(const struct seal_key *key, const char *expected_kid, const char *compact,
		     size_t len, char **ret, size_t *ret_len)
{
	struct opened o;
	int r;

	if (!ret || !ret_len)
		return -EINVAL;
	r = open_compact(key, -1, expected_kid, compact, len, &o);
	if (r < 0)
		return r;
	*ret = malloc(o.len + 1);
	if (!*ret) {
		opened_done(&o);
		return -ENOMEM;
	}
	memcpy(*ret, o.plain, o.len + 1);
	*ret_len = o.len;
	opened_done(&o);
	return 0;
}

int seal_open_esdata_in(const struct seal_key *key, const char *expected_kid, const char *compact,
			size_t len, void *out, size_t cap, size_t *ret_len)
{
	struct opened o;
	int r;

	if (!ret_len)
		return -EINVAL;
	r = open_compact(key, -1, expected_kid, compact, len, &o);
	if (r < 0)
		return r;
	return opened_deliver(&o, SIZE_MAX, out, cap, ret_len);
}

int seal_peek_kid(const char *compact, size_t len, char **ret_kid)
{
	_cleanup_json_ json_t *h = NULL;
	const char *dot, *kid;
	char *s;
	int r;

	if (!ret_kid || (!compact && len))
		return -EINVAL;
	if (!compact || len > SEAL_COMPACT_MAX)
		return SEAL_E_MALFORMED;
	dot = memchr(compact, '.', len);
	if (!dot)
		return SEAL_E_MALFORMED;
	if ((r = header_parse(compact, (size_t)(dot - compact), &h)) < 0)
		return r;
	kid = member_string(h, "kid");
	if (!kid)
		return SEAL_E_MALFORMED;
	s = strdup(kid);
	if (!s)
		return -ENOMEM;
	*ret_kid = s;
	return 0;
}

/* ---- manifests --------------------------------------------------------------- */

int seal_manifest_new(size_t n_segments, struct seal_manifest **ret)
{
	struct seal_manifest *m;

	if (!ret || n_segments > SEAL_MANIFEST_SEGMENTS_MAX)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (n_segments) {
		m->segments = calloc(n_segments, sizeof(*m->segments));
		if (!m->segments) {
			free(m);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n_segments; i++)
		m->segments[i].index = i;
	m->n_segments = n_segments;
	*ret = m;
	return 0;
}

struct seal_manifest *seal_manifest_free(struct seal_manifest *m)
{
	if (m) {
		free(m->segments);
		free(m);
	}
	return NULL;
}

/* Times go into JSON as [seconds, nanoseconds] (floor division), so every
 * int64 ns value stays exact for I-JSON readers. */
static json_t *time_to_json(int64_t ns)
{
	int64_t sec = ns / 1000000000, nsec = ns % 1000000000;

	if (nsec < 0) {
		sec--;
		nsec += 1000000000;
	}
	return json_pack("[I,I]", (json_int_t)sec, (json_int_t)nsec);
}

/* The invariants seal.h lists for struct seal_manifest. */
static bool manifest_is_valid(const struct seal_manifest *m)
{
	uint64_t n;

	if (m->segment_size < SEAL_SEGMENT_SIZE_MIN || m->segment_size > SEAL_SEGMENT_SIZE_MAX)
		return false;
	if (!is_number_ok(m->version) || !is_number_ok(m->length) || !is_number_ok(m->seals))
		return false;
	n = m->length / m->segment_size + (m->length % m->segment_size ? 1 : 0);
	if (m->n_segments != n || n > SEAL_MANIFEST_SEGMENTS_MAX || (n && !m->segments))
		return false;
	for (size_t i = 0; i < m->n_segments; i++) {
		const struct seal_segment_ref *s = &m->segments[i];
		uint64_t want =
		    i + 1 < n ? m->segment_size : m->length - (uint64_t)i * m->segment_size;

		if (s->index != i || s->generation > m->version || s->length != want)
			return false;
	}
	return true;
}

/* The manifest plaintext (docs/FORMAT.md "Manifest"). */
static json_t *manifest_to_json(const struct seal_manifest *m)
{
	_cleanup_json_ json_t *segs = json_array();
	json_t *j;

	if (!segs)
		return NULL;
	for (size_t i = 0; i < m->n_segments; i++) {
		const struct seal_segment_ref *s = &m->segments[i];

		if (json_array_append_new(segs, json_pack("[I,I,I]", (json_int_t)s->index,
							  (json_int_t)s->generation,
							  (json_int_t)s->length)) < 0)
			return NULL;
	}
	j = json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:o*,s:o*,s:O}", "v", 1, "version",
		      (json_int_t)m->version, "length", (json_int_t)m->length, "segmentSize",
		      (json_int_t)m->segment_size, "mode", (json_int_t)m->mode, "uid",
		      (json_int_t)m->uid, "gid", (json_int_t)m->gid, "mtime",
		      time_to_json(m->mtime_ns), "ctime", time_to_json(m->ctime_ns), "segments",
		      segs);
	if (j && (!json_object_get(j, "mtime") || !json_object_get(j, "ctime")))
		j = (json_decref(j), NULL);
	if (j && m->seals && json_object_set_new(j, "seals", json_integer((json_int_t)m->seals)) < 0)
		j = (json_decref(j), NULL);
	return j;
}

int seal_manifest_seal(const struct seal_params *p, const struct seal_manifest *m,
		       char **ret_compact, size_t *ret_len)
{
	_cleanup_json_ json_t *a = NULL, *j = NULL;
	char *s;
	size_t n;
	int r;

	if (!p || !m)
		return -EINVAL;
	if (!manifest_is_valid(m))
		return -EINVAL;
	if ((r = atrest_member("man", p->file_id, "ver", m->version, NULL, 0, &a)) < 0)
		return r;
	j = manifest_to_json(m);
	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	r = seal_compact(p, a, s, n, ret_compact, ret_len);
	sodium_memzero(s, n);
	free(s);
	return r;
}

static int u32_member(json_t *o, const char *name, uint32_t *ret)
{
	uint64_t v;

	if (member_u64(o, name, &v) < 0 || v > UINT32_MAX)
		return SEAL_E_MALFORMED;
	*ret = (uint32_t)v;
	return 0;
}

static int time_member(json_t *o, const char *name, int64_t *ret)
{
	json_t *v = json_object_get(o, name), *s = json_array_get(v, 0), *n = json_array_get(v, 1);
	int64_t sec, nsec, t;

	if (json_array_size(v) != 2 || !json_is_integer(s) || !json_is_integer(n))
		return SEAL_E_MALFORMED;
	sec = json_integer_value(s);
	nsec = json_integer_value(n);
	if (nsec < 0 || nsec > 999999999)
		return SEAL_E_MALFORMED;
	/* Near INT64_MIN, sec * 10^9 alone overflows though the sum fits:
	 * borrow one second first. */
	if (sec < 0 && nsec > 0) {
		sec++;
		nsec -= 1000000000;
	}
	if (__builtin_mul_overflow(sec, 1000000000, &t) || __builtin_add_overflow(t, nsec, &t))
		return SEAL_E_MALFORMED;
	*ret = t;
	return 0;
}

static int manifest_from_json(const char *text, size_t len, struct seal_manifest **ret)
{
	_cleanup_json_ json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	struct seal_manifest *m = NULL;
	json_t *segs;
	uint64_t v, version, length;
	size_t n;
	int r;

	if (!json_is_object(j) || member_u64(j, "v", &v) < 0 || v != 1)
		return SEAL_E_MALFORMED;
	segs = json_object_get(j, "segments");
	if (!json_is_array(segs))
		return SEAL_E_MALFORMED;
	n = json_array_size(segs);
	if (member_u64(j, "version", &version) < 0 || member_u64(j, "length", &length) < 0)
		return SEAL_E_MALFORMED;
	if ((r = seal_manifest_new(n, &m)) < 0)
		return r == -EINVAL ? SEAL_E_MALFORMED : r;
	m->version = version;
	m->length = length;
	if (u32_member(j, "segmentSize", &m->segment_size) < 0 ||
	    u32_member(j, "mode", &m->mode) < 0 || u32_member(j, "uid", &m->uid) < 0 ||
	    u32_member(j, "gid", &m->gid) < 0 || time_member(j, "mtime", &m->mtime_ns) < 0 ||
	    time_member(j, "ctime", &m->ctime_ns) < 0)
		goto malformed;
	/* optional: absent in manifests written before it existed (0: unknown);
	 * present, it counts this manifest at least */
	if (json_object_get(j, "seals") &&
	    (member_u64(j, "seals", &m->seals) < 0 || m->seals == 0))
		goto malformed;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(segs, i);
		json_int_t x[3];

		if (!json_is_array(e) || json_array_size(e) != 3)
			goto malformed;
		for (size_t k = 0; k < 3; k++) {
			json_t *x_k = json_array_get(e, k);

			if (!json_is_integer(x_k) || json_integer_value(x_k) < 0 ||
			    !is_number_ok((uint64_t)json_integer_value(x_k)))
				goto malformed;
			x[k] = json_integer_value(x_k);
		}
		if (x[2] > (json_int_t)UINT32_MAX)
			goto malformed;
		m->segments[i] =
		    (struct seal_segment_ref){(uint64_t)x[0], (uint64_t)x[1], (uint32_t)x[2]};
	}
	if (!manifest_is_valid(m))
		goto malformed;
	*ret = m;
	return 0;
malformed:
	seal_manifest_free(m);
	return SEAL_E_MALFORMED;
}

int seal_manifest_open(const struct seal_params *p, const char *compact, size_t len,
		       uint64_t min_version, struct seal_manifest **ret)
{
	struct opened o = {0};
	struct seal_manifest *m = NULL;
	uint64_t ver;
	json_t *a;
	int r;

	if (!p || !ret ||
	    (p->protection != SEAL_CONFIDENTIALITY && p->protection != SEAL_INTEGRITY))
		return -EINVAL;
	r = open_compact(p->key, (int)p->protection, p->kid, compact, len, &o);
	if (r < 0)
		return r;
	if ((r = binding_check(o.header, "man", p->file_id, &a)) < 0 ||
	    (r = member_u64(a, "ver", &ver)) < 0)
		goto out;
	if ((r = manifest_from_json((const char *)o.plain, o.len, &m)) < 0)
		goto out;
	/* The header's copy of the version must agree with the body's. */
	if (m->version != ver) {
		r = SEAL_E_MALFORMED;
		goto out;
	}
	/* DESIGN.md 4: a manifest older than the version recorded at tefd is
	 * a rollback by whoever stored it. */
	if (m->version < min_version) {
		r = SEAL_E_ROLLBACK;
		goto out;
	}
	*ret = TAKE_PTR(m);
	r = 0;
out:
	seal_manifest_free(m);
	opened_done(&o);
	return r;
}

int seal_open_segment_in(const struct seal_params *p, const struct seal_manifest *m, uint64_t index,
			 const char *compact, size_t len, void *out, size_t cap, size_t *ret_len)
{
	struct opened o;
	int r;

	if (!m || !ret_len)
		return -EINVAL;
	if (index >= m->n_segments)
		return SEAL_E_REORDERED;
	r = segment_open(p, index, m->segments[index].generation, compact, len, &o);
	if (r < 0)
		return r;
	return opened_deliver(&o, m->segments[index].length, out, cap, ret_len);
}

/* ---- streaming ----------------------------------------------------------------- */

/* Reads until buf is full or EOF; returns the bytes read or -errno. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A plaintext segment buffer, wiped before it is freed. */
static void plain_free(uint8_t *buf, size_t len)
{
	if (buf) {
		sodium_memzero(buf, len);
		free(buf);
	}
}

int seal_stream_seal(const struct seal_params *p, int fd, struct seal_manifest *m,
		     seal_sink_fn sink, void *userdata)
{
	struct seal_segment_ref *segs = NULL;
	size_t n = 0, alloc = 0, seg;
	uint64_t length = 0;
	uint8_t *buf;
	int r = 0;

	if (!p || !m || !sink || m->segments || fd < 0)
		return -EINVAL;
	seg = m->segment_size;
	if (seg < SEAL_SEGMENT_SIZE_MIN || seg > SEAL_SEGMENT_SIZE_MAX || !is_number_ok(m->version))
		return -EINVAL;
	buf = malloc(seg);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		_cleanup_free_ char *c = NULL;
		size_t clen;
		ssize_t got = read_full(fd, buf, seg);

		if (got < 0) {
			r = (int)got;
			break;
		}
		if (got == 0)
			break;
		if (n == SEAL_MANIFEST_SEGMENTS_MAX) {
			r = -EFBIG;
			break;
		}
		if (n == alloc) {
			size_t na = alloc ? alloc * 2 : 16;
			struct seal_segment_ref *t = reallocarray(segs, na, sizeof(*segs));

			if (!t) {
				r = -ENOMEM;
				break;
			}
			segs = t;
			alloc = na;
		}
		r = seal_segment(p, n, m->version, buf, (size_t)got, &c, &clen);
		if (r < 0)
			break;
		r = sink(userdata, n, c, clen);
		if (r < 0)
			break;
		segs[n] = (struct seal_segment_ref){n, m->version, (uint32_t)got};
		n++;
		length += (uint64_t)got;
		if ((size_t)got < seg)
			break;
	}
	plain_free(buf, seg);
	if (r < 0) {
		free(segs);
		return r;
	}
	m->segments = segs;
	m->n_segments = n;
	m->length = length;
	return 0;
}

int seal_stream_open(const struct seal_params *p, const struct seal_manifest *m,
		     seal_source_fn source, void *userdata, int fd)
{
	uint8_t *buf;
	int r = 0;

	if (!p || !m || !source || fd < 0 || !manifest_is_valid(m))
		return -EINVAL;
	buf = malloc(m->segment_size);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_segments; i++) {
		_cleanup_free_ char *c = NULL;
		size_t clen = 0, got;

		r = source(userdata, i, &c, &clen);
		if (r == -ENOENT) {
			r = SEAL_E_TRUNCATED;
			break;
		}
		if (r < 0)
			break;
		r = seal_open_segment_in(p, m, i, c, clen, buf, m->segment_size, &got);
		if (r < 0)
			break;
		r = write_full(fd, buf, got);
		if (r < 0)
			break;
	}
	plain_free(buf, m->segment_size);
	return r;
}
