/* SPDX-License-Identifier: Apache-2.0 */
/* Reachability of a peer daemon (tefd, hcsed): one log line when it stops answering, one when it
 * answers again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The state machine behind issue 6's "one line per significant event": a
 * client reports every exchange (answered or not, http_client does it for
 * the clients an outage is attached to); the first unanswered exchange after
 * an answer logs a warning naming the peer, the reason and the request, the
 * next answer logs how long the peer was down and what failed or waited
 * meanwhile. Everything between is counted, not logged. Thread-safe.
 * Library code logs only at debug (STYLE.md); this module is the layer
 * that decides, and only for programs that attach one (atrestfs).
 */
struct outage;

/* `peer` ("tefd") and `where` (its socket or URL) are copied. Returns 0, -ENOMEM. */
int outage_new(const char *peer, const char *where, struct outage **ret);
/* Accepts NULL, returns NULL. */
struct outage *outage_free(struct outage *o);

/*
 * What waits for the peer, reported in the recovery line as "<count> <what>"
 * (e.g. "files queued for upload"). fn is called with no lock of the outage
 * held, from whichever thread saw the answer; it must not call the peer.
 * `what` is borrowed for the life of o.
 */
void outage_set_pending(struct outage *o, size_t (*fn)(void *arg), void *arg, const char *what);

/*
 * An exchange got no answer: `reason` a -errno (0 if unknown), `detail` the
 * transport's text or NULL, `request` like "GET /keys/ab12" or NULL (both
 * borrowed), `waited_ms` how long it waited in vain (a timeout): the outage
 * began that long ago. Logs once per outage, counts every time.
 */
void outage_unreachable(struct outage *o, int reason, const char *detail, const char *request,
			uint64_t waited_ms);

/* The peer answered (any status): ends an outage, logging its duration and counts. */
void outage_reachable(struct outage *o);

/*
 * Counts one operation a caller saw fail because of the outage (an open
 * answered EIO, say). True for the first one of the current outage, so that
 * the caller logs that one by name and lets the recovery line count the rest.
 */
bool outage_note_failed(struct outage *o);

/* True between an unanswered exchange and the next answer. */
bool outage_is_down(struct outage *o);

/* How many outages began since outage_new (tests, statistics). */
uint64_t outage_count(struct outage *o);
