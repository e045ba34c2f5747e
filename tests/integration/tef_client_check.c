/* SPDX-License-Identifier: Apache-2.0 */
/* Drives lib/tef_client.c against a real tefd: every call, its errno mapping, and threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/tef_client.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static struct tef_client *client;
static char shared_id[TEF_RELATIVE_KEY_ID_HEX + 1];
static uint8_t shared_key[32];

static void *hammer(void *arg)
{
	const struct tef_identity *who = arg;

	for (int i = 0; i < 200; i++) {
		struct tef_registration *r = NULL;

		CHECK(tef_retrieve(client, who, shared_id, &r, NULL) == 0);
		CHECK(r->key_len == 32 && sodium_memcmp(r->key, shared_key, 32) == 0);
		tef_registration_free(r);
	}
	return NULL;
}

static int run_unix(const char *sock)
{
	const gid_t g77[] = {77};
	const struct tef_identity owner = {1000, 1000, 0, NULL};
	const struct tef_identity other = {1003, 1003, 0, NULL};
	const struct tef_identity member = {1002, 1002, 1, g77};
	const char *targets[] = {"gid:77"}, *labels[] = {"file", "x"};
	struct tef_registration_req req = {.suid = TEF_SUID_ENCRYPTION,
					   .labels = labels,
					   .n_labels = 2,
					   .targets = targets,
					   .n_targets = 1};
	struct tef_registration *reg = NULL, *got = NULL, **list = NULL;
	struct tef_update_req u = {.set_version = true, .version = 5};
	struct tef_client *nowhere = NULL;
	uint8_t mykey[16];
	pthread_t th[4];
	size_t n = 0;
	int rsc = 0;
	bool found = false;

	CHECK(tef_client_new_unix(sock, &client) == 0);

	/* Key Registration with a generated key, on behalf of uid 1000 */
	CHECK(tef_register(client, &owner, &req, &reg, &rsc) == 0);
	CHECK(rsc == 2001);
	CHECK(reg->key && reg->key_len == 32);
	CHECK(strlen(reg->relative_key_id) == TEF_RELATIVE_KEY_ID_HEX);
	CHECK(strstr(reg->credential_id, "@tef.test") != NULL);
	CHECK(strcmp(reg->owner, "uid:1000") == 0);
	CHECK(reg->expiration > time(NULL));
	CHECK(reg->n_labels == 2 && strcmp(reg->labels[1], "x") == 0);
	CHECK(reg->n_targets == 1 && strcmp(reg->targets[0], "gid:77") == 0);

	/* Key Retrieval: owner, group member, by Credential-Id; others get EACCES */
	CHECK(tef_retrieve(client, &owner, reg->relative_key_id, &got, &rsc) == 0);
	CHECK(rsc == 2000 && got->key_len == 32 && sodium_memcmp(got->key, reg->key, 32) == 0);
	got = tef_registration_free(got);
	CHECK(tef_retrieve(client, &member, reg->credential_id, &got, NULL) == 0);
	got = tef_registration_free(got);
	CHECK(tef_retrieve(client, &other, reg->relative_key_id, &got, &rsc) == -EACCES);
	CHECK(rsc == 4004 && got == NULL);
	CHECK(tef_retrieve(client, &owner, "00000000000000000000000000000000", &got, &rsc) ==
	      -EACCES);
	CHECK(tef_retrieve(client, &owner, "nonsense", &got, &rsc) == -EINVAL);

	/* Update: version goes up, never down; the result echoes it */
	CHECK(tef_update(client, &owner, reg->relative_key_id, &u, &got, &rsc) == 0);
	CHECK(rsc == 2004 && got->version == 5);
	got = tef_registration_free(got);
	u.version = 4;
	CHECK(tef_update(client, &owner, reg->relative_key_id, &u, NULL, &rsc) == -EINVAL);
	CHECK(rsc == 4000);
	CHECK(tef_update(client, &member, reg->relative_key_id, &u, NULL, &rsc) == -EACCES);
	CHECK(tef_retrieve(client, &owner, reg->relative_key_id, &got, NULL) == 0);
	CHECK(got->version == 5);
	got = tef_registration_free(got);

	/* Listing */
	CHECK(tef_list(client, &owner, &(struct tef_list_filter){.label = "file"}, &list, &n,
		       &rsc) == 0);
	for (size_t i = 0; i < n; i++) {
		CHECK(list[i]->key == NULL);
		found |= strcmp(list[i]->relative_key_id, reg->relative_key_id) == 0;
	}
	CHECK(found);
	list = tef_registration_list_free(list, n);

	/* Several threads share one client */
	memcpy(shared_key, reg->key, 32);
	strcpy(shared_id, reg->relative_key_id);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, hammer, (void *)&owner) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	/* De-Registration */
	CHECK(tef_deregister(client, &owner, reg->relative_key_id, &rsc) == 0);
	CHECK(rsc == 2002);
	CHECK(tef_retrieve(client, &owner, reg->relative_key_id, &got, NULL) == -EACCES);
	CHECK(tef_deregister(client, &owner, reg->relative_key_id, &rsc) == -ENOENT);
	reg = tef_registration_free(reg);

	/* A batch: distinct ids and keys, each an ordinary registration of the owner's */
	{
		struct tef_registration **batch = NULL;
		size_t nb = 0;

		CHECK(tef_register_batch(client, &owner, &req, 3, &batch, &nb, &rsc) == 0);
		CHECK(rsc == 2001 && nb == 3);
		CHECK(strcmp(batch[0]->relative_key_id, batch[1]->relative_key_id) != 0);
		CHECK(sodium_memcmp(batch[0]->key, batch[2]->key, 32) != 0);
		for (size_t i = 0; i < nb; i++) {
			CHECK(batch[i]->key_len == 32 && strcmp(batch[i]->owner, "uid:1000") == 0);
			CHECK(batch[i]->n_targets == 1 && batch[i]->n_labels == 2);
			CHECK(tef_retrieve(client, &owner, batch[i]->relative_key_id, &got,
					   NULL) == 0);
			CHECK(sodium_memcmp(got->key, batch[i]->key, 32) == 0);
			got = tef_registration_free(got);
			CHECK(tef_retrieve(client, &other, batch[i]->relative_key_id, &got,
					   NULL) == -EACCES);
			CHECK(tef_deregister(client, &owner, batch[i]->relative_key_id, NULL) ==
			      0);
		}
		batch = tef_registration_list_free(batch, nb);
		CHECK(tef_register_batch(client, &owner, &req, TEF_MAX_BATCH + 1, &batch, &nb,
					 NULL) == -EINVAL);
		CHECK(tef_register_batch(client, &owner, &req, 0, &batch, &nb, NULL) == -EINVAL);
	}

	/* A key of our own (16 bytes) comes back as given, and is not echoed */
	randombytes_buf(mykey, sizeof(mykey));
	req = (struct tef_registration_req){
	    .suid = TEF_SUID_INTEGRITY, .key = mykey, .key_len = sizeof(mykey)};
	CHECK(tef_register(client, NULL, &req, &reg, NULL) == 0);
	CHECK(reg->key == NULL);
	CHECK(tef_retrieve(client, NULL, reg->relative_key_id, &got, NULL) == 0);
	CHECK(got->key_len == 16 && sodium_memcmp(got->key, mykey, 16) == 0);
	CHECK(got->suid == TEF_SUID_INTEGRITY && strcmp(got->owner, "uid:0") == 0);
	got = tef_registration_free(got);
	reg = tef_registration_free(reg);

	/* Expired: EKEYEXPIRED for those who may retrieve */
	req = (struct tef_registration_req){.suid = TEF_SUID_ENCRYPTION,
					    .expiration = time(NULL) + 2};
	CHECK(tef_register(client, &owner, &req, &reg, NULL) == 0);
	sleep(3);
	CHECK(tef_retrieve(client, &owner, reg->relative_key_id, &got, &rsc) == -EKEYEXPIRED);
	CHECK(tef_retrieve(client, &other, reg->relative_key_id, &got, &rsc) == -EACCES);
	reg = tef_registration_free(reg);

	/* Bad requests are refused before they are sent or by tefd */
	req = (struct tef_registration_req){.suid = 99};
	CHECK(tef_register(client, NULL, &req, &reg, &rsc) == -EINVAL);
	CHECK(rsc == 4000);

	/* tefd unreachable */
	CHECK(tef_client_new_unix("/nonexistent/tef.sock", &nowhere) == 0);
	CHECK(tef_retrieve(nowhere, NULL, shared_id, &got, &rsc) == -ECONNREFUSED);
	CHECK(rsc == 0);
	tef_client_free(nowhere);
	tef_client_free(client);
	puts("tef_client: unix socket checks passed");
	return 0;
}

