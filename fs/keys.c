/* SPDX-License-Identifier: Apache-2.0 */
/* Keys through tefd, always on behalf of the FUSE caller (DESIGN.md 2): register, retrieve, update, de-register. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/tef_api.h"
#include "atrestfs.h"

/*
 * Supplementary groups of the calling thread from /proc, as
 * fuse_req_getgroups() does, but NUL-terminating what it reads (libfuse's
 * own reader runs strstr() past its buffer). Returns the count or -errno.
 */
static int proc_groups(pid_t pid, gid_t *out, size_t cap)
{
	char path[64], buf[4096], *g, *end;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t k = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	g = strstr(buf, "\nGroups:");
	if (!g)
		return -EIO;
	g += 8;
	while (k < cap) {
		unsigned long v = strtoul(g, &end, 10);
		if (end == g)
			break;
		out[k++] = (gid_t)v;
		g = end;
	}
	return (int)k;
}

void caller_from_req(fuse_req_t req, struct caller *ret)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int n;

	ret->uid = ctx->uid;
	ret->gid = ctx->gid;
	n = proc_groups(ctx->pid, ret->groups, ELEMENTSOF(ret->groups));
	/* a caller gone already, or no /proc: act with uid and gid alone */
	ret->n_groups = n > 0 ? (size_t)n : 0;
}

static void identity_of(const struct caller *c, struct tef_identity *id)
{
	*id = (struct tef_identity){
		.uid = c->uid, .gid = c->gid, .n_groups = c->n_groups, .groups = c->groups
	};
}

/* tefd's answer as the caller of open()/create() must see it (DESIGN.md 8). */
static int open_errno(struct fs *fs, int r, const char *what, const struct node *n)
{
	_cleanup_free_ char *desc = NULL;

	switch (r) {
	case -EACCES:
	case -EKEYEXPIRED:
	case -EPERM:
		return r == -EPERM ? -EACCES : r;
	case -EAGAIN:
		desc = fs_describe(fs, n->ino);
		log_warning("tefd rate-limits key requests: %s refused", desc);
		return -EACCES;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENOENT:
	case -ETIMEDOUT:
	case -ECONNRESET:
		return health_failed(fs, fs->tef_outage, n->ino, what, r);
	default:
		desc = fs_describe(fs, n->ino);
		log_error_errno(r, "%s for %s failed", what, desc);
		return -EIO;
	}
}

static char *join(char *const *v, size_t n)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*s = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? "," : ""), v[i]);
	return s;
}

/* Adopts what tefd said about a registration (fs->lock taken here). */
void node_adopt_registration(struct fs *fs, struct node *n, const struct tef_registration *reg)
{
	char *targets = join(reg->targets, reg->n_targets);

	pthread_mutex_lock(&fs->lock);
	if (targets) {
		free(n->targets);
		n->targets = targets;
	}
	n->key_expires = reg->expiration;
	pthread_mutex_unlock(&fs->lock);
}

int keys_register(struct fs *fs, const struct caller *c, struct node *n, struct seal_key **ret_key)
{
	_cleanup_free_ char *t_uid = NULL, *t_gid = NULL, *label = NULL;
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	struct seal_key *key = NULL;
	const char *targets[2];
	size_t n_targets = 0;
	int r;

	if (asprintf(&t_uid, "uid:%u", (unsigned)c->uid) < 0 ||
	    asprintf(&t_gid, "gid:%u", (unsigned)n->gid) < 0 ||
	    asprintf(&label, "atrestfs:%s", fs->opt.ae) < 0)
		return -ENOMEM;
	switch (fs->opt.share) {
	case SHARE_OWNER:
		targets[n_targets++] = t_uid;
		break;
	case SHARE_GROUP:
		targets[n_targets++] = t_uid;
		targets[n_targets++] = t_gid;
		break;
	case SHARE_ALL:
		targets[n_targets++] = "all";
		break;
	}
	const char *labels[] = { label };
	struct tef_registration_req req = {
		.suid = n->protection == SEAL_INTEGRITY ? TEF_SUID_INTEGRITY : TEF_SUID_ENCRYPTION,
		.labels = labels,
		.n_labels = 1,
		.targets = targets,
		.n_targets = n_targets,
		.expiration = fs->opt.key_ttl ? (int64_t)time(NULL) + (int64_t)fs->opt.key_ttl : 0,
	};

	/* DESIGN.md 1 step 1: tefd generates the key; we hold it only in secure memory */
	identity_of(c, &id);
	r = tef_register(fs->tef, &id, &req, &reg, NULL);
	if (r < 0)
		return open_errno(fs, r, "key registration", n);
	if (!reg->key || !reg->credential_id || !reg->relative_key_id) {
		tef_registration_free(reg);
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_error("tefd registered a key for %s but returned no key", desc);
		return -EIO;
	}
	r = seal_key_new(reg->key, reg->key_len, &key);
	if (r == 0) {
		n->cred_id = strdup(reg->credential_id);
		n->rkid = strdup(reg->relative_key_id);
		if (!n->cred_id || !n->rkid)
			r = -ENOMEM;
	}
	if (r == 0)
		node_adopt_registration(fs, n, reg);
	tef_registration_free(reg);
	if (r < 0) {
		seal_key_free(key);
		return r;
	}
	*ret_key = key;
	return 0;
}

