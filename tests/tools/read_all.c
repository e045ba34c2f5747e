/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file descriptor, for the test tools. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "read_all.h"

/* Reads all of fd into a malloc()ed buffer (NUL-terminated). */
int read_all(int fd, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *t = realloc(buf, cap * 2 + 1);

			if (!t) {
				free(buf);
				return -ENOMEM;
			}
			buf = t;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}
