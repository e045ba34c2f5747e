/* SPDX-License-Identifier: Apache-2.0 */
/* Sealing as oneM2M ESData (TS-0003 8.5): JWE dir, JWS HS256, segments and manifests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

/*
 * Every sealed object is a compact JOSE string (TS-0003 8.5.3, RFC 7516 /
 * RFC 7515 compact serialization) that any JOSE library can open given the
 * key. docs/FORMAT.md is the exact specification; this header is the API.
 *
 * Error codes. Every function returns 0 (or a documented count) on success
 * and a negative errno on failure. Opening distinguishes each way a sealed
 * object can be wrong with its own code (atrestfs maps them all to EIO):
 */
#define SEAL_E_MALFORMED (-EPROTO)     /* not well-formed compact JOSE / header / manifest */
#define SEAL_E_AUTH (-EBADMSG)	       /* tag or HMAC wrong: a bit flipped anywhere, wrong key */
#define SEAL_E_KID (-EKEYREJECTED)     /* "kid" differs from the expected Credential-Id */
#define SEAL_E_OTHER_FILE (-EXDEV)     /* authentic, but sealed for another file id */
#define SEAL_E_REORDERED (-EILSEQ)     /* authentic, but sealed at another segment index */
#define SEAL_E_GENERATION (-EIDRM)     /* authentic, but from another generation (version) */
#define SEAL_E_TRUNCATED (-ENODATA)    /* segment missing, or length differs from the manifest */
#define SEAL_E_ROLLBACK (-ESTALE)      /* manifest version older than the caller expects */
#define SEAL_E_KIND (-EMEDIUMTYPE)     /* a manifest where a segment was expected, or vice versa */
#define SEAL_E_KEY_EXHAUSTED (-EDQUOT) /* the key has made SEAL_MAX_SEALS seals: rotate it */
/* Other codes: -EINVAL (bad argument, e.g. a 16-byte key for JWE), -ENOMEM,
 * -ENOBUFS (out buffer too small), -ERANGE (number beyond SEAL_MAX_NUMBER),
 * -EMSGSIZE (input beyond the documented limits), -ENOTSUP (no AEAD usable). */

/* Limits (docs/FORMAT.md "Limits"). */
#define SEAL_SEGMENT_SIZE_MIN (4u * 1024u)
#define SEAL_SEGMENT_SIZE_MAX (16u * 1024u * 1024u)
#define SEAL_SEGMENT_SIZE_DEFAULT (1024u * 1024u)
/* Index, generation, version, lengths: integers exact in every JSON
 * parser (RFC 7493 2.2, I-JSON), so JavaScript readers see the same value. */
#define SEAL_MAX_NUMBER ((UINT64_C(1) << 53) - 1)
/* Seals per key. Random 96-bit IVs: NIST SP 800-38D 8.3 allows 2^32
 * invocations per key; we stop at 2^31 to keep a wide margin. */
#define SEAL_MAX_SEALS (UINT64_C(1) << 31)
/* seal_key_needs_rotation() turns true from here: rotate before it fails. */
#define SEAL_ROTATE_SEALS (UINT64_C(1) << 30)
/* Segments one manifest may list (1 TiB files at 1 MiB segments). */
#define SEAL_MANIFEST_SEGMENTS_MAX (UINT64_C(1) << 20)
/* Largest compact string any open function accepts: a 16 MiB segment and
 * the largest manifest fit. */
#define SEAL_COMPACT_MAX (64u * 1024u * 1024u)
/* Largest kid / file id accepted (bytes, UTF-8). */
#define SEAL_ID_MAX 1024u

/* ---- keys ---------------------------------------------------------------- */

/* A symmetric key (16..64 bytes) in sodium_malloc()ed memory plus its seal
 * counter. JWE (A256GCM, XC20P) needs exactly 32 bytes; HS256 needs at least
 * 32 (RFC 7518 3.2); other lengths exist only to be carried (e.g. to tefd).
 * Thread-safe: one key may seal from several threads (the counter is atomic). */
struct seal_key;

/* Copies len bytes into a new secure key; the caller wipes its own copy.
 * -EINVAL unless 16 <= len <= 64; -ENOMEM. *ret owned by the caller. */
int seal_key_new(const void *bytes, size_t len, struct seal_key **ret);
/* A new random key of len bytes (randombytes_buf). Same errors. */
int seal_key_generate(size_t len, struct seal_key **ret);
/* Wipes and frees; NULL-safe; returns NULL. */
struct seal_key *seal_key_free(struct seal_key *k);
/* The key bytes (owned by k, valid until seal_key_free) and their length,
 * e.g. to register the key with tefd. Never log them. */
const uint8_t *seal_key_bytes(const struct seal_key *k);
size_t seal_key_len(const struct seal_key *k);
/* Seals made with this key so far (opening does not count). */
uint64_t seal_key_seal_count(const struct seal_key *k);
/* Restores the counter of a key reloaded from storage (e.g. tefd), so the
 * 2^31 rule holds across restarts: callers persist the count or an upper
 * bound of it (e.g. the number of objects sealed under the key). */
