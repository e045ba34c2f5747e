/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: tefd's request decoding (bodies, on-behalf-of header, timestamps, ids, principals).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "atrest/tef_api.h"
#include "policy.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reg_request reg;
	struct upd_request upd;
	struct identity id;
	char *err = NULL, *text, rel[TEF_RELATIVE_KEY_ID_HEX + 1];
	int64_t t;

	if (sodium_init() < 0)
		abort();
	if (request_parse_registration((const char *)data, size, &reg, &err) == 0) {
		/* what decodes must be within the documented limits */
		if ((reg.suid != 34 && reg.suid != 35) || reg.c.n_labels > TEF_MAX_LABELS ||
		    reg.c.n_targets > TEF_MAX_TARGETS ||
		    (reg.key && reg.key_len != 16 && reg.key_len != 32))
			abort();
		for (size_t i = 0; i < reg.c.n_targets; i++)
			if (!tef_principal_is_valid(reg.c.targets[i]))
				abort();
		reg_request_done(&reg);
	}
	free(err);
	err = NULL;
	if (request_parse_update((const char *)data, size, &upd, &err) == 0)
		upd_request_done(&upd);
	free(err);

	/* the string parsers see a NUL-terminated copy */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (identity_parse_on_behalf_of(text, &id) == 0 && id.n_groups > TEF_MAX_GROUPS)
		abort();
	if (tef_timestamp_parse(text, &t) == 0) {
		char back[TEF_TIMESTAMP_LEN + 1];

		/* a parsed timestamp formats back to itself */
		if (tef_timestamp_format(t, back) < 0 || strcmp(back, text) != 0)
			abort();
	}
	(void)tef_relative_key_id(text, rel);
	(void)tef_principal_is_valid(text);
	free(text);
	return 0;
}
