/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: whole HTTP requests into a real in-process tefd (httpd + api + keystore) on a Unix
 * socket. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/httpd.h"
#include "atrest/log.h"
#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct api api;
static char sock_path[108];

static void cleanup(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(sock_path, '/') - sock_path),
		 sock_path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove the fuzz directory\n");
}

/* One tefd for the whole run; root (the fuzzer) is admin and delegate, so every path is reachable.
 */
static void start(void)
{
	static const uid_t root[] = {0};
	static char dir[] = "/tmp/fuzz-tefd.XXXXXX";
	static uint8_t *master;
	static struct httpd *h;
	struct keystore *ks = NULL;
	struct audit *audit = NULL;
	char mk[128], db[128], log[128];
	struct httpd_config hc = {.unix_mode = 0600, .max_body = TEF_MAX_BODY, .threads = 1};

	if (sodium_init() < 0 || !mkdtemp(dir))
		abort();
	log_set_max_level(LOG_CRIT);
	snprintf(mk, sizeof(mk), "%s/master.key", dir);
	snprintf(db, sizeof(db), "%s/tef.db", dir);
	snprintf(log, sizeof(log), "%s/audit.log", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/tef.sock", dir);
	if (keystore_master_key_create(mk) < 0 || keystore_master_key_load(mk, &master) < 0 ||
	    keystore_open(db, master, &ks) < 0 ||
	    audit_open(log, false, keystore_audit_key(ks), &audit) < 0)
		abort();
	api.ks = ks;
	api.audit = audit;
	api.policy = (struct policy){root, 1, root, 1};
	api.fqdn = "fuzz.test";
	api.default_ttl = 3600;
	api.max_ttl = 86400;
	api.max_per_owner = 1000;
	api.max_failed_retrievals = 0;
	api.failure_window = 60;
	api_init(&api);
	hc.unix_path = sock_path;
	if (httpd_start(&hc, api_handle, &api, &h) < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[65536];
	int fd;

	if (!sock_path[0])
		start();
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	if (size && send(fd, data, size, MSG_NOSIGNAL) < 0) {
		close(fd);
		return 0;
	}
	shutdown(fd, SHUT_WR);
	/* read whatever comes back until tefd closes or goes quiet */
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 100) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	close(fd);
	return 0;
}
