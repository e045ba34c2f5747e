/* SPDX-License-Identifier: Apache-2.0 */
/* The Hosting CSE engine: addressing, the generic CRUD procedures of TS-0004 7.3, result content.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "resource.h"

#define ET_FOREVER 253402300799LL /* 99991231T235959 */
#define HCSE_DEFAULT_CHILDREN 1000
#define HCSE_MAX_CHILDREN 10000

static const struct resource_type *const types[] = {
    &resource_type_acp, &resource_type_ae, &resource_type_cnt,
    &resource_type_cin, &resource_type_cb, &resource_type_sub,
};

const struct resource_type *resource_type_find(int ty)
{
	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if (types[i]->ty == ty)
			return types[i];
	return NULL;
}

int ctx_fail(struct hcse_ctx *ctx, int rsc, const char *fmt, ...)
{
	va_list ap;

	ctx->rsc = rsc;
	va_start(ap, fmt);
	vsnprintf(ctx->dbg, sizeof(ctx->dbg), fmt, ap);
	va_end(ap);
	return -EPROTO;
}

void hcse_format_time(int64_t t, char buf[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	if (tm.tm_year + 1900 > 9999)
		memcpy(buf, "99991231T235959", 16);
	else
		strftime(buf, 16, "%Y%m%dT%H%M%S", &tm);
}

int hcse_parse_time(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	int n = 0;

	/* TS-0004 Table 6.3.3-1 m2m:timestamp: ISO 8601 basic format; a
	 * fraction (",ffffff") and a trailing "Z" are accepted and ignored. */
	if (!s || strlen(s) < 15 ||
	    sscanf(s, "%4d%2d%2dT%2d%2d%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 15)
		return -EINVAL;
	for (const char *p = s + 15; *p; p++) {
		if (p == s + 15 && (*p == ',' || *p == '.'))
			continue;
		if ((*p >= '0' && *p <= '9' && p > s + 15) || (*p == 'Z' && p[1] == '\0'))
			continue;
		return -EINVAL;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

void hcse_request_clear(struct hcse_request *r)
{
	free(r->to);
	free(r->fr);
	free(r->rqi);
	free(r->rvi);
	for (size_t i = 0; i < r->fc.n_labels; i++)
		free(r->fc.labels[i]);
	for (size_t i = 0; i < r->n_atrl; i++)
		free(r->atrl[i]);
	json_decref(r->pc);
	*r = (struct hcse_request){0};
}

void hcse_response_clear(struct hcse_response *r)
{
	free(r->body);
	free(r->location);
	*r = (struct hcse_response){0};
}

static int response_json(struct hcse_response *resp, json_t *j)
{
	free(resp->body);
	resp->body = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	return resp->body ? 0 : -ENOMEM;
}

int hcse_response_error(struct hcse_response *resp, int rsc, const char *msg)
{
	_cleanup_json_ json_t *j = json_pack("{s:s}", "m2m:dbg", msg ? msg : rsc_to_string(rsc));

	free(resp->location);
	resp->location = NULL;
	resp->rsc = rsc;
	return j ? response_json(resp, j) : -ENOMEM;
}

/* ---- resource representation ---------------------------------------- */

json_t *resource_to_json(const struct hcse *cse, const struct store_res *r)
{
	json_t *j = json_object();
	const char *key;
	json_t *v;
	char buf[16];

	if (!j)
		return NULL;
	/* universal attributes (TS-0004 9.6.1.3), numbers as JSON integers */
	json_object_set_new(j, "rn", json_string(r->rn));
	json_object_set_new(j, "ty", json_integer(r->ty));
	json_object_set_new(j, "ri", json_string(r->ri));
	json_object_set_new(j, "pi", r->pi ? json_string(r->pi) : json_string(""));
	json_object_set_new(j, "ct", json_string(r->ct));
	hcse_format_time(r->et, buf);
	json_object_set_new(j, "et", json_string(buf));
	json_object_foreach ((json_t *)r->attrs, key, v) {
		if (key[0] == '_')
			continue; /* internal bookkeeping */
		json_object_set(j, key, v);
	}
	if (r->cr && json_object_get(r->attrs, "_cr"))
		json_object_set_new(j, "cr", json_string(r->cr));
	switch (r->ty) {
	case TY_CNT:
		json_object_set_new(j, "cni", json_integer(r->cni));
		json_object_set_new(j, "cbs", json_integer(r->cbs));
		json_object_set_new(j, "st", json_integer(r->st));
		break;
	case TY_CIN:
		json_object_set_new(j, "cs", json_integer(r->cs));
		json_object_set_new(j, "st", json_integer(r->st));
		break;
	case TY_AE:
		if (r->aei)
			json_object_set_new(j, "aei", json_string(r->aei));
		break;
	case TY_CB:
		json_object_del(j, "pi");
		json_object_del(j, "et");
		break;
	}
	(void)cse;
	return j;
}

/* Rendering with raw content: a contentInstance's con is a marker string in
 * the JSON tree and is spliced in as the original bytes after dumping. */
struct render {
	const char **cons;
	size_t *lens;
	char **owned; /* what to free (NULL for borrowed content) */
	size_t n;
};

static void render_clear(struct render *rd)
{
	for (size_t i = 0; i < rd->n; i++)
		free(rd->owned[i]);
	free(rd->cons);
	free(rd->lens);
	free(rd->owned);
	*rd = (struct render){0};
}

/* Representation of r with its con (taken from r) for rendering. */
static json_t *render_res(struct render *rd, const struct hcse *cse, struct store_res *r)
{
	json_t *j = resource_to_json(cse, r);
	char marker[32];

	if (!j || r->ty != TY_CIN || !r->con)
		return j;
	const char **c = realloc(rd->cons, (rd->n + 1) * sizeof(*c));
	if (!c)
		goto oom;
	rd->cons = c;
	size_t *l = realloc(rd->lens, (rd->n + 1) * sizeof(*l));
	if (!l)
		goto oom;
	rd->lens = l;
	char **w = realloc(rd->owned, (rd->n + 1) * sizeof(*w));
	if (!w)
		goto oom;
	rd->owned = w;
	snprintf(marker, sizeof(marker), "\001con:%zu", rd->n);
	json_object_set_new(j, "con", json_string(marker));
	rd->cons[rd->n] = r->con;
	rd->lens[rd->n] = r->con_len;
	rd->owned[rd->n] = r->con_borrowed ? NULL : r->con;
	r->con = NULL;
	rd->n++;
	return j;
oom:
	json_decref(j);
	return NULL;
}

static int render_dump(struct render *rd, json_t *root, struct hcse_response *resp)
{
	_cleanup_free_ char *text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
	static const char mark[] = "\"\\u0001con:";
	size_t total, len, o = 0;
	const char *p, *q;
	char *out;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if (rd->n == 0) {
		free(resp->body);
		resp->body = TAKE_PTR(text);
		resp->body_len = len;
		return 0;
	}
	total = len;
	for (size_t i = 0; i < rd->n; i++)
		total += rd->lens[i];
	out = malloc(total + 1);
	if (!out)
		return -ENOMEM;
	for (p = text; (q = strstr(p, mark)); p = q) {
		char *end;
		unsigned long idx = strtoul(q + sizeof(mark) - 1, &end, 10);

		if (*end != '"' || idx >= rd->n)
			break;
		memcpy(out + o, p, (size_t)(q - p));
		o += (size_t)(q - p);
		memcpy(out + o, rd->cons[idx], rd->lens[idx]);
		o += rd->lens[idx];
		q = end + 1;
	}
	memcpy(out + o, p, strlen(p));
	o += strlen(p);
	out[o] = '\0';
	free(resp->body);
	resp->body = out;
	resp->body_len = o;
	return 0;
}

/* ---- addressing (TS-0001 7.2, TS-0004 6.2.3) ------------------------- */

static bool is_rn_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~' || c == '@' || c == '+' || c == '!' ||
	       c == '$' || c == '\'' || c == '(' || c == ')' || c == '*' || c == ',' || c == ';' ||
	       c == '=' || c == ':';
}

static bool is_valid_rn(const char *rn)
{
	size_t n = strlen(rn);

	if (n == 0 || n > 255 || strcmp(rn, ".") == 0 || strcmp(rn, "..") == 0)
		return false;
	/* "la"/"ol" name virtual resources of a container (TS-0004 7.4.27/28) */
	if (strcmp(rn, "la") == 0 || strcmp(rn, "ol") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_rn_char(rn[i]))
			return false;
	return true;
}

enum virt {
	VIRT_NONE,
	VIRT_LA,
	VIRT_OL,
};

static bool is_expired(struct hcse_ctx *ctx, const struct store_res *r)
{
	return r->ty != TY_CB && r->et < ctx->now;
}

/* The oldest or latest contentInstance of a container. */
static int cnt_edge(struct hcse_ctx *ctx, const struct store_res *cnt, bool latest, bool with_con,
		    struct store_res *ret);

/*
 * Resolves the To parameter to a resource. CSE-relative ("cse-in/ae/cnt"
 * structured, "ri" unstructured, "ri/child" hybrid), SP-relative ("/id-in/...")
 * and absolute ("//sp/id-in/...") forms. `virt` allows the la/ol virtual
 * resources (TS-0004 7.4.27, 7.4.28), in which case *ret_virt says which
 * and *ret is the container.
 */
static int resolve(struct hcse_ctx *ctx, const char *to, bool virt, bool with_con,
		   struct store_res *ret, enum virt *ret_virt)
{
	struct hcse *cse = ctx->cse;
	_cleanup_free_ char *path = NULL;
	const char *rel = to, *slash;
	size_t csi_len = strlen(cse->csi + 1);
	int r;

	if (ret_virt)
		*ret_virt = VIRT_NONE;
	if (!to)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "missing To");
	if (strncmp(rel, "//", 2) == 0) {
		/* absolute: skip the SP-ID, then it is SP-relative */
		slash = strchr(rel + 2, '/');
		if (!slash)
			return ctx_fail(ctx, RSC_NOT_FOUND, "resource not found");
		rel = slash;
	}
	if (rel[0] == '/') {
		/* SP-relative: /<csi>/<CSE-relative>; other CSEs are not reachable */
		if (strncmp(rel + 1, cse->csi + 1, csi_len) != 0 ||
		    (rel[1 + csi_len] != '/' && rel[1 + csi_len] != '\0'))
			return ctx_fail(ctx, RSC_NOT_FOUND, "resource not found (other CSE)");
		rel += 1 + csi_len;
		if (*rel == '/')
			rel++;
	}
	while (*rel == '/')
		rel++;
	if (*rel == '\0' || strcmp(rel, "-") == 0) {
		path = strdup(cse->cse_rn);
	} else {
		size_t first = strcspn(rel, "/");

		if ((first == strlen(cse->cse_rn) && strncmp(rel, cse->cse_rn, first) == 0) ||
		    (first == 1 && rel[0] == '-')) {
			/* structured ("-" is the CSEBase, TS-0001 7.2) */
			if (asprintf(&path, "%s%s", cse->cse_rn, rel + first) < 0)
				path = NULL;
		} else {
			/* unstructured: first segment is a resourceID */
			_cleanup_free_ char *ri = strndup(rel, first);
			struct store_res base = {0};

			if (!ri)
				return -ENOMEM;
			r = store_get_by_ri(ctx->t, ri, false, &base);
			if (r == -ENOENT)
				return ctx_fail(ctx, RSC_NOT_FOUND, "resource not found");
			if (r < 0)
				return r;
			if (asprintf(&path, "%s%s", base.path, rel + first) < 0)
				path = NULL;
			store_res_clear(&base);
		}
	}
	if (!path)
		return -ENOMEM;
	/* a trailing slash names the same resource (TS-0009 Table 6.2.2.1-1) */
	while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';

	r = store_get_by_path(ctx->t, path, with_con, ret);
	if (r == 0) {
		if (is_expired(ctx, ret)) {
			store_res_clear(ret);
			return ctx_fail(ctx, RSC_NOT_FOUND, "resource not found");
		}
		return 0;
	}
	if (r != -ENOENT)
		return r;
	slash = strrchr(path, '/');
	if (virt && slash && (strcmp(slash, "/la") == 0 || strcmp(slash, "/ol") == 0)) {
		struct store_res cnt = {0};
		bool latest = strcmp(slash, "/la") == 0;

		path[slash - path] = '\0';
		r = store_get_by_path(ctx->t, path, false, &cnt);
		if (r == 0 && cnt.ty == TY_CNT && !is_expired(ctx, &cnt)) {
			if (ret_virt)
				*ret_virt = latest ? VIRT_LA : VIRT_OL;
			*ret = cnt;
			return 0;
		}
		store_res_clear(&cnt);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return ctx_fail(ctx, RSC_NOT_FOUND, "resource not found");
}

struct edge_ctx {
	struct hcse_ctx *ctx;
	struct store_res *ret;
	bool found;
};

static int edge_cb(struct store_res *r, void *userdata)
{
	struct edge_ctx *e = userdata;

	if (is_expired(e->ctx, r))
		return 0;
	*e->ret = *r;
	*r = (struct store_res){0};
	e->found = true;
	return 1;
}

static int cnt_edge(struct hcse_ctx *ctx, const struct store_res *cnt, bool latest, bool with_con,
		    struct store_res *ret)
{
	struct edge_ctx e = {.ctx = ctx, .ret = ret};
	int r;

	/* ordered by the monotonic sequence, never by ct (TS-0004 7.4.27.2.2) */
	r = store_children(ctx->t, cnt->ri, TY_CIN, latest, with_con, -1, 0, edge_cb, &e);
	if (r < 0)
		return r;
	if (!e.found)
		return ctx_fail(ctx, RSC_NOT_FOUND, "container has no contentInstance");
	return 0;
}

/* ---- attribute validation (TS-0004 7.3.3.x: BAD_REQUEST on RO/unknown) -- */

static const struct attr_def universal_attrs[] = {
    {"rn", AK_STR, AF_C},
    {"et", AK_TIME, AF_C | AF_U},
    {"lbl", AK_STRLIST, AF_C | AF_U | AF_N},
    /* cr (creator) only where the type has it: cnt, cin, sub (TS-0004 7.3.3.5) */
    {NULL, 0, 0},
};
static const struct attr_def acpi_attr = {"acpi", AK_STRLIST, AF_C | AF_U | AF_N};

static const struct attr_def *attr_find(const struct resource_type *type, const char *name)
{
	for (const struct attr_def *a = universal_attrs; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	if (type->has_acpi && strcmp(name, "acpi") == 0)
		return &acpi_attr;
	for (const struct attr_def *a = type->attrs; a && a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static bool kind_ok(enum attr_kind k, json_t *v)
{
	size_t i;
	json_t *e;
	int64_t t;

	switch (k) {
	case AK_STR:
		return json_is_string(v);
	case AK_UINT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case AK_BOOL:
		return json_is_boolean(v);
	case AK_STRLIST:
		if (!json_is_array(v))
			return false;
		json_array_foreach (v, i, e)
			if (!json_is_string(e))
				return false;
		return true;
	case AK_INTLIST:
		if (!json_is_array(v))
			return false;
		json_array_foreach (v, i, e)
			if (!json_is_integer(e))
				return false;
		return true;
	case AK_OBJ:
		return json_is_object(v);
	case AK_TIME:
		return json_is_string(v) && hcse_parse_time(json_string_value(v), &t) == 0;
	case AK_ANY:
		return true;
	}
	return false;
}

static int validate_attrs(struct hcse_ctx *ctx, const struct resource_type *type, json_t *in,
			  bool create)
{
	const char *key;
	json_t *v;

	json_object_foreach (in, key, v) {
		const struct attr_def *a = attr_find(type, key);

		if (!a || !(a->flags & (create ? AF_C : AF_U)))
			return ctx_fail(ctx, RSC_BAD_REQUEST, "attribute \"%s\" not allowed here",
					key);
		if (json_is_null(v)) {
			if (!create && !(a->flags & AF_N))
				return ctx_fail(ctx, RSC_BAD_REQUEST,
						"attribute \"%s\" cannot be removed", key);
			continue;
		}
		if (strcmp(key, "cr") == 0)
			return ctx_fail(ctx, RSC_BAD_REQUEST, "cr must be null in a Create");
		if (!kind_ok(a->kind, v))
			return ctx_fail(ctx, RSC_BAD_REQUEST, "attribute \"%s\" has a wrong type",
					key);
	}
	if (create)
		for (const struct attr_def *a = type->attrs; a && a->name; a++)
			if ((a->flags & AF_M) && (!json_object_get(in, a->name) ||
						  json_is_null(json_object_get(in, a->name))))
				return ctx_fail(ctx, RSC_BAD_REQUEST,
						"mandatory attribute \"%s\" missing", a->name);
	return 0;
}

static int check_labels(struct hcse_ctx *ctx, json_t *lbl)
{
	const struct hcse_config *c = &ctx->cse->config;
	size_t i;
	json_t *v;

	if (!lbl || json_is_null(lbl))
		return 0;
	if (json_array_size(lbl) > c->max_labels)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "too many labels");
	json_array_foreach (lbl, i, v) {
		size_t n = strlen(json_string_value(v));

		if (n == 0 || n > c->max_label_len)
			return ctx_fail(ctx, RSC_BAD_REQUEST, "label too long or empty");
	}
	return 0;
}

/* acpi must name existing accessControlPolicy resources (TS-0004 9.6.1.3.2). */
static int check_acpi(struct hcse_ctx *ctx, json_t *acpi)
{
	size_t i;
	json_t *v;

	if (!acpi || json_is_null(acpi))
		return 0;
	if (json_array_size(acpi) > 32)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "too many acpi entries");
	json_array_foreach (acpi, i, v) {
		struct store_res acp = {0};
		const char *id = json_string_value(v);
		int r = store_get_by_ri(ctx->t, id, false, &acp);

		if (r == -ENOENT)
			r = store_get_by_path(ctx->t, id, false, &acp);
		if (r == -ENOENT || (r == 0 && (acp.ty != TY_ACP || is_expired(ctx, &acp)))) {
			store_res_clear(&acp);
			return ctx_fail(ctx, RSC_BAD_REQUEST, "acpi names an unknown ACP \"%s\"",
					id);
		}
		store_res_clear(&acp);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Attributes, labels and acpi of a Create or Update content (TS-0004 7.3.3.x). */
static int check_content(struct hcse_ctx *ctx, const struct resource_type *type, json_t *in,
			 bool create)
{
	int r = validate_attrs(ctx, type, in, create);

	if (r >= 0)
		r = check_labels(ctx, json_object_get(in, "lbl"));
	if (r >= 0)
		/* acpi: null and [] remove it; unknown ACPs are refused (4000) */
		r = check_acpi(ctx, json_object_get(in, "acpi"));
	return r;
}

/* The single "m2m:xxx" member of a request Content, or a ctx_fail. */
static int content_of(struct hcse_ctx *ctx, const struct resource_type *type, json_t **ret)
{
	json_t *pc = ctx->req->pc, *in;

	if (!json_is_object(pc) || json_object_size(pc) != 1)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "content must be one %s object", type->tn);
	in = json_object_get(pc, type->tn);
	if (!json_is_object(in))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "content must be one %s object", type->tn);
	*ret = in;
	return 0;
}

/*
 * A new resourceID (TS-0001 7.2: unique in the CSE, any form): a strictly
 * increasing microsecond count and 16 random bits. Increasing, so that
 * the ri and path indexes grow at their end and the creates of one group
 * commit share index pages (fewer WAL frames per create); random bits
 * still keep ids of two CSE databases apart.
 */
static void random_id(const char *prefix, char buf[64])
{
	static _Atomic uint64_t last;
	/* a thread's own generator, seeded once (no getrandom per id) */
	static _Thread_local uint64_t rnd;
	struct timespec ts;
	uint64_t t, prev;

	if (!rnd)
		rnd = ((uint64_t)arc4random() << 32 | arc4random()) | 1;
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	prev = atomic_load(&last);
	do {
		if (t <= prev)
			t = prev + 1;
	} while (!atomic_compare_exchange_weak(&last, &prev, t));
	snprintf(buf, 64, "%s%012" PRIx64 "%04x", prefix, t & UINT64_C(0xffffffffffff),
		 (unsigned)(rnd & 0xffff));
}

/* ---- result content (TS-0004 6.3.4.2.7, Table 7.5.2-2) ---------------- */

struct child_ctx {
	struct hcse_ctx *ctx;
	struct render *rd;
	int rcn;
	json_t *out; /* rcn 4/8: object of arrays by type name; 5/6: array of refs */
	int64_t skip, left;
	bool hide_cin; /* the parent container's disableRetrieval */
};

static bool has_label(const struct store_res *r, char *const *labels, size_t n)
{
	json_t *lbl = json_object_get(r->attrs, "lbl"), *v;
	size_t i;

	json_array_foreach (lbl, i, v)
		for (size_t k = 0; k < n; k++)
			if (strcmp(json_string_value(v), labels[k]) == 0)
				return true;
	return false;
}

bool filter_match(const struct hcse_filter *fc, const struct store_res *r)
{
	/* stateTag: container and contentInstance; contentSize: contentInstance */
	bool has_st = r->ty == TY_CNT || r->ty == TY_CIN;
	const char *lt = json_string_value(json_object_get(r->attrs, "lt"));

	/* 7.3.3.17.1: createdAfter <= ct < createdBefore (basic ISO 8601
	 * timestamps of one length compare as strings) */
	if ((fc->cra[0] && strcmp(r->ct, fc->cra) < 0) || (fc->crb[0] && strcmp(r->ct, fc->crb) >= 0))
		return false;
	/* 7.3.3.17.2: modifiedSince <= lt < unmodifiedSince */
	if ((fc->ms[0] || fc->us[0]) && !lt)
		return false;
	if ((fc->ms[0] && strcmp(lt, fc->ms) < 0) || (fc->us[0] && strcmp(lt, fc->us) >= 0))
		return false;
	/* 7.3.3.17.3: stateTagBigger <= st < stateTagSmaller */
	if ((fc->sts >= 0 || fc->stb >= 0) &&
	    (!has_st || (fc->sts >= 0 && r->st >= fc->sts) || (fc->stb >= 0 && r->st < fc->stb)))
		return false;
	/* 7.3.3.17.4: expireAfter <= et < expireBefore */
	if ((fc->exa && r->et < fc->exa) || (fc->exb && r->et >= fc->exb))
		return false;
	/* 7.3.3.17.7: sizeAbove <= cs < sizeBelow */
	if ((fc->sza >= 0 || fc->szb >= 0) &&
	    (r->ty != TY_CIN || (fc->sza >= 0 && r->cs < fc->sza) || (fc->szb >= 0 && r->cs >= fc->szb)))
		return false;
	return true;
}

static int child_cb(struct store_res *r, void *userdata)
{
	struct child_ctx *c = userdata;
	const struct hcse_filter *fc = &c->ctx->req->fc;
	const struct resource_type *type = resource_type_find(r->ty);
	bool ty_ok = fc->n_tys == 0;

	if (is_expired(c->ctx, r) || !type)
		return 0;
	if (c->hide_cin && r->ty == TY_CIN)
		return 0;
	for (size_t i = 0; i < fc->n_tys; i++)
		ty_ok |= fc->tys[i] == r->ty;
	if (!ty_ok || (fc->n_labels && !has_label(r, fc->labels, fc->n_labels)))
		return 0;
	if (!filter_match(fc, r))
		return 0;
	if (c->skip > 0) {
		c->skip--;
		return 0;
	}
	if (c->left == 0)
		return 1;
	if (c->left > 0)
		c->left--;
	if (c->rcn == 4 || c->rcn == 8) {
		json_t *arr = json_object_get(c->out, type->tn);
		json_t *j = render_res(c->rd, c->ctx->cse, r);

		if (!j)
			return -ENOMEM;
		if (!arr) {
			arr = json_array();
			json_object_set_new(c->out, type->tn, arr);
		}
		json_array_append_new(arr, j);
	} else {
		/* m2m:childResourceRef: name, type, structured address */
		json_array_append_new(
		    c->out, json_pack("{s:s,s:i,s:s}", "nm", r->rn, "typ", r->ty, "val", r->path));
	}
	return 0;
}

static int collect_children(struct hcse_ctx *ctx, struct render *rd, const struct store_res *res,
			    int rcn, json_t *out)
{
	const struct hcse_filter *fc = &ctx->req->fc;
	/* children are returned in full (con included for rcn 4/8): a local
	 * policy bounds how many, so one Retrieve cannot load a container of
	 * any size into memory (TS-0004 7.3.3.17: lim; 1,000 when absent) */
	struct child_ctx c = {
	    .ctx = ctx,
	    .rd = rd,
	    .rcn = rcn,
	    .out = out,
	    .skip = fc->ofst,
	    .left = fc->lim < 0			  ? HCSE_DEFAULT_CHILDREN
		    : fc->lim > HCSE_MAX_CHILDREN ? HCSE_MAX_CHILDREN
						  : fc->lim,
	    /* a representation of a child is a Retrieve of it (TS-0004 7.4.7.2.2) */
	    .hide_cin = (rcn == 4 || rcn == 8) && resource_cnt_disr(res),
	};

	return store_children(ctx->t, res->ri, fc->n_tys == 1 ? fc->tys[0] : 0, false,
			      rcn == 4 || rcn == 8, -1, 0, child_cb, &c);
}

/* Builds the response Content for res and rcn (already validated). */
static int render_result(struct hcse_ctx *ctx, struct store_res *res, int rcn, json_t *given,
			 struct hcse_response *resp)
{
	const struct resource_type *type = resource_type_find(res->ty);
	_cleanup_json_ json_t *root = NULL;
	struct render rd = {0};
	json_t *j;
	int r = 0;

	if (rcn == 0)
		return 0;
	j = render_res(&rd, ctx->cse, res);
	if (!j) {
		render_clear(&rd);
		return -ENOMEM;
	}
	switch (rcn) {
	case 1:
	case 7:
		if (ctx->req->n_atrl) {
			/* partial retrieve (TS-0004 7.3.3.x attributeList) */
			json_t *part = json_object();

			for (size_t i = 0; i < ctx->req->n_atrl; i++) {
				json_t *v = json_object_get(j, ctx->req->atrl[i]);

				char probe[80];

				snprintf(probe, sizeof(probe), ",%s,", ctx->req->atrl[i]);
				if (!v && !attr_find(type, ctx->req->atrl[i]) &&
				    !strstr(",ri,pi,ty,ct,lt,et,st,cni,cbs,cs,con,aei,", probe)) {
					json_decref(part);
					json_decref(j);
					render_clear(&rd);
					return ctx_fail(ctx, RSC_BAD_REQUEST,
							"unknown attribute in atrl");
				}
				if (v)
					json_object_set(part, ctx->req->atrl[i], v);
			}
			json_decref(j);
			j = part;
		}
		root = json_pack("{s:o}", type->tn, j);
		break;
	case 2:
		json_decref(j);
		root = json_pack("{s:s}", "m2m:uri", res->path);
		break;
	case 3:
		root = json_pack("{s:{s:o,s:s}}", "m2m:rce", type->tn, j, "uri", res->path);
		break;
	case 9: {
		/* modified attributes: those the Hosting CSE set beyond the request */
		json_t *mod = json_object();
		const char *key;
		json_t *v;

		json_object_foreach (j, key, v) {
			json_t *g = given ? json_object_get(given, key) : NULL;

			if (!g || !json_equal(g, v))
				json_object_set(mod, key, v);
		}
		json_decref(j);
		root = json_pack("{s:o}", type->tn, mod);
		break;
	}
	case 4:
		r = collect_children(ctx, &rd, res, 4, j);
		root = json_pack("{s:o}", type->tn, j);
		break;
	case 5: {
		json_t *ch = json_array();

		r = collect_children(ctx, &rd, res, 5, ch);
		json_object_set_new(j, "ch", ch);
		root = json_pack("{s:o}", type->tn, j);
		break;
	}
	case 6: {
		json_t *rrf = json_array();

		json_decref(j);
		r = collect_children(ctx, &rd, res, 6, rrf);
		root = json_pack("{s:{s:o}}", "m2m:rrl", "rrf", rrf);
		break;
	}
	case 8: {
		json_t *kids = json_object();

		json_decref(j);
		r = collect_children(ctx, &rd, res, 8, kids);
		root = json_pack("{s:o}", type->tn, kids);
		break;
	}
	default:
		json_decref(j);
		render_clear(&rd);
		return ctx_fail(ctx, RSC_BAD_REQUEST, "rcn %d not valid here", rcn);
	}
	if (r >= 0)
		r = root ? render_dump(&rd, root, resp) : -ENOMEM;
	render_clear(&rd);
	return r;
}

/* ---- notifications ----------------------------------------------------- */

struct sub_ctx {
	struct hcse_ctx *ctx;
	json_t *subs;
	const char *skip_ri; /* the resource the event is about */
};

static int sub_collect_cb(struct store_res *r, void *userdata)
{
	struct sub_ctx *s = userdata;

	if (is_expired(s->ctx, r) || (s->skip_ri && strcmp(s->skip_ri, r->ri) == 0))
		return 0;
	json_array_append_new(s->subs, json_pack("{s:s,s:O}", "path", r->path, "attrs", r->attrs));
	return 0;
}

int resource_nu_target(struct hcse_ctx *ctx, const char *nu, struct store_res *ret)
{
	int r;

	if (strncmp(nu, "http://", 7) == 0 || strncmp(nu, "https://", 8) == 0)
		return -ENOENT;
	r = store_get_by_aei(ctx->t, nu, ret);
	if (r == -ENOENT)
		r = store_get_by_ri(ctx->t, nu, false, ret);
	if (r == -ENOENT)
		r = store_get_by_path(ctx->t, nu, false, ret);
	if (r == 0 && is_expired(ctx, ret)) {
		store_res_clear(ret);
		r = -ENOENT;
	}
	return r;
}

/* URLs a notification URI stands for: itself (http/https) or the poa of the
 * AE it names (TS-0004 7.5.1.2.x notificationURI as an AE-ID). */
static void nu_targets(struct hcse_ctx *ctx, const char *nu, json_t *urls)
{
	struct store_res ae = {0};
	json_t *poa, *v;
	size_t i;

	if (strncmp(nu, "http://", 7) == 0 || strncmp(nu, "https://", 8) == 0) {
		json_array_append_new(urls, json_string(nu));
		return;
	}
	if (resource_nu_target(ctx, nu, &ae) < 0)
		return;
	poa = json_object_get(ae.attrs, "poa");
	json_array_foreach (poa, i, v) {
		const char *u = json_string_value(v);

		if (u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0))
			json_array_append_new(urls, json_string(u));
	}
	store_res_clear(&ae);
}

static bool net_selected(json_t *sub_attrs, int net)
{
	json_t *nets = json_object_get(json_object_get(sub_attrs, "enc"), "net"), *v;
	size_t i;

	if (!json_array_size(nets))
		return net == 1; /* default: update of the resource (TS-0004 7.4.8.1) */
	json_array_foreach (nets, i, v)
		if (json_integer_value(v) == net)
			return true;
	return false;
}

static void queue_event(struct hcse_ctx *ctx, json_t *sub, json_t *sgn)
{
	json_t *urls = json_array(), *nu = json_object_get(json_object_get(sub, "attrs"), "nu"), *v,
	       *u;
	size_t i, k;

	json_array_foreach (nu, i, v)
		if (json_is_string(v))
			nu_targets(ctx, json_string_value(v), urls);
	json_array_foreach (urls, k, u)
		json_array_append_new(ctx->events, json_pack("{s:O,s:O}", "url", u, "body", sgn));
	json_decref(urls);
}

/* expirationCounter (TS-0004 7.4.8.1): each notification counts down; at 0
 * the subscription is deleted (which sends its subscriptionDeletion). */
static int count_down(struct hcse_ctx *ctx, const char *path)
{
	struct store_res sub = {0};
	int r = store_get_by_path(ctx->t, path, false, &sub);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_int_t left = json_integer_value(json_object_get(sub.attrs, "exc")) - 1;
	if (left <= 0)
		r = resource_delete(ctx, &sub);
	else {
		json_object_set_new(sub.attrs, "exc", json_integer(left));
		r = store_update(ctx->t, &sub);
	}
	store_res_clear(&sub);
	return r;
}

/* TS-0004 6.3.5.62: the representation for one nct. full is built once
 * and cached in *full (the resource, with a contentInstance's con). */
static json_t *notify_rep(struct hcse_ctx *ctx, const struct notify_event *ev, json_int_t nct,
			  json_t **full)
{
	const struct store_res *res = ev->res;
	const char *tn = resource_type_find(res->ty)->tn;
	json_t *j, *part, *v;
	const char *key;

	if (nct == 3) /* ResourceID: m2m:uri */
		return json_pack("{s:s}", "m2m:uri", res->ri);
	if (!*full) {
		j = resource_to_json(ctx->cse, res);
		if (j && res->con && res->con_len <= 65536) {
			json_t *c = json_loadb(res->con, res->con_len, JSON_DECODE_ANY, NULL);

			if (c)
				json_object_set_new(j, "con", c);
		}
		*full = json_pack("{s:o}", tn, j);
		if (!*full)
			return NULL;
	}
	if (nct != 2 || !ev->modified) /* All Attributes */
		return json_incref(*full);
	/* Modified Attributes: what the request set (null: removed), and lt */
	j = json_object_get(*full, tn);
	part = json_object();
	json_object_foreach (ev->modified, key, v) {
		json_t *now = json_object_get(j, key);

		json_object_set(part, key, now ? now : json_null());
	}
	json_object_set(part, "lt", json_object_get(j, "lt"));
	return json_pack("{s:o}", tn, part);
}

int resource_notify(struct hcse_ctx *ctx, const struct store_res *subject,
		    const struct notify_event *ev)
{
	struct sub_ctx s = {
	    .ctx = ctx,
	    .subs = json_array(),
	    /* a new subscription is not told of its own creation */
	    .skip_ri = ev->res->ri,
	};
	_cleanup_json_ json_t *full = NULL;
	json_t *sub;
	size_t i;
	int r;

	if (!ctx->cse->config.notify || !s.subs) {
		json_decref(s.subs);
		return 0;
	}
	r = store_children(ctx->t, subject->ri, TY_SUB, false, false, -1, 0, sub_collect_cb, &s);
	json_array_foreach (s.subs, i, sub) {
		json_t *attrs = json_object_get(sub, "attrs");
		json_t *rep, *sgn;

		if (!net_selected(attrs, ev->net))
			continue;
		rep = notify_rep(ctx, ev, json_integer_value(json_object_get(attrs, "nct")), &full);
		/* TS-0004 7.5.1.2.2: m2m:notification with notificationEvent */
		sgn = rep ? json_pack("{s:{s:{s:o,s:i},s:O}}", "m2m:sgn", "nev", "rep", rep, "net",
				      ev->net, "sur", json_object_get(sub, "path"))
			  : NULL;
		if (sgn)
			queue_event(ctx, sub, sgn);
		json_decref(sgn);
		if (r >= 0 && json_object_get(attrs, "exc"))
			r = count_down(ctx, json_string_value(json_object_get(sub, "path")));
	}
	json_decref(s.subs);
	return r;
}

/* ---- delete and eviction ----------------------------------------------- */

struct path_list_ctx {
	struct hcse_ctx *ctx;
	json_t *list;
};

static int path_list_cb(struct store_res *r, void *userdata)
{
	struct path_list_ctx *p = userdata;

	json_array_append_new(p->list, json_pack("{s:s,s:O}", "path", r->path, "attrs", r->attrs));
	return 0;
}

int resource_delete(struct hcse_ctx *ctx, struct store_res *res)
{
	int r;

	if (res->ty == TY_CIN && res->pi) {
		struct store_res cnt = {0};

		/* TS-0004 7.4.7.2.4: the parent's cni and cbs follow */
		r = store_get_by_ri(ctx->t, res->pi, false, &cnt);
		if (r == 0) {
			cnt.cni = cnt.cni > 0 ? cnt.cni - 1 : 0;
			cnt.cbs = cnt.cbs > res->cs ? cnt.cbs - res->cs : 0;
			r = store_update_counters(ctx->t, &cnt);
		}
		store_res_clear(&cnt);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (ctx->cse->config.notify && res->ty != TY_CIN) {
		/* subscriptions in the subtree are deleted with it: tell their
		 * subscribers (TS-0004 7.4.8.2.4, subscriptionDeletion) */
		const int ty_sub = TY_SUB;
		struct store_filter f = {.base_path = res->path, .tys = &ty_sub, .n_tys = 1};
		struct path_list_ctx p = {.ctx = ctx, .list = json_array()};
		json_t *sub;
		size_t i;

		r = store_find(ctx->t, &f, path_list_cb, &p);
		if (res->ty == TY_SUB)
			path_list_cb(res, &p);
		json_array_foreach (p.list, i, sub) {
			json_t *sgn = json_pack("{s:{s:b,s:O}}", "m2m:sgn", "sud", 1, "sur",
						json_object_get(sub, "path"));
			if (sgn)
				queue_event(ctx, sub, sgn);
			json_decref(sgn);
		}
		json_decref(p.list);
		if (r < 0)
			return r;
	}
	if (ctx->cse->config.notify && res->pi) {
		struct store_res parent = {0};

		if (store_get_by_ri(ctx->t, res->pi, false, &parent) == 0) {
			/* TS-0004 7.5.1.2.2: net 4, deletion of a direct child */
			struct notify_event ev = {.net = 4, .res = res};

			r = resource_notify(ctx, &parent, &ev);
		}
		store_res_clear(&parent);
	}
	r = store_delete_subtree(ctx->t, res->path);
	if (r < 0)
		return r;
	ctx->n_created -= r;
	return 0;
}

int resource_cnt_evict(struct hcse_ctx *ctx, struct store_res *cnt, bool only_counters)
{
	json_t *mni = json_object_get(cnt->attrs, "mni"), *mbs = json_object_get(cnt->attrs, "mbs");

	/* TS-0004 7.4.7.2.1: when cni or cbs exceed mni or mbs, the oldest
	 * contentInstances are removed until both hold again. */
	while ((mni && cnt->cni > json_integer_value(mni)) ||
	       (mbs && cnt->cbs > json_integer_value(mbs))) {
		struct store_res old = {0};
		int r = cnt_edge(ctx, cnt, false, false, &old);

		if (r < 0) {
			if (ctx->rsc == RSC_NOT_FOUND) {
				ctx->rsc = 0;
				break;
			}
			return r;
		}
		r = store_delete_subtree(ctx->t, old.path);
		if (r > 0)
			ctx->n_created -= r;
		cnt->cni = cnt->cni > 0 ? cnt->cni - 1 : 0;
		cnt->cbs = cnt->cbs > old.cs ? cnt->cbs - old.cs : 0;
		store_res_clear(&old);
		if (r < 0)
			return r;
	}
	return only_counters ? store_update_counters(ctx->t, cnt) : store_update(ctx->t, cnt);
}

/* ---- the operations ------------------------------------------------------ */

struct op {
	struct hcse_ctx ctx;
	struct hcse_response *resp;
	char ri[64]; /* Create: preassigned resourceID (subscriptions verify first) */
	/* Create: the new resource and the content given, rendered into the
	 * response after the commit, outside the store's write lock */
	struct store_res created;
	json_t *given;
};

static bool rcn_allowed(enum hcse_op op, int rcn)
{
	/* TS-0004 Table 7.5.2-2 / TS-0001 Table 8.1.2-1 */
	switch (op) {
	case HCSE_OP_CREATE:
		return rcn == 0 || rcn == 1 || rcn == 2 || rcn == 3 || rcn == 9;
	case HCSE_OP_RETRIEVE:
		return rcn == 1 || rcn == 4 || rcn == 5 || rcn == 6 || rcn == 7 || rcn == 8;
	case HCSE_OP_UPDATE:
		return rcn == 0 || rcn == 1 || rcn == 9;
	case HCSE_OP_DELETE:
		return rcn == 0 || rcn == 1 || rcn == 4 || rcn == 5 || rcn == 6 || rcn == 8;
	default:
		return false;
	}
}

/* TS-0004 7.3.3.1 (Create, generic Hosting CSE procedure) */
static int op_create(struct store_txn *t, void *userdata)
{
	struct op *o = userdata;
	struct hcse_ctx *ctx = &o->ctx;
	const struct hcse_request *req = ctx->req;
	const struct hcse_config *conf = &ctx->cse->config;
	const struct resource_type *type = resource_type_find(req->ty);
	_cleanup_(store_res_clear) struct store_res parent = {0};
	_cleanup_(store_res_clear) struct store_res res = {0};
	_cleanup_json_ json_t *given = NULL;
	json_t *in, *v;
	char ribuf[64];
	int64_t et;
	int r;

	ctx->t = t;
	r = resolve(ctx, req->to, false, false, &parent, NULL);
	if (r < 0)
		return r;
	if (!type)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "unsupported resource type %d", req->ty);
	if (type->ty == TY_CB)
		return ctx_fail(ctx, RSC_OPERATION_NOT_ALLOWED, "a CSEBase cannot be created");
	bool parent_ok = false;
	for (const int *p = type->parents; *p; p++)
		parent_ok |= *p == parent.ty;
	if (!parent_ok)
		return ctx_fail(ctx, RSC_INVALID_CHILD_RESOURCE_TYPE,
				"resource type %d cannot be a child of type %d", type->ty,
				parent.ty);
	r = content_of(ctx, type, &in);
	if (r < 0)
		return r;
	/* AE registration is governed by its own rules (TS-0004 7.3.5.2.1) */
	if (type->ty != TY_AE) {
		r = acp_check(ctx, &parent, ACOP_CREATE);
		if (r < 0)
			return r;
	}
	/* TS-0004 7.4.8.2.1 Recv-6.3: a subscriber may retrieve what it watches */
	if (type->ty == TY_SUB) {
		r = acp_check(ctx, &parent, ACOP_RETRIEVE);
		if (r < 0)
			return r;
	}
	r = check_content(ctx, type, in, true);
	if (r < 0)
		return r;
	if ((unsigned)parent.depth + 1 > conf->max_depth)
		return ctx_fail(ctx, RSC_NOT_ACCEPTABLE, "resource tree too deep");

	/* what was given, as given: only rcn 9 (modified attributes) compares
	 * against it, and the attributes below share its values */
	if (req->rcn == 9) {
		given = json_deep_copy(in);
		if (!given)
			return -ENOMEM;
	}
	if (o->ri[0])
		snprintf(ribuf, sizeof(ribuf), "%s", o->ri);
	else
		random_id(type->prefix, ribuf);
	res.ty = type->ty;
	res.ri = strdup(ribuf);
	res.pi = strdup(parent.ri);
	v = json_object_get(in, "rn");
	res.rn = strdup(v ? json_string_value(v) : ribuf);
	res.ct = strdup(ctx->nowstr);
	res.cr = strdup(ctx->fr); /* the creator, for its default rights */
	res.depth = parent.depth + 1;
	res.attrs = json_object();
	if (!res.ri || !res.pi || !res.rn || !res.ct || !res.cr || !res.attrs)
		return -ENOMEM;
	if (v && !is_valid_rn(res.rn))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "invalid resourceName");

	/* et: in the future, and not after the parent's (TS-0004 7.3.3.1 step) */
	et = parent.ty == TY_CB ? ET_FOREVER : parent.et;
	v = json_object_get(in, "et");
	if (v && !json_is_null(v)) {
		int64_t want;

		hcse_parse_time(json_string_value(v), &want);
		if (want <= ctx->now)
			return ctx_fail(ctx, RSC_BAD_REQUEST, "expirationTime is in the past");
		if (want < et)
			et = want;
	}
	res.et = et;
	{
		const char *key;
		json_t *val;

		json_object_foreach (in, key, val) {
			if (json_is_null(val) || strcmp(key, "rn") == 0 || strcmp(key, "et") == 0)
				continue;
			if (strcmp(key, "cr") == 0)
				continue;
			json_object_set(res.attrs, key, val);
		}
	}
	if (json_object_get(in, "cr"))
		json_object_set_new(res.attrs, "_cr", json_true());
	/* lbl/acpi given as [] are the same as absent */
	if (json_array_size(json_object_get(res.attrs, "acpi")) == 0)
		json_object_del(res.attrs, "acpi");
	json_object_set_new(res.attrs, "lt", json_string(ctx->nowstr));

	if (asprintf(&res.path, "%s/%s", parent.path, res.rn) < 0) {
		res.path = NULL;
		return -ENOMEM;
	}
	if (type->create) {
		r = type->create(ctx, &parent, &res);
		if (r < 0)
			return r;
	}
	/* a counter, not count(*): concurrent creates may pass it by a few */
	if (conf->max_resources &&
	    (uint64_t)(atomic_load(&ctx->cse->n_resources) + ctx->n_created) >= conf->max_resources)
		return ctx_fail(ctx, RSC_NOT_ACCEPTABLE, "resource limit reached");
	/* the path's UNIQUE index finds a sibling of the same name: no lookup first */
	r = store_insert(t, &res);
	if (r == -EEXIST)
		return ctx_fail(ctx, RSC_CONFLICT, "a resource with this name exists");
	if (r < 0)
		return r;
	ctx->n_created++;

	if (type->ty == TY_CIN) {
		/* TS-0004 7.4.7.2.1: cni/cbs/st of the container, then eviction */
		parent.cni++;
		parent.cbs += res.cs;
		r = resource_cnt_evict(ctx, &parent, true);
		if (r < 0)
			return r;
	}
	if (ctx->cse->config.notify) {
		/* TS-0004 7.5.1.2.2: net 3, creation of a direct child (the
		 * representation is only built when a subscription wants it) */
		struct notify_event ev = {.net = 3, .res = &res};

		r = resource_notify(ctx, &parent, &ev);
		if (r < 0)
			return r;
	}

	o->resp->rsc = RSC_CREATED;
	if (asprintf(&o->resp->location, "/%s", res.path) < 0)
		o->resp->location = NULL;
	/* the content is what was given: re-read not needed, res has it;
	 * Create's rcn (0-3, 9) needs no store, so hcse_process() renders
	 * it once the group commit is done, off the write lock */
	o->created = res;
	res = (struct store_res){0};
	o->given = TAKE_PTR(given);
	return 0;
}

static int op_retrieve(struct store_txn *t, void *userdata)
{
	struct op *o = userdata;
	struct hcse_ctx *ctx = &o->ctx;
	const struct hcse_request *req = ctx->req;
	_cleanup_(store_res_clear) struct store_res res = {0};
	enum virt virt;
	int rcn = req->rcn < 0 ? 1 : req->rcn;
	int r;

	ctx->t = t;
	r = resolve(ctx, req->to, true, true, &res, &virt);
	if (r < 0)
		return r;
	if (req->fc.fu == 1 && virt == VIRT_NONE) {
		_cleanup_json_ json_t *out = NULL;

		/* TS-0004 7.3.3.x discovery: per-result DISCOVER privilege */
		r = discovery_run(ctx, &res, &out);
		if (r < 0)
			return r;
		o->resp->rsc = RSC_OK;
		return response_json(o->resp, out);
	}
	r = acp_check(ctx, &res, ACOP_RETRIEVE);
	if (r < 0)
		return r;
	r = resource_cnt_disr_check(ctx, &res, virt != VIRT_NONE);
	if (r < 0)
		return r;
	if (virt != VIRT_NONE) {
		struct store_res cnt = res;

		res = (struct store_res){0};
		r = cnt_edge(ctx, &cnt, virt == VIRT_LA, true, &res);
		store_res_clear(&cnt);
		if (r < 0)
			return r;
	}
	if (!rcn_allowed(HCSE_OP_RETRIEVE, rcn))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "rcn %d not valid for Retrieve", rcn);
	o->resp->rsc = RSC_OK;
	return render_result(ctx, &res, rcn, NULL, o->resp);
}

/* TS-0004 7.3.3.x (Update, generic Hosting CSE procedure) */
static int op_update(struct store_txn *t, void *userdata)
{
	struct op *o = userdata;
	struct hcse_ctx *ctx = &o->ctx;
	const struct hcse_request *req = ctx->req;
	_cleanup_(store_res_clear) struct store_res res = {0};
	const struct resource_type *type;
	_cleanup_json_ json_t *before = NULL;
	enum virt virt;
	json_t *in, *v;
	const char *key;
	int r;

	ctx->t = t;
	r = resolve(ctx, req->to, true, false, &res, &virt);
	if (r < 0)
		return r;
	if (virt != VIRT_NONE)
		return ctx_fail(ctx, RSC_OPERATION_NOT_ALLOWED, "la/ol cannot be updated");
	type = resource_type_find(res.ty);
	if (res.ty == TY_CIN)
		/* TS-0004 7.4.7.2.3: Update of a contentInstance is not allowed */
		return ctx_fail(ctx, RSC_OPERATION_NOT_ALLOWED,
				"a contentInstance cannot be updated");
	r = acp_check(ctx, &res, ACOP_UPDATE);
	if (r < 0)
		return r;
	r = content_of(ctx, type, &in);
	if (r < 0)
		return r;
	r = check_content(ctx, type, in, false);
	if (r < 0)
		return r;
	if (req->rcn == 9) {
		before = resource_to_json(ctx->cse, &res);
		if (!before)
			return -ENOMEM;
	}
	json_object_foreach (in, key, v) {
		if (strcmp(key, "et") == 0) {
			int64_t want;

			hcse_parse_time(json_string_value(v), &want);
			if (want <= ctx->now)
				return ctx_fail(ctx, RSC_BAD_REQUEST,
						"expirationTime is in the past");
			res.et = want;
		} else if (json_is_null(v) || (strcmp(key, "acpi") == 0 && json_array_size(v) == 0))
			json_object_del(res.attrs, key);
		else
			json_object_set(res.attrs, key, v);
	}
	json_object_set_new(res.attrs, "lt", json_string(ctx->nowstr));
	if (type->update) {
		r = type->update(ctx, &res, in);
		if (r < 0)
			return r;
	}
	if (res.ty == TY_CNT) {
		res.st++; /* stateTag: every modification (TS-0004 7.4.6.1) */
		r = resource_cnt_evict(ctx, &res, false); /* also stores res */
	} else
		r = store_update(t, &res);
	if (r < 0)
		return r;
	if (ctx->cse->config.notify) {
		/* TS-0004 7.5.1.2.2: net 1, update of the resource */
		struct notify_event ev = {.net = 1, .res = &res, .modified = in};

		r = resource_notify(ctx, &res, &ev);
		if (r < 0)
			return r;
	}
	o->resp->rsc = RSC_UPDATED;
	/* rcn 9 (TS-0004 7.2.1.2): what changed beyond the request, not what
	 * stayed as it was */
	if (before && json_object_update(before, in) < 0)
		return -ENOMEM;
	return render_result(ctx, &res, req->rcn < 0 ? 1 : req->rcn, before ? before : in, o->resp);
}

static int op_delete(struct store_txn *t, void *userdata)
{
	struct op *o = userdata;
	struct hcse_ctx *ctx = &o->ctx;
	const struct hcse_request *req = ctx->req;
	_cleanup_(store_res_clear) struct store_res res = {0};
	enum virt virt;
	int r;

	ctx->t = t;
	r = resolve(ctx, req->to, true, req->rcn > 0, &res, &virt);
	if (r < 0)
		return r;
	if (res.ty == TY_CB)
		return ctx_fail(ctx, RSC_OPERATION_NOT_ALLOWED, "the CSEBase cannot be deleted");
	r = acp_check(ctx, &res, ACOP_DELETE);
	if (r < 0)
		return r;
	r = resource_cnt_disr_check(ctx, &res, virt != VIRT_NONE);
	if (r < 0)
		return r;
	if (virt != VIRT_NONE) {
		struct store_res cnt = res;

		res = (struct store_res){0};
		r = cnt_edge(ctx, &cnt, virt == VIRT_LA, req->rcn > 0, &res);
		store_res_clear(&cnt);
		if (r < 0)
			return r;
	}
	o->resp->rsc = RSC_DELETED;
	if (req->rcn > 0) {
		r = render_result(ctx, &res, req->rcn, NULL, o->resp);
		if (r < 0)
			return r;
	}
	return resource_delete(ctx, &res);
}

static bool is_supported_rvi(const char *rvi)
{
	static const char *const ok[] = {"1", "2", "2a", "3", "4", "5"};

	for (size_t i = 0; i < ELEMENTSOF(ok); i++)
		if (strcmp(rvi, ok[i]) == 0)
			return true;
	return false;
}

static void flush_events(struct hcse *cse, json_t *events)
{
	json_t *e;
	size_t i;

	json_array_foreach (events, i, e)
		notifier_send(cse->notifier, json_string_value(json_object_get(e, "url")),
			      json_object_get(e, "body"));
}

/* 1 when the originator may create a subscription under parent: CREATE
 * on it, and RETRIEVE of it (TS-0004 7.4.8.2.1 Recv-6.3); else 0. */
static int sub_create_allowed(struct hcse_ctx *ctx, const struct store_res *parent)
{
	bool ok = false;
	int r = acp_allowed(ctx, parent, ACOP_CREATE, &ok);

	if (r >= 0 && ok)
		r = acp_allowed(ctx, parent, ACOP_RETRIEVE, &ok);
	return r < 0 ? r : ok;
}

/* Subscription verification (TS-0004 7.3.8.2.3): before anything is stored,
 * each notification target must accept a verification request. */
static int verify_subscription(struct op *o)
{
	struct hcse_ctx *ctx = &o->ctx;
	json_t *sub = json_object_get(ctx->req->pc, "m2m:sub");
	json_t *nu = json_object_get(sub, "nu"), *v, *rn = json_object_get(sub, "rn");
	_cleanup_json_ json_t *urls = json_array();
	_cleanup_free_ char *sur = NULL;
	size_t i;

	struct store_res parent = {0};
	int r;

	if (!json_is_array(nu) || !urls)
		return 0; /* the Create itself reports the bad content */
	r = resolve(ctx, ctx->req->to, false, false, &parent, NULL);
	if (r < 0) {
		ctx->rsc = 0; /* likewise */
		return r == -EPROTO ? 0 : r;
	}
	/* nothing is sent for an originator the Create will refuse anyway */
	r = sub_create_allowed(ctx, &parent);
	if (r <= 0) {
		store_res_clear(&parent);
		return r;
	}
	/* TS-0004 7.5.1.2.3: a target hosted here is verified here (NOTIFY) */
	r = resource_sub_nu_check(ctx, nu);
	if (r < 0) {
		store_res_clear(&parent);
		return r;
	}
	if (!ctx->cse->config.notify) {
		store_res_clear(&parent);
		return 0;
	}
	random_id("sub", o->ri);
	/* the structured address, as in the notifications that follow */
	r = asprintf(&sur, "%s/%s", parent.path,
		     json_is_string(rn) ? json_string_value(rn) : o->ri);
	store_res_clear(&parent);
	if (r < 0)
		return -ENOMEM;
	json_array_foreach (nu, i, v) {
		if (!json_is_string(v))
			continue;
		/* the originator itself needs no verification (TS-0004 7.3.8.2.3) */
		if (strcmp(json_string_value(v), ctx->fr) == 0)
			continue;
		nu_targets(ctx, json_string_value(v), urls);
	}
	json_array_foreach (urls, i, v) {
		_cleanup_json_ json_t *vrq =
		    json_pack("{s:{s:b,s:s,s:s}}", "m2m:sgn", "vrq", 1, "sur", sur, "cr", ctx->fr);
		if (notifier_send_sync(ctx->cse->notifier, json_string_value(v), vrq, NULL) < 0)
			return ctx_fail(ctx, RSC_SUBSCRIPTION_VERIFICATION_INITIATION_FAILED,
					"verification request to \"%s\" failed",
					json_string_value(v));
	}
	return 0;
}

static int nu_lookup(struct store_txn *t, void *userdata)
{
	struct op *o = userdata;

	o->ctx.t = t;
	return verify_subscription(o);
}

/* Operation names for log lines (TS-0004 6.3.4.2.5 m2m:operation). */
static const char *op_name(enum hcse_op op)
{
	static const char *const names[] = {
		[HCSE_OP_CREATE] = "create", [HCSE_OP_RETRIEVE] = "retrieve",
		[HCSE_OP_UPDATE] = "update", [HCSE_OP_DELETE] = "delete",
		[HCSE_OP_NOTIFY] = "notify",
	};

	return (unsigned)op < ELEMENTSOF(names) && names[op] ? names[op] : "operation";
}

void hcse_process(struct hcse *cse, const struct hcse_request *req, struct hcse_response *resp)
{
	struct op o = {
	    .ctx = {.cse = cse, .req = req, .fr = req->fr ? req->fr : "", .now = time(NULL)},
	    .resp = resp,
	};
	int r;

	hcse_format_time(o.ctx.now, o.ctx.nowstr);
	*resp = (struct hcse_response){.rsc = RSC_INTERNAL_SERVER_ERROR};
	/* "/id-in/Cx" (SP-relative AE-ID of this CSE) is the same originator
	 * as "Cx" (TS-0001 7.2) */
	size_t csi_len = strlen(cse->csi);
	if (strncmp(o.ctx.fr, cse->csi, csi_len) == 0 && o.ctx.fr[csi_len] == '/' &&
	    o.ctx.fr[csi_len + 1])
		o.ctx.fr += csi_len + 1;
	if (req->rvi && !is_supported_rvi(req->rvi)) {
		hcse_response_error(resp, RSC_RELEASE_VERSION_NOT_SUPPORTED,
				    "release version not supported");
		return;
	}
	if (req->rcn >= 0 && !rcn_allowed(req->op, req->rcn)) {
		hcse_response_error(resp, RSC_BAD_REQUEST, "rcn not valid for this operation");
		return;
	}
	o.ctx.events = json_array();
	if (!o.ctx.events) {
		hcse_response_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	switch (req->op) {
	case HCSE_OP_CREATE:
		r = 0;
		if (req->ty == TY_SUB)
			r = store_read(cse->store, nu_lookup, &o);
		if (r >= 0)
			r = store_write(cse->store, op_create, &o);
		if (r >= 0) {
			o.ctx.t = NULL;
			r = render_result(&o.ctx, &o.created, req->rcn < 0 ? 1 : req->rcn, o.given,
					  resp);
		}
		store_res_clear(&o.created);
		json_decref(o.given);
		break;
	case HCSE_OP_RETRIEVE:
		r = store_read(cse->store, op_retrieve, &o);
		break;
	case HCSE_OP_UPDATE:
		r = store_write(cse->store, op_update, &o);
		break;
	case HCSE_OP_DELETE:
		r = store_write(cse->store, op_delete, &o);
		break;
	default:
		r = ctx_fail(&o.ctx, RSC_OPERATION_NOT_ALLOWED, "operation not supported here");
	}
	if (r == -EPROTO && o.ctx.rsc) {
		/* a refusal is an event the operator must see: what, by whom, from where, why */
		if (o.ctx.rsc == RSC_ORIGINATOR_HAS_NO_PRIVILEGE)
			log_notice("%s of '%s' by '%s' from %s refused: %s", op_name(req->op),
				   req->to ? req->to : "", o.ctx.fr, req->peer_addr, o.ctx.dbg);
		hcse_response_error(resp, o.ctx.rsc, o.ctx.dbg);
	} else if (r < 0) {
		log_warning_errno(r, "%s of '%s' by '%s' failed", op_name(req->op),
				  req->to ? req->to : "", o.ctx.fr);
		hcse_response_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
	} else {
		atomic_fetch_add(&cse->n_resources, o.ctx.n_created);
		flush_events(cse, o.ctx.events);
	}
	json_decref(o.ctx.events);
}

/* ---- expiry ------------------------------------------------------------- */

struct expire_ctx {
	struct hcse_ctx ctx;
	json_t *paths;
	int count;
};

static int expired_cb(struct store_res *r, void *userdata)
{
	struct expire_ctx *e = userdata;

	if (r->ty != TY_CB)
		json_array_append_new(e->paths, json_string(r->path));
	return 0;
}

static int expire_txn(struct store_txn *t, void *userdata)
{
	struct expire_ctx *e = userdata;
	json_t *p;
	size_t i;
	int r;

	e->ctx.t = t;
	r = store_expired(t, e->ctx.now, 256, expired_cb, e);
	if (r < 0)
		return r;
	json_array_foreach (e->paths, i, p) {
		struct store_res res = {0};

		if (store_get_by_path(t, json_string_value(p), false, &res) < 0)
			continue; /* went with an expired ancestor */
		r = resource_delete(&e->ctx, &res);
		store_res_clear(&res);
		if (r < 0)
			return r;
		e->count++;
	}
	return 0;
}

int hcse_expire(struct hcse *cse, int64_t now)
{
	struct hcse_request req = {.rcn = -1};
	struct expire_ctx e = {
	    .ctx = {.cse = cse, .req = &req, .fr = cse->admin, .now = now},
	    .paths = json_array(),
	};
	int r;

	e.ctx.events = json_array();
	hcse_format_time(now, e.ctx.nowstr);
	r = store_write(cse->store, expire_txn, &e);
	if (r >= 0) {
		atomic_fetch_add(&cse->n_resources, e.ctx.n_created);
		flush_events(cse, e.ctx.events);
	}
	json_decref(e.ctx.events);
	json_decref(e.paths);
	return r < 0 ? r : e.count;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int ensure_cse_base(struct store_txn *t, void *userdata)
{
	struct hcse *cse = userdata;
	struct store_res cb = {0};
	char now[16];
	int r;

	r = store_get_by_path(t, cse->cse_rn, false, &cb);
	store_res_clear(&cb);
	if (r != -ENOENT)
		return r;
	hcse_format_time(time(NULL), now);
	/* TS-0004 7.4.3: the CSEBase, created by the CSE itself */
	cb = (struct store_res){
	    .ri = cse->cse_ri,
	    .path = cse->cse_rn,
	    .rn = cse->cse_rn,
	    .ty = TY_CB,
	    .depth = 1,
	    .ct = now,
	    .et = ET_FOREVER,
	    .cr = cse->admin,
	    .attrs = json_pack("{s:i,s:s,s:[iiiiii],s:[ssss],s:s}", "cst", 1, "csi", cse->csi,
			       "srt", TY_ACP, TY_AE, TY_CNT, TY_CIN, TY_CB, TY_SUB, "srv", "2a",
			       "3", "4", "5", "lt", now),
	};
	if (!cb.attrs)
		return -ENOMEM;
	r = store_insert(t, &cb);
	json_decref(cb.attrs);
	return r;
}

static int count_resources(struct store_txn *t, void *userdata)
{
	struct hcse *cse = userdata;
	int64_t n = 0;
	int r = store_count(t, &n);

	atomic_store(&cse->n_resources, n);
	return r;
}

int hcse_new(const struct hcse_config *config, struct hcse **ret)
{
	struct hcse *cse = calloc(1, sizeof(*cse));
	int r;

	if (!cse)
		return -ENOMEM;
	cse->config = *config;
	cse->cse_rn = strdup(config->cse_rn ? config->cse_rn : "cse-in");
	cse->cse_ri = strdup(config->cse_ri ? config->cse_ri : "id-in");
	cse->csi = strdup(config->csi ? config->csi : "/id-in");
	cse->admin = strdup(config->admin ? config->admin : "CAdmin");
	cse->db_path = strdup(config->db_path ? config->db_path : "hcsed.db");
	if (!cse->cse_rn || !cse->cse_ri || !cse->csi || !cse->admin || !cse->db_path) {
		hcse_free(cse);
		return -ENOMEM;
	}
	if (cse->csi[0] != '/' || !is_valid_rn(cse->cse_rn) || strchr(cse->cse_ri, '/')) {
		hcse_free(cse);
		return -EINVAL;
	}
	cse->config.cse_rn = cse->cse_rn;
	cse->config.cse_ri = cse->cse_ri;
	cse->config.csi = cse->csi;
	cse->config.admin = cse->admin;
	cse->config.db_path = cse->db_path;
	if (!cse->config.max_depth)
		cse->config.max_depth = 16;
	if (!cse->config.max_labels)
		cse->config.max_labels = 64;
	if (!cse->config.max_label_len)
		cse->config.max_label_len = 256;

	r = store_open(cse->db_path, &cse->store);
	if (r >= 0)
		r = store_write(cse->store, ensure_cse_base, cse);
	if (r >= 0)
		r = store_read(cse->store, count_resources, cse);
	if (r >= 0 && cse->config.notify)
		r = notifier_new(cse->csi, &cse->notifier);
	if (r < 0) {
		hcse_free(cse);
		return r;
	}
	*ret = cse;
	return 0;
}

int hcse_set_admin(struct hcse *cse, const char *admin)
{
	char *n = strdup(admin), **more = realloc(cse->retired, (cse->n_retired + 1) * sizeof(char *));

	if (!n || !more) {
		free(n);
		if (more)
			cse->retired = more;
		return -ENOMEM;
	}
	cse->retired = more;
	/* freed with the CSE: a request may be comparing against it now */
	cse->retired[cse->n_retired++] = atomic_exchange(&cse->admin, n);
	return 0;
}

struct hcse *hcse_free(struct hcse *cse)
{
	if (!cse)
		return NULL;
	for (size_t i = 0; i < cse->n_retired; i++)
		free(cse->retired[i]);
	free(cse->retired);
	notifier_free(cse->notifier);
	store_free(cse->store);
	free(cse->cse_rn);
	free(cse->cse_ri);
	free(cse->csi);
	free(cse->admin);
	free(cse->db_path);
	free(cse);
	return NULL;
}
