/* SPDX-License-Identifier: Apache-2.0 */
/* Test tool: an Originator AE doing the contribution's steps 1-10 with libatrest, laying a file out
 * as atrestfs does. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/layout.h"
#include "atrest/seal.h"
#include "atrest/tef_client.h"
#include "read_all.h"

/*
 * What atrestfs does for one file, minus the filesystem, so the client tests
 * need not mount anything: under the AE, a container "i<ino>" labelled as
 * fs/ns.c labels a file (parent 1: the root directory), holding segment
 * contentInstances "s<idx>g<gen>" and the manifest "m<version>"; the key
 * is registered at tefd by the calling uid over the Unix socket, and the
 * committed version recorded there (atrestVersion) after the upload.
 * With --esdata RN it instead stores stdin as one standalone ESData
 * contentInstance RN in a plain container (what "some other AE" makes).
 * Prints "credential-id=..." and "resource=..." lines on stdout.
 */

#define CNF_JOSE "application/octet-stream:0:1"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct hcse_client *, hcse_client_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tef_client *, tef_client_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tef_registration *, tef_registration_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct seal_key *, seal_key_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct seal_manifest *, seal_manifest_free)

static struct {
	const char *hcse_url, *origin, *tef, *ae, *name, *container, *esdata;
	const char *cert, *key, *ca;
	const char *targets;
	uint64_t ino, ttl, segment_size;
	enum seal_protection protection;
	enum seal_enc enc;
	bool verbose;
} opt = {
    .hcse_url = "http://127.0.0.1:8080/cse-in",
    .origin = "Cwriter",
    .ae = "writer",
    .name = "data",
    .container = "box",
    .ino = 2,
    .segment_size = SEAL_SEGMENT_SIZE_DEFAULT,
    .protection = SEAL_CONFIDENTIALITY,
};

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

static int die(int r, const char *what)
{
	fprintf(stderr, "atrest-put: %s: %s\n", what, strerror(-r));
	return 1;
}

static void usage(FILE *f)
{
	fputs("usage: atrest-put -T SOCKET [-H URL] [-O ORIGIN] [-a AE] [--cert F --key F --ca F]\n"
	      "                  [-i INO] [-n NAME] [-t TARGETS] [--ttl S] [-s SEGSIZE]\n"
	      "                  [--integrity] [-e A256GCM|XC20P] [--esdata RN [-c CONTAINER]]\n"
	      "                  [-v] <data\n",
	      f);
}

