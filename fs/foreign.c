/* SPDX-License-Identifier: Apache-2.0 */
/* contentInstances other AEs put into a mounted directory's container: read-only files, opened through tefd by their kid. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/secmem.h"
#include "atrestfs.h"

/* How long a directory's listing of foreign objects is trusted. */
#define FOREIGN_TTL_NS (5ull * 1000000000)

/* TS-0004 cnf "type:encoding:security": security 1 is compact JOSE (DESIGN.md 4). */
static bool cnf_is_jose(const char *cnf)
{
	const char *last = cnf ? strrchr(cnf, ':') : NULL;

	return last && strcmp(last, ":1") == 0;
}

/* Plaintext length of a compact JWE/JWS without opening it: the decoded
 * length of its ciphertext (GCM and Poly1305 keep lengths) or payload. */
static int jose_plain_len(const char *con, size_t len, uint64_t *ret)
{
	size_t plen[6], n = 0, start = 0;

	for (size_t i = 0; i <= len && n < 6; i++)
		if (i == len || con[i] == '.') {
			plen[n++] = i - start;
			start = i + 1;
		}
	if (n != 5 && n != 3)
		return -EBADMSG;
	size_t l = n == 5 ? plen[3] : plen[1];
	*ret = l / 4 * 3 + (l % 4 == 2 ? 1 : l % 4 == 3 ? 2 : 0);
	return 0;
}

/* A foreign node for contentInstance rn of directory dir (fs->lock held). */
static struct node *foreign_node(struct fs *fs, struct node *dir, const char *rn, const char *cnf,
				 const char *con, size_t len)
{
	struct node *n = ns_node_new(fs, 0);
	char *name = strdup(rn);
	uint64_t size = len;

	if (!n || !name) {
		free(name);
		ns_node_free(n);
		return NULL;
	}
	n->foreign = true;
	n->foreign_jose = cnf_is_jose(cnf);
	n->mode = S_IFREG | 0444;
	n->uid = dir->uid;
	n->gid = dir->gid;
	n->remote_created = true;
	if (n->foreign_jose) {
		char *kid = NULL;

		if (jose_plain_len(con, len, &size) == 0 && seal_peek_kid(con, len, &kid) == 0)
			n->cred_id = kid;
		size_t dots = 0;
		for (size_t i = 0; i < len; i++)
			dots += con[i] == '.';
		/* JWS compact has three parts, JWE five (RFC 7515 7.1, RFC 7516 7.1) */
		n->protection = dots == 2 ? SEAL_INTEGRITY : SEAL_CONFIDENTIALITY;
	}
	n->size = size;
	node_touch(n, true, true, true);
	ns_insert(fs, n);
	ns_link_name(fs, n, dir->ino, name);
	return n;
}

