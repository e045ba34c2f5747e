/* SPDX-License-Identifier: Apache-2.0 */
/* The table that maps oneM2M RSCs to HTTP statuses, names and errnos. */
#include <errno.h>
#include <stddef.h>

#include "atrest/cleanup.h"
#include "atrest/rsc.h"

struct rsc_entry {
	int rsc;
	int http;
	int err; /* positive errno for a local caller */
	const char *name;
};

/* TS-0009 Table 6.3.2-1 for the HTTP column; errno is atrest's own choice. */
static const struct rsc_entry rsc_table[] = {
	{ 1000, 202, 0, "ACCEPTED" },
	{ 2000, 200, 0, "OK" },
	{ 2001, 201, 0, "CREATED" },
	{ 2002, 200, 0, "DELETED" },
	{ 2004, 200, 0, "UPDATED" },
	{ 4000, 400, EINVAL, "BAD_REQUEST" },
	{ 4001, 501, EPROTO, "RELEASE_VERSION_NOT_SUPPORTED" },
	{ 4004, 404, ENOENT, "NOT_FOUND" },
	{ 4005, 405, EPERM, "OPERATION_NOT_ALLOWED" },
	{ 4008, 504, ETIMEDOUT, "REQUEST_TIMEOUT" },
	{ 4015, 415, EINVAL, "UNSUPPORTED_MEDIA_TYPE" },
	{ 4101, 403, EACCES, "SUBSCRIPTION_CREATOR_HAS_NO_PRIVILEGE" },
	{ 4102, 400, EINVAL, "CONTENTS_UNACCEPTABLE" },
	{ 4103, 403, EACCES, "ORIGINATOR_HAS_NO_PRIVILEGE" },
	{ 4105, 409, EEXIST, "CONFLICT" },
	{ 4106, 403, EACCES, "ORIGINATOR_NOT_AUTHENTICATED" },
	{ 4107, 403, EACCES, "SECURITY_ASSOCIATION_REQUIRED" },
	{ 4108, 403, EINVAL, "INVALID_CHILD_RESOURCE_TYPE" },
	{ 4117, 403, EEXIST, "ORIGINATOR_HAS_ALREADY_REGISTERED" },
	{ 4120, 400, EINVAL, "INVALID_SEMANTICS" },
	{ 5000, 500, EIO, "INTERNAL_SERVER_ERROR" },
	{ 5001, 501, ENOSYS, "NOT_IMPLEMENTED" },
	{ 5103, 404, EHOSTUNREACH, "TARGET_NOT_REACHABLE" },
	{ 5105, 403, EACCES, "RECEIVER_HAS_NO_PRIVILEGE" },
	{ 5106, 409, EEXIST, "ALREADY_EXISTS" },
	{ 5107, 404, EHOSTUNREACH, "REMOTE_ENTITY_NOT_REACHABLE" },
	{ 5203, 403, EPERM, "TARGET_NOT_SUBSCRIBABLE" },
	{ 5204, 500, EIO, "SUBSCRIPTION_VERIFICATION_INITIATION_FAILED" },
	{ 5207, 406, EFBIG, "NOT_ACCEPTABLE" },
};

static const struct rsc_entry *rsc_lookup(int rsc)
{
	for (size_t i = 0; i < ELEMENTSOF(rsc_table); i++)
		if (rsc_table[i].rsc == rsc)
			return &rsc_table[i];
	return NULL;
}

int rsc_to_http_status(int rsc)
{
	const struct rsc_entry *e = rsc_lookup(rsc);

	return e ? e->http : 500;
}

int errno_from_rsc(int rsc)
{
	const struct rsc_entry *e = rsc_lookup(rsc);

	if (rsc_is_success(rsc))
		return 0;
	return e ? -e->err : -EIO;
}

const char *rsc_to_string(int rsc)
{
	const struct rsc_entry *e = rsc_lookup(rsc);

	return e ? e->name : "UNKNOWN";
}
