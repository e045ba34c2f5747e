/* SPDX-License-Identifier: Apache-2.0 */
/* The mount's read-ahead: one segment, so a sequential reader's requests come a segment at a time. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrestfs.h"

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else
			*d = *s;
	}
	*d = '\0';
}

int readahead_bdi_of(const char *mountinfo, const char *mountpoint, char *ret, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen(mountinfo, "re");
	char line[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	/* the last one: a mount over an older one on the same path is listed after it */
	while (fgets(line, sizeof(line), f)) {
		char dev[32], mp[PATH_MAX + 1], *sep = strstr(line, " - ");
		unsigned major, minor;

		if (!sep || strncmp(sep, " - fuse.atrestfs ", 17) != 0 ||
		    sscanf(line, "%*s %*s %u:%u %*s %4096s", &major, &minor, mp) != 3)
			continue;
		unescape(mp);
		if (strcmp(mp, mountpoint) != 0)
			continue;
		snprintf(dev, sizeof(dev), "%u:%u", major, minor);
		if (strlen(dev) < size) {
			strcpy(ret, dev);
			r = 0;
		}
	}
	return r;
}

/*
 * The kernel gives a FUSE mount the default read-ahead of 128 KiB and lets
 * the filesystem only lower it (at INIT), so a sequential read of a 1 MiB
 * segment arrived as eight requests in a row, each waiting for the one
 * before: a cold read (segments fetched from the HCSE) ran 10-15% slower.
 * Raised once the INIT reply is through, i.e. at the first lookup (a read
 * needs one first). Only root may (sysfs); otherwise the default stays,
 * with a debug line. An operator may still set read_ahead_kb afterwards.
 */
void readahead_raise(struct fs *fs)
{
	char bdi[32], path[96], kb[32];
	_cleanup_close_ int fd = -1;
	int r;

	if (atomic_exchange(&fs->readahead_set, true))
		return;
	r = readahead_bdi_of("/proc/self/mountinfo", fs->opt.mountpoint, bdi, sizeof(bdi));
	if (r < 0) {
		log_debug_errno(r, "read-ahead left as it is: the mount is not in mountinfo");
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi);
	snprintf(kb, sizeof(kb), "%" PRIu64, (fs->opt.segment_size + 1023) / 1024);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, kb, strlen(kb)) < 0) {
		log_debug_errno(-errno, "read-ahead left as it is: cannot write %s", path);
		return;
	}
	log_debug("read-ahead of %s raised to %s KiB", bdi, kb);
}