void foreign_refresh(struct fs *fs, uint64_t dir_ino, bool missing_name)
{
	_cleanup_free_ char *path = NULL;
	char **names = NULL;
	size_t n_names = 0;
	struct node *d;
	uint64_t now = monotonic_ns();
	int r;

	if (uploader_is_offline(fs->up))
		return; /* no waits on an unreachable HCSE */
	pthread_mutex_lock(&fs->lock);
	d = ns_get(fs, dir_ino);
	if (!d || !S_ISDIR(d->mode) || d->unlinked ||
	    (d->foreign_checked && now - d->foreign_checked < FOREIGN_TTL_NS * (missing_name ? 6 : 1))) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	d->foreign_checked = now;
	path = remote_node_path(fs, d);
	pthread_mutex_unlock(&fs->lock);
	if (!path)
		return;

	r = hcse_list_children(fs->hcse, path, 4, &names, &n_names, NULL);
	if (r < 0) {
		if (r != -ENOENT)
			log_debug_errno(r, "cannot list the contentInstances of '%s'", path);
		return;
	}
	for (size_t i = 0; i < n_names; i++) {
		_cleanup_free_ char *cin_path = NULL, *con = NULL, *cnf = NULL;
		size_t len;
		bool known;

		pthread_mutex_lock(&fs->lock);
		known = ns_lookup(fs, dir_ino, names[i]) != NULL;
		pthread_mutex_unlock(&fs->lock);
		if (known || strchr(names[i], '/') || names[i][0] == '.')
			continue;
		if (asprintf(&cin_path, "%s/%s", path, names[i]) < 0) {
			cin_path = NULL;
			break;
		}
		if (hcse_retrieve_cin(fs->hcse, cin_path, &con, &len, &cnf, NULL) < 0)
			continue;
		pthread_mutex_lock(&fs->lock);
		d = ns_get(fs, dir_ino);
		if (d && !ns_lookup(fs, dir_ino, names[i]))
			foreign_node(fs, d, names[i], cnf, con, len);
		pthread_mutex_unlock(&fs->lock);
		sodium_memzero(con, len);
	}
	/* objects deleted on the HCSE disappear here too */
	pthread_mutex_lock(&fs->lock);
	d = ns_get(fs, dir_ino);
	for (struct node *c = d ? d->first_child : NULL, *next; c; c = next) {
		bool present = false;

		next = c->next_sibling;
		if (!c->foreign)
			continue;
		for (size_t i = 0; i < n_names && !present; i++)
			present = strcmp(names[i], c->name) == 0;
		if (!present) {
			ns_unlink_name(fs, c);
			c->unlinked = true;
			fs_maybe_reap(fs, c);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	hcse_names_free(names, n_names);
}

/* A locked copy of len bytes (plus a NUL) for the handle (atrestfs.h: fbuf). */
static int plain_copy(const char *src, size_t len, char **ret, size_t *ret_len)
{
	char *p = secmem_alloc(len + 1);

	if (!p)
		return plain_alloc_error(len + 1);
	memcpy(p, src, len);
	*ret = p;
	*ret_len = len;
	return 0;
}

int foreign_open(struct fs *fs, const struct caller *c, struct node *n, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *path = NULL, *con = NULL, *cnf = NULL, *kid = NULL;
	struct tef_registration *reg = NULL;
	struct tef_identity id = { .uid = c->uid, .gid = c->gid, .n_groups = c->n_groups,
				   .groups = c->groups };
	struct seal_key *key = NULL;
	char *plain;
	size_t len, plen;
	int r;

	pthread_mutex_lock(&fs->lock);
	struct node *d = ns_get(fs, n->parent);
	if (d && asprintf(&path, "%s/i%" PRIu64 "/%s", fs->ae_path, d->ino, n->name) < 0)
		path = NULL;
	pthread_mutex_unlock(&fs->lock);
	if (!path)
		return -ENOENT;
	r = hcse_retrieve_cin(fs->hcse, path, &con, &len, &cnf, NULL);
	if (r < 0) {
		log_error_errno(r, "cannot retrieve '/%s/%s'", fs->cse_rn, path);
		return r == -ENOENT ? -ENOENT : -EIO;
	}
	if (!cnf_is_jose(cnf)) {
		/* plain content is shown as it is (issue 5) */
		return plain_copy(con, len, ret, ret_len);
	}
	/* the kid names the key; it is trusted only once the object verifies with it */
	r = seal_peek_kid(con, len, &kid);
	if (r < 0) {
		log_error_errno(r, "'/%s/%s' says compact JOSE but has no kid", fs->cse_rn, path);
		return -EIO;
	}
	r = tef_retrieve(fs->tef, &id, kid, &reg, NULL);
	if (r < 0) {
		if (r == -EACCES || r == -EKEYEXPIRED)
			return r;
		log_error_errno(r, "key retrieval for '/%s/%s'", fs->cse_rn, path);
		return -EIO;
	}
	r = reg->key ? seal_key_new(reg->key, reg->key_len, &key) : -EACCES;
	tef_registration_free(reg);
	if (r < 0)
		return r;
	/* the compact form is longer than its plaintext: len bytes are enough */
	plain = secmem_alloc(len + 1);
	if (!plain) {
		seal_key_free(key);
		return plain_alloc_error(len + 1);
	}
	r = seal_open_esdata_in(key, kid, con, len, plain, len, &plen);
	seal_key_free(key);
	if (r < 0) {
		secmem_free(plain, len + 1);
		log_error_errno(r, "integrity check failed for '/%s/%s'", fs->cse_rn, path);
		return -EIO;
	}
	r = plain_copy(plain, plen, ret, ret_len);
	secmem_free(plain, len + 1);
	return r;
}
