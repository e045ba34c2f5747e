/* SPDX-License-Identifier: Apache-2.0 */
/* Test tool: seals and opens compact JWE/JWS with libatrest, for the interoperability tests. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/seal.h"
#include "read_all.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct seal_key *, seal_key_free)

static void usage(FILE *f)
{
	fputs("usage: atrest-jose seal|open|peek-kid [options] <in >out\n"
	      "  -k, --key-file FILE   raw key bytes (16..64)\n"
	      "  -K, --kid ID          kid to seal / to expect when opening\n"
	      "  -i, --integrity       JWS HS256 instead of JWE\n"
	      "  -e, --enc ENC         A256GCM or XC20P (seal; default: auto)\n"
	      "  -f, --file-id ID      seal/open as an atrest segment of this file\n"
	      "  -n, --index N         segment index (with -f)\n"
	      "  -g, --generation N    segment generation (with -f)\n",
	      f);
}

/* Loads the key file straight into secure memory. */
static int load_key(const char *path, struct seal_key **ret)
{
	_cleanup_fclose_ FILE *f = fopen(path, "rb");
	uint8_t *buf = sodium_malloc(128);
	size_t n;
	int r;

	if (!f || !buf) {
		sodium_free(buf);
		return -errno;
	}
	n = fread(buf, 1, 128, f);
	r = seal_key_new(buf, n, ret);
	sodium_free(buf);
	return r;
}

static int write_all(const void *p, size_t len)
{
	return fwrite(p, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key-file", required_argument, NULL, 'k'},
	    {"kid", required_argument, NULL, 'K'},
	    {"integrity", no_argument, NULL, 'i'},
	    {"enc", required_argument, NULL, 'e'},
	    {"file-id", required_argument, NULL, 'f'},
	    {"index", required_argument, NULL, 'n'},
	    {"generation", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	_cleanup_(seal_key_freep) struct seal_key *key = NULL;
	_cleanup_free_ char *in = NULL, *out = NULL;
	struct seal_params p = {.protection = SEAL_CONFIDENTIALITY, .enc = SEAL_ENC_AUTO};
	const char *keyfile = NULL, *cmd;
	uint64_t index = 0, gen = 0;
	size_t inlen = 0, outlen = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "k:K:ie:f:n:g:h", opts, NULL)) >= 0) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'K':
			p.kid = optarg;
			break;
		case 'i':
			p.protection = SEAL_INTEGRITY;
			break;
		case 'e':
			if (strcmp(optarg, "A256GCM") == 0)
				p.enc = SEAL_ENC_A256GCM;
			else if (strcmp(optarg, "XC20P") == 0)
				p.enc = SEAL_ENC_XC20P;
			else {
				fprintf(stderr, "atrest-jose: unknown enc '%s'\n", optarg);
				return 2;
			}
			break;
		case 'f':
			p.file_id = optarg;
			break;
		case 'n':
			index = strtoull(optarg, NULL, 10);
			break;
		case 'g':
			gen = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (sodium_init() < 0)
		return 1;
	r = read_all(STDIN_FILENO, &in, &inlen);
	if (r < 0) {
		fprintf(stderr, "atrest-jose: reading stdin: %s\n", strerror(-r));
		return 1;
	}
	/* Tolerate the newline a shell pipeline may add after a compact string. */
	if (strcmp(cmd, "seal") != 0)
		while (inlen && (in[inlen - 1] == '\n' || in[inlen - 1] == '\r'))
			in[--inlen] = '\0';

	if (strcmp(cmd, "peek-kid") == 0) {
		r = seal_peek_kid(in, inlen, &out);
		if (r >= 0)
			r = write_all(out, strlen(out));
	} else {
		if (!keyfile) {
			usage(stderr);
			return 2;
		}
		r = load_key(keyfile, &key);
		if (r < 0) {
			fprintf(stderr, "atrest-jose: key: %s\n", strerror(-r));
			return 1;
		}
		p.key = key;
		if (strcmp(cmd, "seal") == 0) {
			if (p.file_id)
				r = seal_segment(&p, index, gen, in, inlen, &out, &outlen);
			else
				r = -EINVAL; /* plain ESData is sealed by other AEs, not by atrest
					      */
		} else if (strcmp(cmd, "open") == 0) {
			if (p.file_id) {
				out = malloc(inlen + 1);
				r = out ? seal_open_segment(&p, index, gen, in, inlen, out, inlen,
							    &outlen)
					: -ENOMEM;
			} else
				r = seal_open_esdata(key, p.kid, in, inlen, &out, &outlen);
		} else {
			usage(stderr);
			return 2;
		}
		if (r >= 0)
			r = write_all(out, outlen);
	}
	if (r < 0) {
		fprintf(stderr, "atrest-jose: %s: %s (%d)\n", cmd, strerror(-r), r);
		return 1;
	}
	return 0;
}
