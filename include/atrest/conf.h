/* SPDX-License-Identifier: Apache-2.0 */
/* Config files of the daemons: "key = value" lines, '#' comments. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Called once per setting; returns 0 or -errno (which stops the parse). */
typedef int (*conf_item_fn)(const char *key, const char *value, void *userdata);

/*
 * Reads `path` and calls `item` for every setting, in file order. Keys are
 * [a-z0-9_-]+; the value is the rest of the line with surrounding blanks
 * removed (may be empty). Returns 0, -errno from open/read, -EINVAL for a
 * line that is not a setting, or what `item` returned; on failure the
 * 1-based line number is stored in *ret_line (0 when no line is to blame).
 */
int conf_parse_file(const char *path, conf_item_fn item, void *userdata, unsigned *ret_line);

/* Strict decimal parse into [min, max]: -EINVAL for junk, -ERANGE outside. */
int conf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* "yes/no/true/false/on/off/1/0": -EINVAL otherwise. */
int conf_parse_bool(const char *s, bool *ret);

/*
 * Replaces the malloc'd string *ret (may be NULL; freed) with a copy of s,
 * which the caller then owns. Returns 0, or -ENOMEM with *ret untouched.
 */
int conf_set_string(const char *s, char **ret);
