/* SPDX-License-Identifier: Apache-2.0 */
/* readahead.c: finding the mount's bdi in mountinfo (escapes, stacked and other mounts). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "atrestfs.h"

static void test_bdi_of(void **state)
{
	char path[] = "/tmp/atrest-mountinfo-XXXXXX", bdi[32];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	      /* another filesystem on the same path, then two atrestfs stacked */
	      "40 22 0:30 / /mnt/my\\040dir rw - tmpfs tmpfs rw\n"
	      "41 40 0:39 / /mnt/my\\040dir rw,nosuid - fuse.atrestfs http://h/cse-in rw,user_id=0\n"
	      "42 41 0:45 / /mnt/my\\040dir rw,nosuid - fuse.atrestfs http://h/cse-in rw,user_id=0\n"
	      "43 22 0:50 / /mnt/other rw - fuse.atrestfs http://h/cse-in rw\n"
	      "44 22 0:51 / /mnt/gocrypt rw - fuse.gocryptfs /c rw\n",
	      f);
	fclose(f);
	assert_int_equal(readahead_bdi_of(path, "/mnt/my dir", bdi, sizeof(bdi)), 0);
	assert_string_equal(bdi, "0:45");
	assert_int_equal(readahead_bdi_of(path, "/mnt/other", bdi, sizeof(bdi)), 0);
	assert_string_equal(bdi, "0:50");
	assert_int_equal(readahead_bdi_of(path, "/mnt/gocrypt", bdi, sizeof(bdi)), -ENOENT);
	assert_int_equal(readahead_bdi_of(path, "/mnt/my\\040dir", bdi, sizeof(bdi)), -ENOENT);
	assert_int_equal(readahead_bdi_of(path, "/mnt/other", bdi, 4), -ENOENT);
	unlink(path);
	assert_int_equal(readahead_bdi_of(path, "/mnt/other", bdi, sizeof(bdi)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bdi_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
