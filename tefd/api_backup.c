/* SPDX-License-Identifier: Apache-2.0 */
/* The /backup route: a consistent snapshot of the key store for admins (tefctl backup). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "atrest/log.h"
#include "atrest/rsc.h"
#include "api.h"

int api_backup(struct api *a, struct api_caller *c, struct httpd_response *resp)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	/* only local admins acting as themselves: a delegate cannot borrow an admin */
	if (c->on_behalf || !policy_is_admin(&a->policy, &c->peer)) {
		return api_refuse(a, c, resp, "backup", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, NULL,
				  "not-admin", "only admins may take a backup");
	}
	r = keystore_snapshot(a->ks, &data, &len);
	if (r < 0) {
		log_error_errno(r, "cannot take a snapshot of the key store");
		return api_refuse(a, c, resp, "backup", 0, RSC_INTERNAL_SERVER_ERROR, NULL,
				  "storage", "storage error");
	}
	api_audit(a, c, "backup", RSC_OK, NULL, NULL);
	log_info("backup of %zu bytes taken by %s", len, c->peer_text);
	httpd_response_set_status(resp, 200);
	r = httpd_response_add_header(resp, TEF_HDR_RSC, "2000");
	if (r < 0) {
		free(data);
		return r;
	}
	return httpd_response_set_body(resp, TEF_BACKUP_MEDIA_TYPE, (char *)data, len);
}
