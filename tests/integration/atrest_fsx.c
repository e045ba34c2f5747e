/* SPDX-License-Identifier: Apache-2.0 */
/* fsx-style exerciser: random writes, truncates, appends, reads and reopens on a mount, checked against an in-memory model. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * usage: atrest_fsx DIR MODELDIR SEED OPS [FILES] [MAXSIZE]
 * Loads the model from MODELDIR (plain copies kept by the test, outside the
 * mount) if present, verifies every file in DIR against it, runs OPS random
 * operations, verifies again and saves the model. A test remounts between
 * runs. Prints the seed so a failure replays with the same arguments.
 */

struct file {
	char path[4096];
	char model_path[4096];
	uint8_t *data;
	size_t size;
	int fd;
	bool append;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: small, deterministic for a seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static unsigned long op_no;

#define die(...)                                                                                   \
	do {                                                                                       \
		fprintf(stderr, "atrest_fsx: op %lu: ", op_no);                                     \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(1);                                                                           \
	} while (0)

static void model_resize(struct file *f, size_t size)
{
	if (size > f->size) {
		uint8_t *p = realloc(f->data, size);
		if (!p)
			die("out of memory");
		memset(p + f->size, 0, size - f->size);
		f->data = p;
	}
	f->size = size;
}

static void file_open(struct file *f, bool trunc)
{
	int flags = O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0);

	f->append = rnd_below(4) == 0;
	if (f->append)
		flags |= O_APPEND;
	f->fd = open(f->path, flags, 0644);
	if (f->fd < 0)
		die("open '%s': %s", f->path, strerror(errno));
	if (trunc)
		model_resize(f, 0);
}

static void file_close(struct file *f)
{
	if (f->fd >= 0 && close(f->fd) < 0)
		die("close '%s': %s", f->path, strerror(errno));
	f->fd = -1;
}

static void check_range(struct file *f, size_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;
	size_t want = off >= f->size ? 0 : (off + len > f->size ? f->size - off : len);

	if (!buf)
		die("out of memory");
	n = pread(f->fd, buf, len, (off_t)off);
	if (n < 0)
		die("read '%s' at %zu+%zu: %s", f->path, off, len, strerror(errno));
	if ((size_t)n != want)
		die("read '%s' at %zu+%zu: got %zd bytes, model says %zu (size %zu)", f->path, off,
		    len, n, want, f->size);
	for (size_t i = 0; i < want; i++)
		if (buf[i] != f->data[off + i])
			die("read '%s': byte %zu is 0x%02x, model says 0x%02x", f->path, off + i, buf[i],
			    f->data[off + i]);
	free(buf);
}

static void check_file(struct file *f)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		die("fstat '%s': %s", f->path, strerror(errno));
	if ((size_t)st.st_size != f->size)
		die("'%s' has size %jd, model says %zu", f->path, (intmax_t)st.st_size, f->size);
	check_range(f, 0, f->size + 10);
}

static void load_model(struct file *f)
{
	FILE *m = fopen(f->model_path, "rb");
	long len;

	f->data = NULL;
	f->size = 0;
	if (!m)
		return;
	fseek(m, 0, SEEK_END);
	len = ftell(m);
	fseek(m, 0, SEEK_SET);
	model_resize(f, (size_t)len);
	if (len > 0 && fread(f->data, 1, (size_t)len, m) != (size_t)len)
		die("cannot read model '%s'", f->model_path);
	fclose(m);
}

static void save_model(struct file *f)
{
	FILE *m = fopen(f->model_path, "wb");

	if (!m || (f->size && fwrite(f->data, 1, f->size, m) != f->size) || fclose(m) != 0)
		die("cannot save model '%s'", f->model_path);
}

int main(int argc, char *argv[])
{
	size_t n_files = 4, max_size = 3 * 1024 * 1024;
	unsigned long ops;
	struct file *files;

	if (argc < 5) {
		fprintf(stderr, "usage: atrest_fsx DIR MODELDIR SEED OPS [FILES] [MAXSIZE]\n");
		return 2;
	}
	rng_state = strtoull(argv[3], NULL, 10) | 1;
	ops = strtoul(argv[4], NULL, 10);
	if (argc > 5)
		n_files = strtoul(argv[5], NULL, 10);
	if (argc > 6)
		max_size = strtoul(argv[6], NULL, 10);
	printf("atrest_fsx: seed %s, %lu operations on %zu files (replay: %s %s %s %s %s %zu %zu)\n",
	       argv[3], ops, n_files, argv[0], argv[1], argv[2], argv[3], argv[4], n_files, max_size);
	fflush(stdout);

	files = calloc(n_files, sizeof(*files));
	if (!files)
		return 1;
	for (size_t i = 0; i < n_files; i++) {
		struct file *f = &files[i];
		bool exists;

		snprintf(f->path, sizeof(f->path), "%s/fsx%zu", argv[1], i);
		snprintf(f->model_path, sizeof(f->model_path), "%s/fsx%zu", argv[2], i);
		exists = access(f->model_path, F_OK) == 0;
		load_model(f);
		f->fd = -1;
		file_open(f, !exists);
		check_file(f);
	}

	for (op_no = 1; op_no <= ops; op_no++) {
		struct file *f = &files[rnd_below(n_files)];
		unsigned kind = (unsigned)rnd_below(100);

		if (kind < 35) { /* write, anywhere: inside, across segments, past EOF */
			size_t off = f->append ? f->size : rnd_below(f->size + 100000);
			size_t len = 1 + rnd_below(rnd_below(4) ? 70000 : 400000);
			uint8_t *buf;

			if (off + len > max_size)
				continue;
			buf = malloc(len);
			if (!buf)
				die("out of memory");
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			if (pwrite(f->fd, buf, len, (off_t)off) != (ssize_t)len)
				die("write '%s' at %zu+%zu: %s", f->path, off, len, strerror(errno));
			if (off + len > f->size)
				model_resize(f, off + len);
			memcpy(f->data + off, buf, len);
			free(buf);
		} else if (kind < 60) { /* read a random range */
			check_range(f, rnd_below(f->size + 1000), 1 + rnd_below(200000));
		} else if (kind < 72) { /* truncate, shorter or longer */
			size_t size = rnd_below(4) ? rnd_below(f->size + 1) : rnd_below(max_size);

			if (ftruncate(f->fd, (off_t)size) < 0)
				die("ftruncate '%s' to %zu: %s", f->path, size, strerror(errno));
			if (size < f->size) {
				f->size = size;
			} else
				model_resize(f, size);
		} else if (kind < 84) { /* reopen, sometimes truncating */
			file_close(f);
			file_open(f, rnd_below(10) == 0);
		} else if (kind < 90) {
			if (fsync(f->fd) < 0)
				die("fsync '%s': %s", f->path, strerror(errno));
		} else if (kind < 95) {
			struct stat st;
			if (stat(f->path, &st) < 0 || (size_t)st.st_size != f->size)
				die("stat '%s': size %jd, model %zu", f->path, (intmax_t)st.st_size,
				    f->size);
		} else {
			check_file(f);
		}
	}
	for (size_t i = 0; i < n_files; i++) {
		check_file(&files[i]);
		file_close(&files[i]);
		save_model(&files[i]);
		free(files[i].data);
	}
	free(files);
	printf("atrest_fsx: %lu operations verified\n", ops);
	return 0;
}
