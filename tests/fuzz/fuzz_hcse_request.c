/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: an HTTP request (method, path?query, headers, body) through the TS-0009 binding
 * into a real CSE. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "binding.h"
#include "hcse.h"

/*
 * Input: first byte picks the method; then "PATH[?QUERY]\n", header lines
 * "Name: value\n", an empty line, and the body (the rest).
 */
struct input {
	char *headers[16][2];
	size_t n_headers;
	char *query[16][2];
	size_t n_query;
};

static const char *header(void *userdata, const char *name)
{
	struct input *in = userdata;

	for (size_t i = 0; i < in->n_headers; i++)
		if (strcasecmp(in->headers[i][0], name) == 0)
			return in->headers[i][1];
	return NULL;
}

static int query(void *userdata, int (*fn)(const char *, const char *, void *), void *ud)
{
	struct input *in = userdata;

	for (size_t i = 0; i < in->n_query; i++)
		if (fn(in->query[i][0], in->query[i][1], ud))
			return 1;
	return 0;
}

static struct hcse *cse;
static char db[64];

static void cleanup(void)
{
	char p[80];

	cse = hcse_free(cse);
	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
	struct input in = {0};
	struct hcse_request req;
	struct hcse_response resp;
	char *text, *line, *path, *q, *body;
	size_t body_len;

	if (!cse) {
		struct hcse_config c = {.db_path = db};

		snprintf(db, sizeof(db), "/tmp/fuzz-hcse-%d.db", (int)getpid());
		if (hcse_new(&c, &cse) < 0)
			abort();
		atexit(cleanup);
	}
	if (size < 2)
		return 0;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	line = text;
	body = strstr(text, "\n\n");
	if (body) {
		*body = '\0';
		body += 2;
		body_len = size - 1 - (size_t)(body - text);
	} else {
		body = NULL;
		body_len = 0;
	}
	path = strsep(&line, "\n");
	q = strchr(path, '?');
	if (q) {
		*q++ = '\0';
		for (char *kv; (kv = strsep(&q, "&")) && in.n_query < 16;) {
			char *v = strchr(kv, '=');

			if (v)
				*v++ = '\0';
			in.query[in.n_query][0] = kv;
			in.query[in.n_query++][1] = v;
		}
	}
	for (char *h; line && (h = strsep(&line, "\n")) && in.n_headers < 16;) {
		char *v = strchr(h, ':');

		if (!v)
			continue;
		*v++ = '\0';
		while (*v == ' ')
			v++;
		in.headers[in.n_headers][0] = h;
		in.headers[in.n_headers++][1] = v;
	}

	struct binding_input bi = {
	    .method = methods[data[0] % 5],
	    .path = path,
	    .header = header,
	    .query_foreach = query,
	    .userdata = &in,
	    .body = body,
	    .body_len = body_len,
	    .body_too_large = data[0] >= 250,
	    .peer_addr = "127.0.0.1",
	};
	if (binding_parse(&bi, &req, &resp) == 0) {
		hcse_process(cse, &req, &resp);
		hcse_request_clear(&req);
	}
	hcse_response_clear(&resp);
	free(text);
	return 0;
}