void seal_key_set_seal_count(struct seal_key *k, uint64_t count);
/* True once count >= SEAL_ROTATE_SEALS: register a new key for the file
 * and re-seal it under the new kid (docs/FORMAT.md "Key rotation"). */
bool seal_key_needs_rotation(const struct seal_key *k);

/* ---- parameters ------------------------------------------------------------ */

enum seal_protection {
	SEAL_CONFIDENTIALITY, /* JWE compact, "alg":"dir" (TS-0003 8.5.2.2) */
	SEAL_INTEGRITY,	      /* JWS compact, "alg":"HS256" (TS-0003 8.5.2.3) */
};

enum seal_enc {
	SEAL_ENC_AUTO,	  /* A256GCM when the CPU has it in libsodium, else XC20P */
	SEAL_ENC_A256GCM, /* AES-256-GCM, 96-bit IV; -ENOTSUP on CPUs without AES-NI */
	SEAL_ENC_XC20P,	  /* XChaCha20-Poly1305 IETF, 192-bit IV */
};

/* What the caller expects of every object it seals or opens. All pointers
 * are borrowed for the duration of the call. */
struct seal_params {
	const struct seal_key *key;
	/* Credential-Id (TS-0003 10.3.5): sealed as "kid", and on open must
	 * equal the header's kid (NULL: none sealed / not checked). */
	const char *kid;
	/* Binds segments and manifest to one file: any UTF-8, <= SEAL_ID_MAX
	 * bytes; required for segments and manifests, unused by esdata. */
	const char *file_id;
	enum seal_protection protection;
	enum seal_enc enc; /* sealing only; opening accepts both A256GCM and XC20P */
};

/* The enc SEAL_ENC_AUTO resolves to on this machine (never SEAL_ENC_AUTO). */
enum seal_enc seal_enc_default(void);
/* "A256GCM", "XC20P" (or NULL for SEAL_ENC_AUTO / unknown). Static string. */
const char *seal_enc_to_string(enum seal_enc enc);

/* ---- segments ----------------------------------------------------------- */

/* Upper bound of the compact length seal_segment() produces for len bytes
 * of plaintext with these params (kid and file_id included); 0 on overflow. */
size_t seal_compact_max_len(const struct seal_params *p, size_t len);

/*
 * Seals one segment: the protected header carries kid and the private
 * header parameter "atrest" = {"v":1,"t":"seg","fid":file_id,"idx":index,
 * "gen":generation} (docs/FORMAT.md). A fresh random IV every call.
 * len may be 0 and at most SEAL_SEGMENT_SIZE_MAX. On success *ret_compact is
 * a malloc()ed NUL-terminated string of *ret_len bytes (caller frees).
 * Errors: -EINVAL, -ERANGE, -EMSGSIZE, -ENOMEM, -ENOTSUP, SEAL_E_KEY_EXHAUSTED.
 */
int seal_segment(const struct seal_params *p, uint64_t index, uint64_t generation,
		 const void *plain, size_t len, char **ret_compact, size_t *ret_len);

/*
 * Opens one segment sealed by seal_segment(), independently of any other.
 * Order of checks: form (SEAL_E_MALFORMED), protection/alg matches p
 * (SEAL_E_MALFORMED), kid == p->kid (SEAL_E_KID), tag/HMAC (SEAL_E_AUTH),
 * then the authenticated binding: kind (SEAL_E_KIND), file id
 * (SEAL_E_OTHER_FILE), index (SEAL_E_REORDERED), generation
 * (SEAL_E_GENERATION). Only then is the plaintext copied to out (cap bytes
 * available; -ENOBUFS if too small) and its length stored in *ret_len.
 * On any failure out and *ret_len are untouched.
 */
int seal_open_segment(const struct seal_params *p, uint64_t index, uint64_t generation,
		      const char *compact, size_t len, void *out, size_t cap, size_t *ret_len);

/* ---- manifests --------------------------------------------------------------- */

/* One segment as the manifest lists it. */
struct seal_segment_ref {
	uint64_t index;	     /* == its position in the list: 0, 1, 2, ... */
	uint64_t generation; /* version of the file in which it was last sealed */
	uint32_t length;     /* plaintext bytes: segment_size except for the last */
};

/*
 * A committed version of a file. Invariants checked by seal_manifest_seal()
 * (-EINVAL) and seal_manifest_open() (SEAL_E_MALFORMED): segment_size within
 * the limits; n_segments == ceil(length / segment_size); segments[i].index
 * == i; every length == segment_size except the last, which is 1..
 * segment_size; generation <= version; every number <= SEAL_MAX_NUMBER.
 */