/* Over mutual TLS: the certificate's CN is the owner principal. */
static int run_tls(const char *url, const char *cert, const char *key, const char *ca,
		   const char *expect_owner)
{
	struct tef_registration_req req = {.suid = TEF_SUID_ENCRYPTION};
	struct tef_registration *reg = NULL, *got = NULL;
	int rsc = 0, r;

	CHECK(tef_client_new_tls(url, cert, key, ca, &client) == 0);
	r = tef_register(client, NULL, &req, &reg, &rsc);
	if (!expect_owner) {
		/* the refusal is the expected outcome */
		tef_client_free(client);
		printf("tef_client: refused with %d (rsc %d)\n", r, rsc);
		return r == -ECONNREFUSED || r == -EACCES ? 0 : 1;
	}
	CHECK(r == 0);
	CHECK(strcmp(reg->owner, expect_owner) == 0);
	CHECK(tef_retrieve(client, NULL, reg->credential_id, &got, NULL) == 0);
	CHECK(sodium_memcmp(got->key, reg->key, 32) == 0);
	printf("%s\n", reg->relative_key_id);
	tef_registration_free(got);
	tef_registration_free(reg);
	tef_client_free(client);
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "unix") == 0)
		return run_unix(argv[2]);
	if (argc >= 6 && strcmp(argv[1], "tls") == 0)
		return run_tls(argv[2], argv[3], argv[4], argv[5], argc > 6 ? argv[6] : NULL);
	fprintf(stderr, "usage: tef_client_check unix SOCKET | tls URL CERT KEY CA [OWNER]\n");
	return 2;
}
