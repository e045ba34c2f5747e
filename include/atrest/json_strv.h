/* SPDX-License-Identifier: Apache-2.0 */
/* String vectors (labels, targetIDs) to and from JSON arrays of strings. */
#pragma once

#include <stddef.h>

#include <jansson.h>

/*
 * A new JSON array holding copies of the n strings of v (caller
 * json_decrefs it), or NULL when memory runs out or an element is NULL.
 */
json_t *json_strv_new(const char *const *v, size_t n);

/*
 * Copies the strings of the JSON array a into *ret, a malloc'd vector of
 * *ret_n malloc'd strings (never NULL, even when empty) the caller frees
 * element by element. A non-string element becomes "", anything but an
 * array (NULL too) an empty vector. Returns 0, or -ENOMEM with *ret and
 * *ret_n untouched.
 */
int json_strv_copy(const json_t *a, char ***ret, size_t *ret_n);

/* Frees the n strings of v and v itself (from json_strv_copy or alike). Accepts NULL. */
void json_strv_free(char **v, size_t n);
