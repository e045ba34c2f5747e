/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the JWE/JWS, protected header and manifest parsers of lib/seal.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "atrest/base64url.h"
#include "atrest/seal.h"

/*
 * The first input byte picks what the rest is:
 *   0  a compact string, given to every open function and to seal_peek_kid;
 *   1  a protected header (JSON text): sealed here as an XC20P JWE under
 *      the fixed key, so the header and binding checks past the tag run;
 *   2  a manifest body (JSON text): sealed with a valid manifest header, so
 *      the manifest parser and its invariants run;
 *   3  base64url text: decoded, and if accepted, must re-encode identically
 *      (the decoder accepts canonical encodings only).
 */
#define KID "fuzz@tef.example"
#define FID "fuzz-file"
#define MAN_HEADER                                                                                 \
	"{\"alg\":\"dir\",\"enc\":\"XC20P\",\"kid\":\"" KID                                        \
	"\",\"atrest\":{\"v\":1,\"t\":\"man\","                                                    \
	"\"fid\":\"" FID "\",\"ver\":1}}"

static struct seal_key *key;

static void init(void)
{
	uint8_t raw[32];

	if (key)
		return;
	for (unsigned i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i + 1);
	if (sodium_init() < 0 || seal_key_new(raw, sizeof(raw), &key) < 0)
		abort();
}

static void open_all(const char *c, size_t len)
{
	struct seal_params p = {
	    .key = key, .kid = KID, .file_id = FID, .protection = SEAL_CONFIDENTIALITY};
	struct seal_manifest *m = NULL;
	static uint8_t out[4096];
	char *s = NULL;
	size_t n;

	if (seal_peek_kid(c, len, &s) == 0)
		free(s);
	s = NULL;
	if (seal_open_esdata(key, NULL, c, len, &s, &n) == 0)
		free(s);
	for (int prot = 0; prot < 2; prot++) {
		p.protection = prot ? SEAL_INTEGRITY : SEAL_CONFIDENTIALITY;
		(void)seal_open_segment(&p, 1, 1, c, len, out, sizeof(out), &n);
		if (seal_manifest_open(&p, c, len, 0, &m) == 0) {
			uint8_t *seg = malloc(m->segment_size);

			/* a parsed manifest must satisfy what consumers index by */
			if (!seg || (m->n_segments &&
				     m->segments[m->n_segments - 1].index != m->n_segments - 1))
				abort();
			(void)seal_open_segment_in(&p, m, 0, c, len, seg, m->segment_size, &n);
			free(seg);
			/* what parsed seals again and reads back the same, the optional
			 * seal count included (0, absent, stays absent) */
			struct seal_manifest *again = NULL;
			char *s2 = NULL;
			size_t n2;
			if (seal_manifest_seal(&p, m, &s2, &n2) != 0 ||
			    seal_manifest_open(&p, s2, n2, 0, &again) != 0 ||
			    again->seals != m->seals || again->length != m->length ||
			    again->version != m->version)
				abort();
			free(s2);
			seal_manifest_free(again);
			m = seal_manifest_free(m);
		}
	}
}

/* A JWE over plain with the given header text, XC20P, a fixed IV. */
static char *jwe(const char *hdr, size_t hlen, const uint8_t *plain, size_t len, size_t *ret_len)
{
	size_t h64 = base64url_encoded_len(hlen);
	size_t total = h64 + 2 + 32 + 1 + base64url_encoded_len(len) + 1 + 22 + 1;
	uint8_t iv[24] = {0}, tag[16], *ct = malloc(len + 1);
	char *out = malloc(total);
	size_t pos;

	if (!ct || !out)
		abort();
	pos = base64url_encode(out, hdr, hlen);
	memcpy(out + pos, "..", 2);
	pos += 2;
	pos += base64url_encode(out + pos, iv, sizeof(iv));
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
	    ct, tag, NULL, plain, len, (const uint8_t *)out, h64, NULL, iv, seal_key_bytes(key));
	out[pos++] = '.';
	pos += base64url_encode(out + pos, ct, len);
	out[pos++] = '.';
	pos += base64url_encode(out + pos, tag, sizeof(tag));
	out[pos] = '\0';
	free(ct);
	*ret_len = pos;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data + 1;
	size_t n = size ? size - 1 : 0, clen;
	char *c;

	init();
	if (size == 0)
		return 0;
	switch (data[0]) {
	case 0:
		open_all((const char *)rest, n);
		break;
	case 1:
		c = jwe((const char *)rest, n, (const uint8_t *)"plain", 5, &clen);
		open_all(c, clen);
		free(c);
		break;
	case 2:
		c = jwe(MAN_HEADER, strlen(MAN_HEADER), rest, n, &clen);
		open_all(c, clen);
		free(c);
		break;
	case 3: {
		uint8_t *dec = malloc(n + 1);
		char *enc = malloc(n + 4);
		int64_t m;

		if (!dec || !enc)
			abort();
		m = base64url_decode(dec, (const char *)rest, n);
		if (m >= 0 && (base64url_encode(enc, dec, (size_t)m) != n || memcmp(enc, rest, n)))
			abort();
		free(dec);
		free(enc);
		break;
	}
	default:
		break;
	}
	return 0;
}
