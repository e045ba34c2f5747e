/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: atrestfs's reading of container labels from the HCSE (untrusted), and of encoded names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atrestfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What was accepted writes back to labels that read as the same node. */
static void check_roundtrip(const struct node *a)
{
	struct node *b = calloc(1, sizeof(*b));
	char **labels = NULL;
	size_t n_labels = 0;

	if (!b)
		abort();
	if (node_labels(a, a->size, a->version, &labels, &n_labels) < 0) {
		free(b);
		return; /* a value too long for the labels: refused, not mangled */
	}
	if (node_from_labels(b, (const char *const *)labels, n_labels) != 0)
		abort();
	if (b->ino != a->ino || b->parent != a->parent || b->mode != a->mode ||
	    b->uid != a->uid || b->gid != a->gid || (a->name && strcmp(a->name, b->name) != 0) ||
	    (S_ISLNK(a->mode) && strcmp(a->symlink, b->symlink) != 0) ||
	    (S_ISREG(a->mode) && (b->size != a->size || strcmp(a->cred_id, b->cred_id) != 0 ||
				  strcmp(a->rkid, b->rkid) != 0 ||
				  strcmp(a->file_id, b->file_id) != 0)))
		abort();
	labels_free(labels, n_labels);
	node_from_labels_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *save = NULL;
	const char *labels[64];
	size_t n = 0;
	struct node *node;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	/* one label per line, as many as hcsed allows */
	for (char *l = strtok_r(text, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
		labels[n++] = l;
	node = calloc(1, sizeof(*node));
	if (!node)
		abort();
	if (node_from_labels(node, labels, n) == 0) {
		/* what the namespace and the kernel will be handed */
		if (!node->ino || node->ino > NS_INO_MAX || node->size > (uint64_t)INT64_MAX ||
		    (node->name && (strchr(node->name, '/') || strlen(node->name) > 255)) ||
		    (node->ino != 1 && (!node->name || !*node->name || !node->parent)))
			abort();
		check_roundtrip(node);
	}
	node_from_labels_free(node);
	/* a name as the labels carry it: decodes to something that encodes back */
	for (size_t i = 0; i < n; i++) {
		char *dec = name_decode(labels[i]), *enc;

		if (!dec)
			continue;
		enc = name_encode(dec);
		if (!enc)
			abort();
		char *again = name_decode(enc);
		if (!again || strcmp(again, dec) != 0)
			abort();
		free(again);
		free(enc);
		free(dec);
	}
	free(text);
	return 0;
}
