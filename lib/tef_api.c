/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the tefd wire contract shared by tefd and its clients. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "atrest/tef_api.h"

static int parse_digits(const char *s, size_t n, int *ret)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

int tef_timestamp_parse(const char *s, int64_t *ret)
{
	int year, mon, day, hour, min, sec;
	struct tm tm = {0};
	time_t t;

	if (!s || strlen(s) != TEF_TIMESTAMP_LEN || s[8] != 'T')
		return -EINVAL;
	if (parse_digits(s, 4, &year) < 0 || parse_digits(s + 4, 2, &mon) < 0 ||
	    parse_digits(s + 6, 2, &day) < 0 || parse_digits(s + 9, 2, &hour) < 0 ||
	    parse_digits(s + 11, 2, &min) < 0 || parse_digits(s + 13, 2, &sec) < 0)
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
		return -EINVAL;
	if (year < 1970)
		return -ERANGE;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm normalises 31 February into March: a round trip catches it */
	if (t == (time_t)-1 || tm.tm_mday != day || tm.tm_mon != mon - 1)
		return -EINVAL;
	if ((int64_t)t > TEF_TIMESTAMP_MAX)
		return -ERANGE;
	*ret = (int64_t)t;
	return 0;
}

int tef_timestamp_format(int64_t t, char buf[static TEF_TIMESTAMP_LEN + 1])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || t > TEF_TIMESTAMP_MAX || !gmtime_r(&tt, &tm))
		return -ERANGE;
	/* the range check above bounds every field, so the output is exactly 15 bytes */
	snprintf(buf, TEF_TIMESTAMP_LEN + 1, "%04u%02u%02uT%02u%02u%02u",
		 (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) % 100,
		 (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
		 (unsigned)tm.tm_sec % 100);
	return 0;
}

static bool is_decimal_id(const char *s)
{
	unsigned long long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	/* (uid_t)-1 means "no id" to the kernel: never a principal */
	return v < 0xffffffffULL;
}

static bool is_entity_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > TEF_MAX_PRINCIPAL_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

bool tef_principal_is_valid(const char *s)
{
	if (!s || strlen(s) > TEF_MAX_PRINCIPAL_LEN)
		return false;
	if (strcmp(s, "all") == 0)
		return true;
	if (strncmp(s, "uid:", 4) == 0 || strncmp(s, "gid:", 4) == 0)
		return is_decimal_id(s + 4);
	if (strncmp(s, "ae:", 3) == 0)
		return is_entity_id(s + 3);
	if (strncmp(s, "cse:", 4) == 0)
		return is_entity_id(s + 4);
	return false;
}

int tef_relative_key_id(const char *id, char buf[static TEF_RELATIVE_KEY_ID_HEX + 1])
{
	const char *at;
	size_t n;

	if (!id)
		return -EINVAL;
	at = strchr(id, '@');
	n = at ? (size_t)(at - id) : strlen(id);
	if (n != TEF_RELATIVE_KEY_ID_HEX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		buf[i] = c;
	}
	buf[n] = '\0';
	return 0;
}
