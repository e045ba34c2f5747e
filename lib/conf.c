/* SPDX-License-Identifier: Apache-2.0 */
/* The "key = value" config file parser shared by tefd and hcsed. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "atrest/cleanup.h"
#include "atrest/conf.h"

static char *strip(char *s)
{
	char *end;

	while (*s && isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int conf_parse_file(const char *path, conf_item_fn item, void *userdata, unsigned *ret_line)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t n;

	f = fopen(path, "re");
	if (!f) {
		if (ret_line)
			*ret_line = 0;
		return -errno;
	}

	while ((n = getline(&buf, &cap, f)) >= 0) {
		char *line, *eq, *key, *value;
		int r;

		lineno++;
		if ((size_t)n != strlen(buf))
			goto bad; /* embedded NUL */
		line = strip(buf);
		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq)
			goto bad;
		*eq = '\0';
		key = strip(line);
		value = strip(eq + 1);
		if (*key == '\0')
			goto bad;
		for (const char *k = key; *k; k++)
			if (!is_key_char(*k))
				goto bad;
		r = item(key, value, userdata);
		if (r < 0) {
			if (ret_line)
				*ret_line = lineno;
			return r;
		}
	}
	if (ferror(f)) {
		if (ret_line)
			*ret_line = lineno;
		return -EIO;
	}
	return 0;
bad:
	if (ret_line)
		*ret_line = lineno;
	return -EINVAL;
}

int conf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int conf_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int conf_set_string(const char *s, char **ret)
{
	char *copy = strdup(s);

	if (!copy)
		return -ENOMEM;
	free(*ret);
	*ret = copy;
	return 0;
}
