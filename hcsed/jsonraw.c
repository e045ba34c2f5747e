/* SPDX-License-Identifier: Apache-2.0 */
/* Finds a contentInstance's "con" as raw JSON text, so it is stored exactly as given. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hcse.h"

#define MAX_NESTING 64

struct scan {
	const char *p, *end;
	int depth;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(const char *p, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -EINVAL;
		v = v << 4 | (unsigned)h;
	}
	*ret = v;
	return 0;
}

/* Length of a valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A string at s->p (the opening quote); *ret_size: its decoded byte length. */
static int skip_string(struct scan *s, int64_t *ret_size)
{
	int64_t size = 0;

	if (s->p >= s->end || *s->p != '"')
		return -EINVAL;
	s->p++;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			s->p++;
			if (ret_size)
				*ret_size = size;
			return 0;
		}
		if (c < 0x20)
			return -EINVAL;
		if (c == '\\') {
			unsigned cp, lo;

			if (s->end - s->p < 2)
				return -EINVAL;
			switch (s->p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				s->p += 2;
				size++;
				continue;
			case 'u':
				if (s->end - s->p < 6 || hex4(s->p + 2, &cp) < 0)
					return -EINVAL;
				s->p += 6;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (s->end - s->p < 6 || s->p[0] != '\\' ||
					    s->p[1] != 'u' || hex4(s->p + 2, &lo) < 0 ||
					    lo < 0xdc00 || lo > 0xdfff)
						return -EINVAL;
					s->p += 6;
					size += 4;
				} else if (cp >= 0xdc00 && cp <= 0xdfff)
					return -EINVAL;
				else
					size += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
				continue;
			default:
				return -EINVAL;
			}
		}
		size_t n = utf8_len((const unsigned char *)s->p, (const unsigned char *)s->end);
		if (n == 0)
			return -EINVAL;
		s->p += n;
		size += (int64_t)n;
	}
	return -EINVAL;
}

static int skip_value(struct scan *s, int64_t *ret_size);

static int skip_number(struct scan *s)
{
	const char *start = s->p;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return -EINVAL;
	if (*s->p == '0')
		s->p++;
	else if (*s->p >= '1' && *s->p <= '9')
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	else
		return -EINVAL;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return -EINVAL;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return -EINVAL;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	return s->p > start ? 0 : -EINVAL;
}

static int skip_container(struct scan *s, char close)
{
	bool first = true;

	if (++s->depth > MAX_NESTING)
		return -EINVAL;
	s->p++;
	for (;;) {
		ws(s);
		if (s->p >= s->end)
			return -EINVAL;
		if (*s->p == close && first) {
			s->p++;
			break;
		}
		if (close == '}') {
			if (skip_string(s, NULL) < 0)
				return -EINVAL;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -EINVAL;
			s->p++;
		}
		if (skip_value(s, NULL) < 0)
			return -EINVAL;
		first = false;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			break;
		}
		return -EINVAL;
	}
	s->depth--;
	return 0;
}

static int skip_literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return -EINVAL;
	s->p += n;
	return 0;
}

/* Skips one value. For a string *ret_size is its decoded length, otherwise
 * the length of its text. */
static int skip_value(struct scan *s, int64_t *ret_size)
{
	const char *start;
	int r;

	ws(s);
	if (s->p >= s->end)
		return -EINVAL;
	start = s->p;
	switch (*s->p) {
	case '"':
		return skip_string(s, ret_size);
	case '{':
		r = skip_container(s, '}');
		break;
	case '[':
		r = skip_container(s, ']');
		break;
	case 't':
		r = skip_literal(s, "true");
		break;
	case 'f':
		r = skip_literal(s, "false");
		break;
	case 'n':
		r = skip_literal(s, "null");
		break;
	default:
		r = skip_number(s);
	}
	if (r == 0 && ret_size)
		*ret_size = s->p - start;
	return r;
}

/* After an object member: 0 when another follows (',' consumed), 1 at the
 * end ('}' consumed), -EINVAL otherwise. */
static int member_end(struct scan *s)
{
	ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return 0;
	}
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 1;
	}
	return -EINVAL;
}

/* A member name and its ':' at s->p; *ret_is says whether it is `key`. */
static int member_name(struct scan *s, const char *key, bool *ret_is)
{
	const char *k = s->p;
	size_t n = strlen(key);

	if (skip_string(s, NULL) < 0)
		return -EINVAL;
	*ret_is = (size_t)(s->p - k) == n + 2 && memcmp(k + 1, key, n) == 0;
	ws(s);
	if (s->p >= s->end || *s->p++ != ':')
		return -EINVAL;
	ws(s);
	return 0;
}

int hcse_split_con(const char *body, size_t len, const char **ret_con, size_t *ret_con_len,
		   int64_t *ret_size, char **ret_rest)
{
	struct scan s = {.p = body, .end = body + len};
	const char *con = NULL, *con_end = NULL;
	int64_t size = 0;
	char *rest;

	/* {"m2m:cin": {... "con": VALUE ...}} with nothing else around */
	ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -EINVAL;
	s.p++;
	for (bool first = true;; first = false) {
		bool is_cin, is_con;
		int e;

		ws(&s);
		if (first && s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		if (member_name(&s, "m2m:cin", &is_cin) < 0)
			return -EINVAL;
		if (is_cin && s.p < s.end && *s.p == '{') {
			s.p++;
			for (bool f2 = true;; f2 = false) {
				ws(&s);
				if (f2 && s.p < s.end && *s.p == '}') {
					s.p++;
					break;
				}
				if (member_name(&s, "con", &is_con) < 0)
					return -EINVAL;
				if (is_con) {
					if (con)
						return -EINVAL; /* duplicate member */
					con = s.p;
					if (skip_value(&s, &size) < 0)
						return -EINVAL;
					con_end = s.p;
				} else if (skip_value(&s, NULL) < 0)
					return -EINVAL;
				e = member_end(&s);
				if (e < 0)
					return e;
				if (e > 0)
					break;
			}
		} else if (skip_value(&s, NULL) < 0)
			return -EINVAL;
		e = member_end(&s);
		if (e < 0)
			return e;
		if (e > 0)
			break;
	}
	ws(&s);
	if (s.p != s.end)
		return -EINVAL;
	if (!con)
		return -ENOENT;

	rest = malloc(len - (size_t)(con_end - con) + 2);
	if (!rest)
		return -ENOMEM;
	memcpy(rest, body, (size_t)(con - body));
	rest[con - body] = '0';
	memcpy(rest + (con - body) + 1, con_end, (size_t)(body + len - con_end));
	rest[len - (size_t)(con_end - con) + 1] = '\0';
	*ret_con = con;
	*ret_con_len = (size_t)(con_end - con);
	*ret_size = size;
	*ret_rest = rest;
	return 0;
}
