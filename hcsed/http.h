/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's handler for the shared HTTP server glue. */
#pragma once

#include <stdint.h>

#include "atrest/httpd.h"
#include "hcse.h"

/* httpd_handler_fn: userdata is the struct hcse. */
int http_handle(void *userdata, const struct httpd_request *hreq, struct httpd_response *resp);

/*
 * The largest request body accepted from now on (SIGHUP reload); bodies up
 * to the server's own cap (httpd_config.max_body at start) are collected,
 * then refused like one over that cap (413, 5207). 0: only the server's cap.
 */
void http_set_max_body(uint64_t max);
