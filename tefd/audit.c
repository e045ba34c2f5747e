/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's audit log writer: single-write lines to an O_APPEND file, ids only as HMACs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "audit.h"

struct audit {
	pthread_rwlock_t lock; /* writers of lines share it; a reopen takes it alone */
	int fd;
	char *path;
	bool append_only;
	const uint8_t *key;
	atomic_bool failing; /* a failure was logged; the next success says so (issue 6) */
};

static int open_log(const char *path, bool set_append_only)
{
	struct stat st;
	int fd, attr;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int r = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return r;
	}
	if (set_append_only && ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0 && !(attr & FS_APPEND_FL)) {
		attr |= FS_APPEND_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &attr) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
	}
	return fd;
}

int audit_open(const char *path, bool set_append_only, const uint8_t *hmac_key, struct audit **ret)
{
	struct audit *a;
	int fd = open_log(path, set_append_only);

	if (fd < 0)
		return fd;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path))) {
		free(a);
		close(fd);
		return -ENOMEM;
	}
	pthread_rwlock_init(&a->lock, NULL);
	a->fd = fd;
	a->append_only = set_append_only;
	a->key = hmac_key;
	*ret = a;
	return 0;
}

int audit_reopen(struct audit *a)
{
	int fd = open_log(a->path, a->append_only);

	if (fd < 0)
		return fd;
	pthread_rwlock_wrlock(&a->lock);
	safe_close(a->fd);
	a->fd = fd;
	pthread_rwlock_unlock(&a->lock);
	return 0;
}

struct audit *audit_close(struct audit *a)
{
	if (!a)
		return NULL;
	safe_close(a->fd);
	pthread_rwlock_destroy(&a->lock);
	free(a->path);
	free(a);
	return NULL;
}

void audit_tag(const uint8_t *hmac_key, const char *id_hex, char buf[static 33])
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256(mac, (const uint8_t *)id_hex, strlen(id_hex), hmac_key);
	sodium_bin2hex(buf, 33, mac, 16);
}

void audit_log(struct audit *a, const struct audit_entry *e)
{
	char line[1024], when[32], tag[33] = "-";
	struct timespec ts;
	struct tm tm;
	int n;

	if (!a)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (e->id_hex)
		audit_tag(a->key, e->id_hex, tag);
	n = snprintf(line, sizeof(line),
		     "%s.%03ldZ op=%s rsc=%d result=%s caller=%s onbehalf=%s cred=%s reason=%s\n",
		     when, ts.tv_nsec / 1000000, e->op, e->rsc, rsc_to_string(e->rsc),
		     e->caller ? e->caller : "-", e->onbehalf ? e->onbehalf : "-", tag,
		     e->reason ? e->reason : "-");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	pthread_rwlock_rdlock(&a->lock);
	/* one line when the log stops taking lines (a full disk would otherwise log
	 * one per request), one when it takes them again */
	if (write(a->fd, line, (size_t)n) != n) {
		int r = errno ? -errno : -EIO;

		if (!atomic_exchange(&a->failing, true))
			log_error_errno(r, "cannot write the audit log '%s'; requests are served "
					"unaudited until it works again", a->path);
	} else if (atomic_exchange(&a->failing, false))
		log_info("the audit log '%s' takes lines again", a->path);
	pthread_rwlock_unlock(&a->lock);
}
