/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's handler for the shared HTTP server glue. */
#pragma once

#include "atrest/httpd.h"
#include "hcse.h"

/* httpd_handler_fn: userdata is the struct hcse. */
int http_handle(void *userdata, const struct httpd_request *hreq, struct httpd_response *resp);
