/* SPDX-License-Identifier: Apache-2.0 */
/* atrest-get: a standalone Client AE that reads atrest data through hcsed and tefd (the
 * contribution's steps 11-19). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "atrest-config.h"
#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/layout.h"
#include "atrest/seal.h"
#include "atrest/tef_client.h"

/* Exit codes (man/atrest-get.1, EXIT STATUS): one per way a read can fail,
 * so scripts tell a denial from tampering without parsing messages. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,	      /* anything else: out of memory, cannot write the output */
	EXIT_USAGE = 2,	      /* bad command line */
	EXIT_HCSE_DENIED = 3, /* the HCSE refused the originator (4103, 4106) */
	EXIT_NOT_FOUND = 4,   /* no such resource, or not an atrest file / ESData */
	EXIT_TEF_DENIED = 5,  /* the TEF did not release the key (denied or unknown) */
	EXIT_EXPIRED = 6,     /* the key's registration has expired */
	EXIT_VERIFY = 7,      /* verification failed: tampered, truncated, reordered, rolled back */
	EXIT_UNREACHABLE = 8, /* the HCSE or the TEF could not be reached (or refused TLS) */
};

#define ROOT_INO 1

struct options {
	const char *hcse_url;
	const char *origin;
	const char *tef;
	const char *cert, *key, *ca;
	const char *tef_cert, *tef_key, *tef_ca;
	const char *output;
	const char *path;
	unsigned timeout_ms;
	bool list;
	bool verbose;
};

static struct options opt = {
    .hcse_url = "http://127.0.0.1:8080/cse-in",
    .origin = "Catrest-get",
    .tef = "/run/atrest/tef.sock",
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct hcse_client *, hcse_client_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tef_client *, tef_client_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tef_registration *, tef_registration_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct seal_key *, seal_key_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct seal_manifest *, seal_manifest_free)

static void usage(FILE *f)
{
	fputs("usage: atrest-get [-v] [-H URL] [-O ORIGIN] [-T SOCKET|URL]\n"
	      "                  [--cert FILE --key FILE --ca FILE]\n"
	      "                  [--tef-cert FILE --tef-key FILE --tef-ca FILE]\n"
	      "                  [-t MS] [-o FILE] PATH\n"
	      "       atrest-get [-v] [-H URL] [-O ORIGIN] [--cert FILE --key FILE --ca FILE]\n"
	      "                  [-t MS] --list PATH\n"
	      "  -H, --hcse URL      CSEBase URL (default http://127.0.0.1:8080/cse-in)\n"
	      "  -O, --origin ID     X-M2M-Origin, the AE-ID (default Catrest-get)\n"
	      "  -T, --tef EP        tefd: Unix socket path or https://HOST:PORT\n"
	      "                      (default /run/atrest/tef.sock)\n"
	      "      --cert/--key/--ca FILE   TLS client certificate, key, CA\n"
	      "      --tef-cert/--tef-key/--tef-ca FILE   for tefd, if not the same\n"
	      "  -t, --timeout MS    per HCSE request (default 10000)\n"
	      "  -o, --output FILE   write the plaintext there (default stdout)\n"
	      "  -l, --list          list the directory container PATH\n"
	      "  -v, --verbose       report each step of the contribution on stderr\n"
	      "  -h, --help          this text;  --version  the version\n"
	      "exit: 0 ok, 1 error, 2 usage, 3 HCSE denied, 4 not found, 5 TEF denied,\n"
	      "      6 key expired, 7 verification failed, 8 unreachable\n",
	      f);
}

