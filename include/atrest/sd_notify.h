/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness and status for the service manager (sd_notify(3) wire protocol, no libsystemd). */
#pragma once

/* Sends one datagram ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if set.
 * Returns 0 (also when there is no socket) or -errno. */
int sd_notify_send(const char *msg);
