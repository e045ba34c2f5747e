/* SPDX-License-Identifier: Apache-2.0 */
/* Names of the resources atrestfs lays a file out in under its AE (DESIGN.md 5). */
#pragma once

#include <inttypes.h>

/* Prefix of the labels carrying a node's plain metadata ("atrest:size=N"). */
#define ATREST_LABEL_PREFIX "atrest:"

/* rn of a node's <container>, by inode number. */
#define ATREST_NODE_RN_FMT "i%" PRIu64

/* rn of a segment <contentInstance>: segment index, then generation. */
#define ATREST_SEGMENT_RN_FMT "s%" PRIu64 "g%" PRIu64

/* rn of a manifest <contentInstance>, by file version. */
#define ATREST_MANIFEST_RN_FMT "m%" PRIu64