int keys_retrieve(struct fs *fs, const struct caller *c, const struct node *n,
		  struct seal_key **ret_key, uint64_t *ret_min_version)
{
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	struct seal_key *key = NULL;
	int r;

	if (!n->rkid)
		return -EIO;
	identity_of(c, &id);
	r = tef_retrieve(fs->tef, &id, n->rkid, &reg, NULL);
	if (r < 0) {
		if (r == -EACCES || r == -EKEYEXPIRED) {
			_cleanup_free_ char *desc = fs_describe(fs, n->ino);

			log_info("key of %s refused to uid %u: %s", desc, (unsigned)c->uid,
				 r == -EACCES ? "denied" : "expired");
		}
		return open_errno(fs, r, "key retrieval", n);
	}
	if (!reg->key) {
		tef_registration_free(reg);
		return -EACCES;
	}
	r = seal_key_new(reg->key, reg->key_len, &key);
	if (r == 0) {
		*ret_min_version = reg->version;
		*ret_key = key;
	}
	tef_registration_free(reg);
	return r;
}

static int update(struct fs *fs, const struct caller *c, struct node *n,
		  const struct tef_update_req *u)
{
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	int r;

	identity_of(c, &id);
	r = tef_update(fs->tef, &id, n->rkid, u, &reg, NULL);
	if (r < 0) {
		if (r == -EINVAL)
			return r;
		return open_errno(fs, r, "key registration update", n);
	}
	if (reg)
		node_adopt_registration(fs, n, reg);
	tef_registration_free(reg);
	return 0;
}

int keys_set_targets(struct fs *fs, const struct caller *c, struct node *n, const char *targets)
{
	_cleanup_free_ char *copy = strdup(targets);
	const char *list[TEF_MAX_TARGETS];
	size_t k = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ", \t\n", &save); t; t = strtok_r(NULL, ", \t\n", &save)) {
		if (k == ELEMENTSOF(list) || !tef_principal_is_valid(t))
			return -EINVAL;
		list[k++] = t;
	}
	struct tef_update_req u = { .set_targets = true, .targets = list, .n_targets = k };
	return update(fs, c, n, &u);
}

int keys_set_expires(struct fs *fs, const struct caller *c, struct node *n, int64_t when)
{
	struct tef_update_req u = { .set_expiration = true, .expiration = when };
	int r = update(fs, c, n, &u);

	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		/* the owner chose: no background renewal from now on */
		n->expires = n->key_expires ? n->key_expires : when;
		pthread_mutex_unlock(&fs->lock);
	}
	return r;
}

int keys_record_version(struct fs *fs, uid_t uid, gid_t gid, const char *rkid, uint64_t version)
{
	struct tef_identity id = { .uid = uid, .gid = gid };
	struct tef_update_req u = { .set_version = true, .version = version };
	int r;

	r = tef_update(fs->tef, &id, rkid, &u, NULL, NULL);
	if (r < 0)
		log_debug_errno(r, "cannot record version %" PRIu64 " with tefd", version);
	return r;
}

int keys_deregister(struct fs *fs, uid_t uid, gid_t gid, const char *rkid)
{
	struct tef_identity id = { .uid = uid, .gid = gid };
	int r;

	r = tef_deregister(fs->tef, &id, rkid, NULL);
	if (r == -EACCES || r == -ENOENT)
		return 0; /* gone already, or no longer this owner's */
	/* tefd down: the caller retries, and the outage is logged once */
	if (r < 0 && !hcse_is_unreachable(r))
		log_warning_errno(r, "cannot de-register the key %.8s... of a removed file", rkid);
	return r;
}
