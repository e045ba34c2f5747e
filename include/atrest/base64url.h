/* SPDX-License-Identifier: Apache-2.0 */
/* base64url without padding (RFC 4648 5, RFC 7515 2): fast encoder, strict decoder. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode len bytes (no NUL). */
size_t base64url_encoded_len(size_t len);
/* Encodes len bytes of src into dst (base64url_encoded_len(len) bytes, no
 * NUL written). dst may overlap the END of src as seal_segment() uses it:
 * dst <= src is allowed when dst + encoded_len == src + len (in-place
 * expansion from a tail-aligned input). Returns the characters written. */
size_t base64url_encode(char *dst, const void *src, size_t len);
/* Strict decode: no padding, no whitespace, only [A-Za-z0-9_-], length
 * mod 4 != 1, unused trailing bits zero. Writes at most len*3/4 bytes.
 * dst may equal src (decoding in place). Returns the bytes written or
 * -EPROTO (SEAL_E_MALFORMED). */
int64_t base64url_decode(void *dst, const char *src, size_t len);