/* Splits a comma-separated list in place into an array of pointers into s. */
static size_t split(char *s, const char **out, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

struct upload {
	struct hcse_client *hcse;
	const char *path;
	uint64_t generation;
	size_t count;
};

/* Steps 8-10 for one sealed segment: a contentInstance carrying its kid. */
static int upload_segment(void *userdata, uint64_t index, const char *compact, size_t len)
{
	struct upload *u = userdata;
	char rn[64];
	int rsc = 0, r;

	snprintf(rn, sizeof(rn), ATREST_SEGMENT_RN_FMT, index, u->generation);
	r = hcse_create_cin(u->hcse, u->path, rn, CNF_JOSE, compact, len, NULL, 0, &rsc);
	if (r == 0)
		u->count++;
	return r;
}

static int labels_for(const char *fid, const char *cred, const char *rkid,
		      const struct seal_manifest *m, char ***ret, size_t *ret_n)
{
	char **l = calloc(16, sizeof(char *));
	size_t n = 0;
	bool ok = true;

	if (!l)
		return -ENOMEM;
#define ADD(...) (ok = ok && asprintf(&l[n++], __VA_ARGS__) >= 0)
	ADD("atrest:file");
	ADD("atrest:ino=%" PRIu64, opt.ino);
	ADD("atrest:parent=1");
	ADD("atrest:name=%s", opt.name);
	ADD("atrest:mode=%o", (unsigned)m->mode);
	ADD("atrest:uid=%u", (unsigned)m->uid);
	ADD("atrest:gid=%u", (unsigned)m->gid);
	ADD("atrest:size=%" PRIu64, m->length);
	ADD("atrest:version=%" PRIu64, m->version);
	ADD("atrest:fid=%s", fid);
	ADD("atrest:segsize=%" PRIu32, m->segment_size);
	ADD("atrest:protection=%s",
	    opt.protection == SEAL_INTEGRITY ? "integrity" : "confidentiality");
	ADD("atrest:cred=%s", cred);
	ADD("atrest:rkid=%s", rkid);
#undef ADD
	if (!ok) {
		for (size_t i = 0; i < n; i++)
			free(l[i]);
		free(l);
		return -ENOMEM;
	}
	*ret = l;
	*ret_n = n;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	enum { OPT_CERT = 0x100, OPT_KEY, OPT_CA, OPT_TTL, OPT_INTEGRITY, OPT_ESDATA };
	static const struct option longopts[] = {
	    {"hcse", required_argument, NULL, 'H'},
	    {"origin", required_argument, NULL, 'O'},
	    {"tef", required_argument, NULL, 'T'},
	    {"ae", required_argument, NULL, 'a'},
	    {"ino", required_argument, NULL, 'i'},
	    {"name", required_argument, NULL, 'n'},
	    {"targets", required_argument, NULL, 't'},
	    {"segment-size", required_argument, NULL, 's'},
	    {"enc", required_argument, NULL, 'e'},
	    {"container", required_argument, NULL, 'c'},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"ttl", required_argument, NULL, OPT_TTL},
	    {"integrity", no_argument, NULL, OPT_INTEGRITY},
	    {"esdata", required_argument, NULL, OPT_ESDATA},
	    {"verbose", no_argument, NULL, 'v'},
	    {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "H:O:T:a:i:n:t:s:e:c:v", longopts, NULL)) != -1) {
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
		case 'a':
			opt.ae = optarg;
			break;
		case 'i':
			opt.ino = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			opt.name = optarg;
			break;
		case 't':
			opt.targets = optarg;
			break;
		case 's':
			opt.segment_size = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			opt.container = optarg;
			break;
		case 'e':
			opt.enc = strcmp(optarg, "XC20P") == 0 ? SEAL_ENC_XC20P : SEAL_ENC_A256GCM;
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
		case OPT_TTL:
			opt.ttl = strtoull(optarg, NULL, 10);
			break;
		case OPT_INTEGRITY:
			opt.protection = SEAL_INTEGRITY;
			break;
		case OPT_ESDATA:
			opt.esdata = optarg;
			break;
		case 'v':
			opt.verbose = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!opt.tef || optind != argc || opt.ino < 2) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_(hcse_client_freep) struct hcse_client *hcse = NULL;
	_cleanup_(tef_client_freep) struct tef_client *tef = NULL;
	_cleanup_(tef_registration_freep) struct tef_registration *reg = NULL;
	_cleanup_(seal_key_freep) struct seal_key *key = NULL;
	_cleanup_(seal_manifest_freep) struct seal_manifest *m = NULL;
	_cleanup_free_ char *targets_copy = NULL, *path = NULL, *compact = NULL;
	const char *targets[64];
	unsigned char fid_bin[16];
	char fid[33], rn[64];
	struct tef_registration_req req = {0};
	struct hcse_tls tls = {0};
	struct seal_params p;
	struct upload up;
	size_t len, n_labels = 0;
	char **labels = NULL;
	int r, rsc = 0;

	r = parse_args(argc, argv);
	if (r)
		return r;
	if (sodium_init() < 0)
		return 1;

	/* 1: the data is on stdin; the originator generates the credential */
	r = seal_key_generate(32, &key);
	if (r < 0)
		return die(r, "generating a key");
	step(1, "generated a %zu-byte key for the data (protection: %s)", seal_key_len(key),
	     opt.protection == SEAL_INTEGRITY ? "integrity" : "confidentiality");

	r = tef_client_new_unix(opt.tef, &tef);
	if (r < 0)
		return die(r, "TEF client");
	step(2, "secure channel with the TEF: Unix socket %s as uid %u", opt.tef,
	     (unsigned)getuid());

	if (opt.targets) {
		targets_copy = strdup(opt.targets);
		if (!targets_copy)
			return die(-ENOMEM, "targets");
		req.n_targets = split(targets_copy, targets, 64);
		req.targets = targets;
	}
	req.suid = opt.protection == SEAL_INTEGRITY ? TEF_SUID_INTEGRITY : TEF_SUID_ENCRYPTION;
	req.key = seal_key_bytes(key);
	req.key_len = seal_key_len(key);
	if (opt.ttl)
		req.expiration = (int64_t)time(NULL) + (int64_t)opt.ttl;
	step(3, "registering the key with the TEF (SUID %d, %zu access rule(s): %s)", req.suid,
	     req.n_targets, opt.targets ? opt.targets : "owner only");
	r = tef_register(tef, NULL, &req, &reg, &rsc);
	if (r < 0)
		return die(r, "registering the key at the TEF");
	step(4, "the TEF registered it: Credential-Id %s, expiration %" PRId64 ", owner %s",
	     reg->credential_id, reg->expiration, reg->owner ? reg->owner : "?");
	step(5, "the TEF answered RSC %d with Credential-Id %s", rsc, reg->credential_id);

	randombytes_buf(fid_bin, sizeof(fid_bin));
	sodium_bin2hex(fid, sizeof(fid), fid_bin, sizeof(fid_bin));
	p = (struct seal_params){.key = key,
				 .kid = reg->credential_id,
				 .file_id = fid,
				 .protection = opt.protection,
				 .enc = opt.enc};
	step(6, "the Credential-Id %s becomes the kid of every object sealed for this data",
	     reg->credential_id);

	tls = (struct hcse_tls){.cert = opt.cert, .key = opt.key, .ca = opt.ca};
	r = hcse_client_new(opt.hcse_url, opt.origin, &tls, 0, &hcse);
	if (r < 0)
		return die(r, "HCSE client");
	step(7, "secure channel with the HCSE %s as %s", opt.hcse_url, opt.origin);
	r = hcse_create_ae(hcse, opt.ae, "Natrest-put", NULL, &rsc);
	if (r < 0 && r != -EEXIST)
		return die(r, "registering the AE");

	if (opt.esdata) {
		_cleanup_free_ char *data = NULL;
		size_t dlen = 0;

		r = read_all(STDIN_FILENO, &data, &dlen);
		if (r < 0)
			return die(r, "reading stdin");
		/* a standalone object: libatrest's segment form, opened as plain ESData */
		r = seal_segment(&p, 0, 1, data, dlen, &compact, &len);
		sodium_memzero(data, dlen);
		if (r < 0)
			return die(r, "sealing");
		step(8, "sealed %zu bytes into one ESData carrying kid %s", dlen,
		     reg->credential_id);
		if (asprintf(&path, "%s/%s", opt.ae, opt.container) < 0)
			return die(-ENOMEM, "path");
		r = hcse_create_container(hcse, opt.ae, opt.container, NULL, 0, &rsc);
		if (r < 0 && r != -EEXIST)
			return die(r, "creating the container");
		step(8, "hosting the ESData as contentInstance %s/%s", path, opt.esdata);
		r = hcse_create_cin(hcse, path, opt.esdata, CNF_JOSE, compact, len, NULL, 0, &rsc);
		if (r < 0)
			return die(r, "creating the contentInstance");
		step(9, "the HCSE authorised %s and stored it", opt.origin);
		step(10, "the HCSE answered RSC %d", rsc);
		printf("credential-id=%s\nresource=%s/%s\n", reg->credential_id, path, opt.esdata);
		return 0;
	}

	r = seal_manifest_new(0, &m);
	if (r < 0)
		return die(r, "manifest");
	free(m->segments);
	m->segments = NULL;
	m->version = 1;
	m->segment_size = (uint32_t)opt.segment_size;
	m->mode = 0100640;
	m->uid = (uint32_t)getuid();
	m->gid = (uint32_t)getgid();
	m->mtime_ns = m->ctime_ns = (int64_t)time(NULL) * 1000000000;

	snprintf(rn, sizeof(rn), ATREST_NODE_RN_FMT, opt.ino);
	if (asprintf(&path, "%s/%s", opt.ae, rn) < 0)
		return die(-ENOMEM, "path");
	r = hcse_create_container(hcse, opt.ae, rn, NULL, 0, &rsc);
	if (r < 0)
		return die(r, "creating the file's container");

	/* 6 and 8: every sealed segment carries the Credential-Id as kid */
	up = (struct upload){.hcse = hcse, .path = path, .generation = m->version};
	r = seal_stream_seal(&p, STDIN_FILENO, m, upload_segment, &up);
	if (r < 0)
		return die(r, "sealing and uploading the segments");
	r = seal_manifest_seal(&p, m, &compact, &len);
	if (r < 0)
		return die(r, "sealing the manifest");
	step(8, "sealed %" PRIu64 " bytes into %zu segment(s) and a manifest, all with kid %s",
	     m->length, m->n_segments, reg->credential_id);
	snprintf(rn, sizeof(rn), ATREST_MANIFEST_RN_FMT, m->version);
	r = hcse_create_cin(hcse, path, rn, CNF_JOSE, compact, len, NULL, 0, &rsc);
	if (r < 0)
		return die(r, "uploading the manifest");
	step(8, "hosted %zu segment(s) and manifest %s/%s on the HCSE", up.count, path, rn);
	r = labels_for(fid, reg->credential_id, reg->relative_key_id, m, &labels, &n_labels);
	if (r < 0)
		return die(r, "labels");
	r = hcse_update_labels(hcse, path, 3, (const char *const *)labels, n_labels, &rsc);
	for (size_t i = 0; i < n_labels; i++)
		free(labels[i]);
	free(labels);
	if (r < 0)
		return die(r, "labelling the container");
	step(9, "the HCSE authorised %s to create them and hosts them", opt.origin);
	step(10, "the HCSE answered RSC %d (success)", rsc);

	/* DESIGN.md 4: the committed version goes to the TEF, which the HCSE cannot touch */
	r = tef_update(tef, NULL, reg->relative_key_id,
		       &(struct tef_update_req){.set_version = true, .version = m->version}, NULL,
		       NULL);
	if (r < 0)
		return die(r, "recording the version at the TEF");
	printf("credential-id=%s\nresource=%s\n", reg->credential_id, path);
	return 0;
}