struct seal_manifest {
	uint64_t version;      /* monotonic per file; the rollback check compares it */
	uint64_t length;       /* file length in bytes */
	uint32_t segment_size; /* SEAL_SEGMENT_SIZE_MIN..SEAL_SEGMENT_SIZE_MAX */
	/* authenticated metadata (atrestfs compares it with the plain labels) */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_ns; /* ns since the epoch (any int64; JSON [sec, nsec]) */
	int64_t ctime_ns;
	/* Seals made under the key that sealed this manifest, this manifest
	 * included (an upper bound, 1..SEAL_MAX_NUMBER), so a reader that
	 * rebuilds its state from the manifest alone keeps counting toward
	 * SEAL_MAX_SEALS (docs/FORMAT.md section 9). 0: unknown, the member is
	 * absent (written before it existed); sealing omits it then. */
	uint64_t seals;
	size_t n_segments;
	struct seal_segment_ref *segments; /* n_segments entries */
};

/* A zeroed manifest with room for n segments (segments allocated, indices
 * set to 0..n-1). *ret owned by the caller: seal_manifest_free(). */
int seal_manifest_new(size_t n_segments, struct seal_manifest **ret);
/* Frees m and its segments array (only for manifests from this library).
 * NULL-safe; returns NULL. */
struct seal_manifest *seal_manifest_free(struct seal_manifest *m);

/*
 * Seals m (JSON, docs/FORMAT.md "Manifest") as one JWE/JWS with the header
 * member "atrest" = {"v":1,"t":"man","fid":file_id,"ver":version}.
 * *ret_compact malloc()ed, NUL-terminated, caller frees. Errors as
 * seal_segment(), -EINVAL if m breaks an invariant.
 */
int seal_manifest_seal(const struct seal_params *p, const struct seal_manifest *m,
		       char **ret_compact, size_t *ret_len);

/*
 * Verifies and parses a sealed manifest: checks as seal_open_segment()
 * (kind, file id), then the JSON and the invariants, then rollback:
 * version < min_version is SEAL_E_ROLLBACK. *ret owned by the caller.
 */
int seal_manifest_open(const struct seal_params *p, const char *compact, size_t len,
		       uint64_t min_version, struct seal_manifest **ret);

/*
 * Opens segment `index` of the version m describes: seal_open_segment()
 * with m's generation for that index, then checks the plaintext length
 * against the manifest (SEAL_E_TRUNCATED). An index beyond the manifest's
 * list is SEAL_E_REORDERED.
 */
int seal_open_segment_in(const struct seal_params *p, const struct seal_manifest *m, uint64_t index,
			 const char *compact, size_t len, void *out, size_t cap, size_t *ret_len);

/* ---- streaming: a whole file, one segment in memory at a time ----------- */

/* Receives each sealed segment in order; compact is only valid during the
 * call. A negative return aborts the stream with that code. */
typedef int (*seal_sink_fn)(void *userdata, uint64_t index, const char *compact, size_t len);
/* Produces the sealed segment `index` as a malloc()ed string the library
 * frees; returns -ENOENT if the segment does not exist (that is reported as
 * SEAL_E_TRUNCATED), another negative errno to abort. */
typedef int (*seal_source_fn)(void *userdata, uint64_t index, char **ret_compact, size_t *ret_len);

/*
 * Reads fd to its end, sealing it segment by segment with generation
 * m->version and handing each to sink; then fills m->length, m->n_segments
 * and m->segments (replacing a NULL m->segments; the caller sets version,
 * segment_size and the metadata first). Memory: one segment of plaintext
 * and one compact string. The caller then seals m with seal_manifest_seal().
 */
int seal_stream_seal(const struct seal_params *p, int fd, struct seal_manifest *m,
		     seal_sink_fn sink, void *userdata);

/*
 * Fetches, opens (seal_open_segment_in) and writes to fd every segment that
 * m lists, in order. Each segment is verified before any of it is written;
 * on failure, what was written before is verified data but incomplete: the
 * caller discards it. A missing segment is SEAL_E_TRUNCATED.
 */
int seal_stream_open(const struct seal_params *p, const struct seal_manifest *m,
		     seal_source_fn source, void *userdata, int fd);

/* ---- standalone ESData (contentInstances sealed by any other AE) -------- */

/*
 * Opens a compact JWE ("dir" + A256GCM or XC20P) or JWS (HS256) made by
 * any JOSE implementation: the "atrest" member is neither needed nor
 * checked. If expected_kid is not NULL, "kid" must equal it (SEAL_E_KID).
 * *ret is a malloc()ed buffer of *ret_len bytes plus a NUL not counted
 * (caller frees). Errors as seal_open_segment().
 */
int seal_open_esdata(const struct seal_key *key, const char *expected_kid, const char *compact,
		     size_t len, char **ret, size_t *ret_len);
/* The same into the caller's buffer (cap bytes; len is always enough):
 * for plaintext that must stay in locked memory (secmem.h). Errors as
 * seal_open_segment(). */
int seal_open_esdata_in(const struct seal_key *key, const char *expected_kid, const char *compact,
			size_t len, void *out, size_t cap, size_t *ret_len);

/*
 * Reads "kid" from the protected header WITHOUT verifying anything, to know
 * which key to ask tefd for. *ret_kid malloc()ed (caller frees).
 * SEAL_E_MALFORMED if there is no string kid.
 */
int seal_peek_kid(const char *compact, size_t len, char **ret_kid);