/* User-facing messages go to stderr as "atrest-get: ..." (a command, not a daemon log). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("atrest-get: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* One line per step of the contribution (/work/shared/contribution), with -v. */
static void step(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(int n, const char *fmt, ...)
{
	va_list ap;

	if (!opt.verbose)
		return;
	fprintf(stderr, "step %d: ", n);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- errors to exit codes, translated once per peer ---------------------- */

static int fail_hcse(int r, int rsc, const char *what, const char *path)
{
	if (hcse_is_unreachable(r)) {
		say("HCSE %s unreachable while retrieving '%s': %s", opt.hcse_url, path,
		    strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (r == -EACCES) {
		say("HCSE denied %s '%s' to originator '%s' (RSC %d)", what, path, opt.origin, rsc);
		return EXIT_HCSE_DENIED;
	}
	if (r == -ENOENT) {
		say("no resource '%s' on the HCSE (RSC %d)", path, rsc);
		return EXIT_NOT_FOUND;
	}
	if (r == -ENOMEM)
		return say("out of memory"), EXIT_ERROR;
	say("HCSE error on %s '%s': %s (RSC %d)", what, path, strerror(-r), rsc);
	return EXIT_ERROR;
}

static bool tef_is_unreachable(int r)
{
	return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -ENETUNREACH ||
	       r == -ECONNRESET || r == -ENOENT;
}

static int fail_tef(int r, int rsc, const char *kid)
{
	if (tef_is_unreachable(r)) {
		say("TEF %s unreachable%s: %s", opt.tef,
		    opt.tef[0] == '/' ? "" : ", or it refused the TLS handshake", strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (r == -EKEYEXPIRED) {
		say("the key registration '%s' has expired", kid);
		return EXIT_EXPIRED;
	}
	if (r == -EACCES || r == -EPERM || r == -EAGAIN) {
		/* 4004 and 4103 look the same by design (DESIGN.md 2) */
		say("TEF denied the key '%s' to '%s'%s (RSC %d)", kid,
		    opt.tef[0] == '/' ? "this uid" : "this certificate",
		    r == -EAGAIN ? ": too many failed retrievals, retry later" : "", rsc);
		return EXIT_TEF_DENIED;
	}
	if (r == -ENOMEM)
		return say("out of memory"), EXIT_ERROR;
	say("TEF error for key '%s': %s (RSC %d)", kid, strerror(-r), rsc);
	return EXIT_ERROR;
}

static const char *seal_reason(int r)
{
	switch (r) {
	case SEAL_E_MALFORMED:
		return "malformed object";
	case SEAL_E_AUTH:
		return "authentication tag mismatch (modified, or another key)";
	case SEAL_E_KID:
		return "kid differs from the expected Credential-Id";
	case SEAL_E_OTHER_FILE:
		return "object belongs to another file";
	case SEAL_E_REORDERED:
		return "segment at the wrong index (reordered)";
	case SEAL_E_GENERATION:
		return "segment of another version of the file";
	case SEAL_E_TRUNCATED:
		return "segment missing or of the wrong length (truncated)";
	case SEAL_E_ROLLBACK:
		return "manifest older than the version the TEF recorded (rolled back)";
	case SEAL_E_KIND:
		return "a manifest where a segment was expected, or the reverse";
	default:
		return strerror(-r);
	}
}

/* True for the codes opening a sealed object returns when it does not verify. */
static bool is_seal_error(int r)
{
	return r == SEAL_E_MALFORMED || r == SEAL_E_AUTH || r == SEAL_E_KID ||
	       r == SEAL_E_OTHER_FILE || r == SEAL_E_REORDERED || r == SEAL_E_GENERATION ||
	       r == SEAL_E_TRUNCATED || r == SEAL_E_ROLLBACK || r == SEAL_E_KIND ||
	       r == -EMSGSIZE || r == -ERANGE || r == -ENOBUFS;
}

static int fail_seal(int r, const char *what, const char *path)
{
	if (r == -ENOMEM)
		return say("out of memory"), EXIT_ERROR;
	say("verification of %s '%s' failed: %s", what, path, seal_reason(r));
	return EXIT_VERIFY;
}

/* ---- paths and labels -------------------------------------------------- */

/* "/cse-in/ae/cnt", "cse-in/ae/cnt" and "ae/cnt" all name ae/cnt under a base
 * ending in /cse-in: hcse_client wants the path without the CSEBase. */
static const char *relative_path(const char *path)
{
	const char *base_rn = strrchr(opt.hcse_url, '/');
	size_t n;

	while (*path == '/')
		path++;
	if (!base_rn || !base_rn[1])
		return path;
	base_rn++;
	n = strlen(base_rn);
	if (strncmp(path, base_rn, n) == 0 && (path[n] == '/' || path[n] == '\0'))
		path += n;
	while (*path == '/')
		path++;
	return path;
}

/* The value of label "atrest:<key>=..." (or the presence of "atrest:<key>"). */
static const char *label(json_t *res, const char *key)
{
	size_t kl = strlen(key), i;
	json_t *v;

	json_array_foreach (json_object_get(res, "lbl"), i, v) {
		const char *s = json_string_value(v);

		if (!s || strncmp(s, ATREST_LABEL_PREFIX, strlen(ATREST_LABEL_PREFIX)) != 0)
			continue;
		s += strlen(ATREST_LABEL_PREFIX);
		if (strncmp(s, key, kl) == 0 && s[kl] == '=')
			return s + kl + 1;
		if (strcmp(s, key) == 0)
			return s + kl;
	}
	return NULL;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* atrestfs percent-encodes names that oneM2M labels cannot carry. */
static char *name_decode(const char *enc)
{
	char *out = malloc(strlen(enc) + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *p = enc; *p; p++) {
		unsigned v;

		if (*p == '%' && sscanf(p + 1, "%2x", &v) == 1 && v != 0) {
			*o++ = (char)v;
			p += 2;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Compact JWE has five parts (RFC 7516 7.1), compact JWS three (RFC 7515 7.1). */
static bool is_jwe(const char *compact)
{
	size_t dots = 0;

	for (const char *c = compact; *c; c++)
		dots += *c == '.';
	return dots == 4;
}

/* ---- the TEF: steps 15-18 ------------------------------------------------ */

static int tef_connect(struct tef_client **ret)
{
	int r;

	if (strncmp(opt.tef, "https://", 8) == 0) {
		const char *cert = opt.tef_cert ?: opt.cert, *key = opt.tef_key ?: opt.key;
		const char *ca = opt.tef_ca ?: opt.ca;

		r = tef_client_new_tls(opt.tef, cert, key, ca, ret);
		step(15, "secure channel with the TEF %s: mutual TLS as '%s'", opt.tef,
		     cert ? cert : "(no certificate)");
	} else {
		r = tef_client_new_unix(opt.tef, ret);
		step(15, "secure channel with the TEF: Unix socket %s (SO_PEERCRED uid %u)",
		     opt.tef, (unsigned)getuid());
	}
	if (r < 0)
		say("cannot set up a TEF client for %s: %s", opt.tef, strerror(-r));
	return r < 0 ? EXIT_ERROR : 0;
}

/* Asks the TEF for the key named by kid; *ret_min_version gets the version it recorded. */
static int fetch_key(const char *kid, struct seal_key **ret, uint64_t *ret_min_version)
{
	_cleanup_(tef_client_freep) struct tef_client *tef = NULL;
	_cleanup_(tef_registration_freep) struct tef_registration *reg = NULL;
	int rc, rsc = 0, r;

	rc = tef_connect(&tef);
	if (rc)
		return rc;
	step(16, "requesting the credential for Credential-Id '%s' from the TEF", kid);
	r = tef_retrieve(tef, NULL, kid, &reg, &rsc);
	if (r < 0) {
		step(17, "the TEF refused: %s (RSC %d)", strerror(-r), rsc);
		return fail_tef(r, rsc, kid);
	}
	step(17, "the TEF authorised this client for '%s' (RSC %d)", kid, rsc);
	if (!reg->key || reg->key_len == 0) {
		say("the TEF answered without a key for '%s'", kid);
		return EXIT_TEF_DENIED;
	}
	r = seal_key_new(reg->key, reg->key_len, ret);
	if (r < 0)
		return say("cannot hold the key: %s", strerror(-r)), EXIT_ERROR;
	step(18,
	     "received the credential over the secure channel (%zu-byte key, SUID %d, "
	     "expires %" PRId64 ", recorded version %" PRIu64 ")",
	     reg->key_len, reg->suid, reg->expiration, reg->version);
	*ret_min_version = reg->version;
	return 0;
}

/* ---- the output --------------------------------------------------------- */

struct output {
	int fd;
	char *tmp; /* -o FILE: written here, renamed over FILE once verified */
};

static int output_open(struct output *o)
{
	_cleanup_free_ char *copy = NULL;

	*o = (struct output){.fd = STDOUT_FILENO};
	if (!opt.output || strcmp(opt.output, "-") == 0)
		return 0;
	copy = strdup(opt.output);
	if (!copy || asprintf(&o->tmp, "%s/.%s.atrest-get.XXXXXX", dirname(copy),
			      basename((char *)opt.output)) < 0) {
		o->tmp = NULL;
		return say("out of memory"), EXIT_ERROR;
	}
	o->fd = mkostemp(o->tmp, O_CLOEXEC); /* 0600: it is plaintext */
	if (o->fd < 0) {
		say("cannot create '%s': %m", o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		return EXIT_ERROR;
	}
	return 0;
}

/* Keeps the output only when everything verified; a partial file is removed. */
static int output_close(struct output *o, int rc)
{
	if (!o->tmp)
		return rc;
	if (rc == 0 && fsync(o->fd) < 0)
		rc = (say("cannot write '%s': %m", o->tmp), EXIT_ERROR);
	if (close(o->fd) < 0 && rc == 0)
		rc = (say("cannot write '%s': %m", o->tmp), EXIT_ERROR);
	if (rc == 0 && rename(o->tmp, opt.output) < 0)
		rc = (say("cannot rename to '%s': %m", opt.output), EXIT_ERROR);
	if (rc != 0)
		unlink(o->tmp);
	free(o->tmp);
	return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- a single ESData contentInstance ------------------------------------ */

static int get_esdata(const char *path, json_t *cin)
{
	_cleanup_(seal_key_freep) struct seal_key *key = NULL;
	_cleanup_free_ char *kid = NULL, *plain = NULL;
	json_t *jcon = json_object_get(cin, "con");
	const char *con = json_string_value(jcon),
		   *cnf = json_string_value(json_object_get(cin, "cnf"));
	size_t len = json_string_length(jcon), plain_len = 0;
	struct output out;
	uint64_t min_version;
	int r, rc;

	if (!con) {
		say("'%s' is a contentInstance without content", path);
		return EXIT_NOT_FOUND;
	}
	/* TS-0004 6.3.5.x contentInfo: "<media type>:<encoding>:<contentSecurity>" */
	r = seal_peek_kid(con, len, &kid);
	if (r < 0) {
		say("'%s' is not ESData (cnf \"%s\"): no compact JOSE with a kid", path,
		    cnf ? cnf : "");
		return EXIT_VERIFY;
	}
	step(14,
	     "received the protected data of '%s' (%zu bytes, cnf \"%s\") with Credential-Id "
	     "'%s'",
	     path, len, cnf ? cnf : "", kid);
	rc = fetch_key(kid, &key, &min_version);
	if (rc)
		return rc;
	r = seal_open_esdata(key, kid, con, len, &plain, &plain_len);
	if (r < 0)
		return fail_seal(r, "ESData", path);
	step(19, "verified%s '%s': %zu bytes of plaintext",
	     is_jwe(con) ? " and decrypted" : " (integrity only)", path, plain_len);
	rc = output_open(&out);
	if (rc)
		return rc;
	r = write_all(out.fd, plain, plain_len);
	sodium_memzero(plain, plain_len);
	if (r < 0)
		rc = (say("cannot write the output: %s", strerror(-r)), EXIT_ERROR);
	return output_close(&out, rc);
}

/* ---- an atrestfs file: manifest + segments, streamed ------------------- */

struct source {
	struct hcse_client *hcse;
	const char *path;
	const struct seal_manifest *m;
	int error, rsc; /* the HCSE's, when a fetch failed for another reason than absence */
	char failed[64];
};

static int fetch_segment(void *userdata, uint64_t index, char **ret_compact, size_t *ret_len)
{
	struct source *s = userdata;
	_cleanup_free_ char *p = NULL;
	char rn[64];
	int r;

	if (index >= s->m->n_segments)
		return -ENOENT;
	snprintf(rn, sizeof(rn), ATREST_SEGMENT_RN_FMT, index, s->m->segments[index].generation);
	if (asprintf(&p, "%s/%s", s->path, rn) < 0)
		return -ENOMEM;
	r = hcse_retrieve_cin(s->hcse, p, ret_compact, ret_len, NULL, &s->rsc);
	if (r < 0 && r != -ENOENT) {
		s->error = r;
		snprintf(s->failed, sizeof(s->failed), "%s", rn);
	}
	return r;
}

/* The newest manifest contentInstance ("m<version>") of a file container. */
static int newest_manifest(struct hcse_client *hcse, const char *path, uint64_t *ret_version)
{
	char **names = NULL;
	size_t n = 0;
	uint64_t best = 0, v;
	bool found = false;
	int rsc = 0, r;

	r = hcse_list_children(hcse, path, 4, &names, &n, &rsc);
	if (r < 0)
		return fail_hcse(r, rsc, "discovery under", path);
	for (size_t i = 0; i < n; i++)
		if (names[i][0] == 'm' && parse_u64(names[i] + 1, &v) && (!found || v > best)) {
			best = v;
			found = true;
		}
	hcse_names_free(names, n);
	if (!found) {
		say("file container '%s' holds no manifest (not uploaded yet?)", path);
		return EXIT_NOT_FOUND;
	}
	*ret_version = best;
	return 0;
}

static int get_file(struct hcse_client *hcse, const char *path, json_t *cnt)
{
	_cleanup_(seal_key_freep) struct seal_key *key = NULL;
	_cleanup_(seal_manifest_freep) struct seal_manifest *m = NULL;
	_cleanup_free_ char *mpath = NULL, *compact = NULL, *kid = NULL;
	const char *fid = label(cnt, "fid");
	struct source src = {.hcse = hcse, .path = path};
	struct seal_params p = {0};
	uint64_t version = 0, min_version = 0;
	struct output out;
	size_t len = 0;
	int r, rsc = 0, rc;

	if (!fid || !*fid) {
		say("'%s' is labelled an atrest file but has no file id label", path);
		return EXIT_VERIFY;
	}
	rc = newest_manifest(hcse, path, &version);
	if (rc)
		return rc;
	if (asprintf(&mpath, "%s/" ATREST_MANIFEST_RN_FMT, path, version) < 0)
		return say("out of memory"), EXIT_ERROR;
	r = hcse_retrieve_cin(hcse, mpath, &compact, &len, NULL, &rsc);
	if (r < 0)
		return fail_hcse(r, rsc, "retrieval of", mpath);
	/* the kid is read unverified, only to know which key to ask for; the
	 * manifest is then opened expecting exactly this kid */
	r = seal_peek_kid(compact, len, &kid);
	if (r < 0)
		return fail_seal(r, "manifest", mpath);
	step(14,
	     "received the protected manifest '%s' (version %" PRIu64 ") with Credential-Id '%s'",
	     mpath, version, kid);

	rc = fetch_key(kid, &key, &min_version);
	if (rc)
		return rc;
	p = (struct seal_params){
	    .key = key,
	    .kid = kid,
	    .file_id = fid,
	    /* the compact form says which: 5 parts JWE, 3 parts JWS; opening
	     * checks the header's alg agrees */
	    .protection = is_jwe(compact) ? SEAL_CONFIDENTIALITY : SEAL_INTEGRITY,
	};
	/* DESIGN.md 4: the version recorded at the TEF defeats an HCSE that
	 * serves an older manifest */
	r = seal_manifest_open(&p, compact, len, min_version, &m);
	if (r < 0)
		return fail_seal(r, "manifest", mpath);
	step(19,
	     "manifest verified: version %" PRIu64 " (TEF recorded %" PRIu64 "), %" PRIu64
	     " bytes in %zu segment(s) of %" PRIu32 ", mode %o uid %" PRIu32 " gid %" PRIu32,
	     m->version, min_version, m->length, m->n_segments, m->segment_size, m->mode, m->uid,
	     m->gid);

	rc = output_open(&out);
	if (rc)
		return rc;
	src.m = m;
	r = seal_stream_open(&p, m, fetch_segment, &src, out.fd);
	if (r < 0 && src.error) {
		_cleanup_free_ char *sp = NULL;

		if (asprintf(&sp, "%s/%s", path, src.failed) < 0)
			sp = NULL;
		rc = fail_hcse(src.error, src.rsc, "retrieval of", sp ? sp : path);
	} else if (is_seal_error(r))
		rc = fail_seal(r, "file", path);
	else if (r < 0)
		rc = r == -ENOMEM ? (say("out of memory"), EXIT_ERROR)
				  : (say("cannot write the output: %s", strerror(-r)), EXIT_ERROR);
	else
		step(19, "every segment verified%s in order: %" PRIu64 " bytes written to %s",
		     p.protection == SEAL_CONFIDENTIALITY ? " and decrypted" : "", m->length,
		     opt.output ? opt.output : "stdout");
	return output_close(&out, rc);
}

/* ---- --list --------------------------------------------------------------- */

/* Prints "<kind>\t<size>\t<resource path>\t<name>" for one child resource. */
static int list_entry(struct hcse_client *hcse, const char *parent_path, const char *rn,
		      bool atrest_dir, uint64_t dir_ino)
{
	_cleanup_json_ json_t *res = NULL;
	_cleanup_free_ char *path = NULL, *name = NULL;
	const char *kind, *enc;
	uint64_t parent = 0, size = 0;
	int ty = 0, rsc = 0, r;

	if (asprintf(&path, "%s/%s", parent_path, rn) < 0)
		return -ENOMEM;
	r = hcse_retrieve(hcse, path, &res, &ty, &rsc);
	if (r == -EACCES || r == -ENOENT)
		return 0; /* not ours to see, or gone meanwhile */
	if (r < 0)
		return fail_hcse(r, rsc, "retrieval of", path), r;
	if (label(res, "file") || label(res, "dir") || label(res, "symlink")) {
		/* atrestfs keeps its tree flat under the AE: a node's parent is a label */
		if (!atrest_dir || !parse_u64(label(res, "parent"), &parent) || parent != dir_ino)
			return 0;
		kind = label(res, "file") ? "file" : label(res, "dir") ? "dir" : "symlink";
		parse_u64(label(res, "size"), &size);
		enc = label(res, "name");
		name = name_decode(enc ? enc : rn);
	} else if (!atrest_dir || ty == 4) {
		kind = ty == 4 ? "esdata" : ty == 3 ? "container" : "resource";
		if (ty == 4)
			size = (uint64_t)json_integer_value(json_object_get(res, "cs"));
		name = strdup(rn);
	} else
		return 0;
	if (!name)
		return -ENOMEM;
	printf("%s\t%" PRIu64 "\t%s\t%s\n", kind, size, path, name);
	return 0;
}

static int list_dir(struct hcse_client *hcse, const char *path, json_t *res, int ty)
{
	_cleanup_free_ char *parent_path = NULL;
	const char *slash;
	uint64_t ino = ROOT_INO;
	bool atrest_dir = false;
	int rc = 0;

	if (ty == 2) {
		/* an AE: atrestfs's root directory lives directly under it */
		atrest_dir = true;
		parent_path = strdup(path);
	} else if (ty == 3 && label(res, "dir") && parse_u64(label(res, "ino"), &ino)) {
		atrest_dir = true;
		slash = strrchr(path, '/');
		parent_path = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
	} else if (ty == 3 && label(res, "file")) {
		say("'%s' is a file, not a directory", path);
		return EXIT_USAGE;
	} else if (ty == 3 || ty == 5)
		parent_path = strdup(path);
	else {
		say("'%s' is not a directory, an AE or a container", path);
		return EXIT_NOT_FOUND;
	}
	if (!parent_path)
		return say("out of memory"), EXIT_ERROR;
	/* an atrestfs directory: its entries are the AE's containers naming it
	 * as parent; anything else: the resource's own children */
	for (int child_ty = 3; child_ty <= 4; child_ty++) {
		const char *lp = atrest_dir ? parent_path : path;
		char **names = NULL;
		size_t n = 0;
		int r, rsc = 0;

		if (atrest_dir && child_ty == 4)
			break;
		r = hcse_list_children(hcse, lp, child_ty, &names, &n, &rsc);
		if (r < 0)
			return fail_hcse(r, rsc, "discovery under", lp);
		for (size_t i = 0; i < n && rc == 0; i++) {
			r = list_entry(hcse, lp, names[i], atrest_dir, ino);
			if (r == -ENOMEM)
				rc = (say("out of memory"), EXIT_ERROR);
			else if (r < 0)
				rc = EXIT_ERROR;
		}
		hcse_names_free(names, n);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = (say("cannot write the listing: %m"), EXIT_ERROR);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int parse_args(int argc, char **argv)
{
	enum {
		OPT_CERT = 0x100,
		OPT_KEY,
		OPT_CA,
		OPT_TEF_CERT,
		OPT_TEF_KEY,
		OPT_TEF_CA,
		OPT_VERSION
	};
	static const struct option longopts[] = {
	    {"hcse", required_argument, NULL, 'H'},
	    {"origin", required_argument, NULL, 'O'},
	    {"tef", required_argument, NULL, 'T'},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"tef-cert", required_argument, NULL, OPT_TEF_CERT},
	    {"tef-key", required_argument, NULL, OPT_TEF_KEY},
	    {"tef-ca", required_argument, NULL, OPT_TEF_CA},
	    {"timeout", required_argument, NULL, 't'},
	    {"output", required_argument, NULL, 'o'},
	    {"list", no_argument, NULL, 'l'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {0},
	};
	uint64_t t;
	int c;

	while ((c = getopt_long(argc, argv, "H:O:T:t:o:lvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			opt.hcse_url = optarg;
			break;
		case 'O':
			opt.origin = optarg;
			break;
		case 'T':
			opt.tef = optarg;
			break;
		case OPT_CERT:
			opt.cert = optarg;
			break;
		case OPT_KEY:
			opt.key = optarg;
			break;
		case OPT_CA:
			opt.ca = optarg;
			break;
		case OPT_TEF_CERT:
			opt.tef_cert = optarg;
			break;
		case OPT_TEF_KEY:
			opt.tef_key = optarg;
			break;
		case OPT_TEF_CA:
			opt.tef_ca = optarg;
			break;
		case 't':
			if (!parse_u64(optarg, &t) || t == 0 || t > 3600000) {
				say("bad timeout '%s' (milliseconds, 1..3600000)", optarg);
				return EXIT_USAGE;
			}
			opt.timeout_ms = (unsigned)t;
			break;
		case 'o':
			opt.output = optarg;
			break;
		case 'l':
			opt.list = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case OPT_VERSION:
			printf("atrest-get %s\n", ATREST_VERSION);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		say(optind == argc ? "missing PATH" : "too many arguments");
		usage(stderr);
		return EXIT_USAGE;
	}
	opt.path = argv[optind];
	if (strncmp(opt.hcse_url, "http://", 7) != 0 && strncmp(opt.hcse_url, "https://", 8) != 0) {
		say("the HCSE URL must start with http:// or https://");
		return EXIT_USAGE;
	}
	if (strncmp(opt.tef, "http://", 7) == 0) {
		say("tefd's TCP listener speaks TLS only: use https://HOST:PORT or a socket path");
		return EXIT_USAGE;
	}
	if (strncmp(opt.tef, "https://", 8) == 0 && !opt.list &&
	    (!(opt.tef_cert ?: opt.cert) || !(opt.tef_ca ?: opt.ca))) {
		say("tefd over TLS needs a client certificate and a CA: --cert/--key/--ca "
		    "(or --tef-cert/--tef-key/--tef-ca)");
		return EXIT_USAGE;
	}
	if (!!opt.cert != !!opt.key || !!opt.tef_cert != !!opt.tef_key) {
		say("--cert and --key (and --tef-cert and --tef-key) go together");
		return EXIT_USAGE;
	}
	if (opt.list && opt.output) {
		say("--list writes to stdout; -o is for reading a file");
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_(hcse_client_freep) struct hcse_client *hcse = NULL;
	_cleanup_json_ json_t *res = NULL;
	struct hcse_tls tls = {0};
	const char *path;
	int ty = 0, rsc = 0, r, rc;

	rc = parse_args(argc, argv);
	if (rc)
		return rc;
	if (sodium_init() < 0)
		return say("libsodium failed to initialise"), EXIT_ERROR;
	path = relative_path(opt.path);

	tls = (struct hcse_tls){.cert = opt.cert, .key = opt.key, .ca = opt.ca};
	r = hcse_client_new(opt.hcse_url, opt.origin, &tls, opt.timeout_ms, &hcse);
	if (r < 0)
		return say("cannot set up an HCSE client for '%s': %s", opt.hcse_url, strerror(-r)),
		       EXIT_ERROR;
	step(11, "security association with the HCSE %s as '%s'%s", opt.hcse_url, opt.origin,
	     strncmp(opt.hcse_url, "https://", 8) == 0
		 ? (opt.cert ? " (mutual TLS)" : " (TLS, no client certificate)")
		 : " (plain HTTP: loopback only)");
	step(12, "retrieving '%s' from the HCSE", path);
	r = hcse_retrieve(hcse, path, &res, &ty, &rsc);
	if (r < 0) {
		step(13, "the HCSE refused or failed: %s (RSC %d)", strerror(-r), rsc);
		return fail_hcse(r, rsc, "retrieval of", path);
	}
	step(13, "the HCSE authorised '%s' to retrieve '%s' (RSC %d, ty %d)", opt.origin, path, rsc,
	     ty);

	if (opt.list)
		return list_dir(hcse, path, res, ty);
	if (ty == 4)
		return get_esdata(path, res);
	if (ty == 3 && label(res, "file"))
		return get_file(hcse, path, res);
	if (ty == 3 && !label(res, "dir") && !label(res, "symlink")) {
		/* a plain container of some other AE: its latest contentInstance */
		_cleanup_free_ char *la = NULL;
		_cleanup_json_ json_t *cin = NULL;

		if (asprintf(&la, "%s/la", path) < 0)
			return say("out of memory"), EXIT_ERROR;
		r = hcse_retrieve(hcse, la, &cin, &ty, &rsc);
		if (r < 0)
			return fail_hcse(r, rsc, "retrieval of", la);
		return get_esdata(la, cin);
	}
	say("'%s' is not a file or an ESData contentInstance (resource type %d)%s", path, ty,
	    ty == 3 || ty == 2 ? ": try --list" : "");
	return EXIT_NOT_FOUND;
}
