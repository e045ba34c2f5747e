/* SPDX-License-Identifier: Apache-2.0 */
/* <CSEBase> (ty 5, TS-0004 7.4.3): the root, created by hcsed itself. */
#include "resource.h"

static const int cb_parents[] = {0};

/* TS-0004 7.4.3.1: everything is read-only but acpi and labels. */
static const struct attr_def cb_attrs[] = {
    {NULL, 0, 0},
};

const struct resource_type resource_type_cb = {
    .ty = TY_CB,
    .tn = "m2m:cb",
    .prefix = "cb",
    .has_acpi = true,
    .parents = cb_parents,
    .attrs = cb_attrs,
};
