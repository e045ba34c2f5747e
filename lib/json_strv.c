/* SPDX-License-Identifier: Apache-2.0 */
/* String vectors (labels, targetIDs) to and from JSON arrays of strings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/json_strv.h"

json_t *json_strv_new(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (!v[i] || json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int json_strv_copy(const json_t *a, char ***ret, size_t *ret_n)
{
	size_t n = json_array_size(a);
	char **v = calloc(n ? n : 1, sizeof(char *));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));

		v[i] = strdup(s ? s : "");
		if (!v[i]) {
			json_strv_free(v, i);
			return -ENOMEM;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void json_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
