/* SPDX-License-Identifier: Apache-2.0 */
/* Read-ahead: fetches sealed segments from the HCSE into the cache in parallel; verification stays with the reader. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

#define PREFETCH_SLOTS 64
#define PREFETCH_THREADS 3

enum slot_state {
	SLOT_FREE,
	SLOT_QUEUED,
	SLOT_BUSY,
};

struct slot {
	enum slot_state state;
	uint64_t ino, idx, gen, seq;
};

struct prefetch {
	struct fs *fs;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a slot was queued, or stop */
	pthread_cond_t done; /* a slot was freed */
	struct slot slots[PREFETCH_SLOTS];
	uint64_t seq;
	bool stop;
	pthread_t threads[PREFETCH_THREADS];
	size_t n_threads;
};

static struct slot *find(struct prefetch *p, uint64_t ino, uint64_t idx, uint64_t gen)
{
	for (size_t i = 0; i < PREFETCH_SLOTS; i++) {
		struct slot *s = &p->slots[i];
		if (s->state != SLOT_FREE && s->ino == ino && s->idx == idx && s->gen == gen)
			return s;
	}
	return NULL;
}

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct slot *next = NULL;

		while (!p->stop) {
			/* oldest first: the reader wants the nearest segment next */
			for (size_t i = 0; i < PREFETCH_SLOTS; i++)
				if (p->slots[i].state == SLOT_QUEUED &&
				    (!next || p->slots[i].seq < next->seq))
					next = &p->slots[i];
			if (next)
				break;
			pthread_cond_wait(&p->work, &p->lock);
		}
		if (p->stop)
			break;
		next->state = SLOT_BUSY;
		struct slot job = *next;
		pthread_mutex_unlock(&p->lock);

		_cleanup_free_ char *path = NULL, *con = NULL;
		size_t len;
		if (asprintf(&path, "%s/" ATREST_NODE_RN_FMT "/" ATREST_SEGMENT_RN_FMT, p->fs->ae_path,
			     job.ino, job.idx, job.gen) >= 0 &&
		    hcse_retrieve_cin(p->fs->hcse, path, &con, &len, NULL, NULL) == 0 &&
		    cache_seg_keep(p->fs->cache, job.ino, job.idx, job.gen, con, len) == 0)
			cache_seg_cached(p->fs->cache, job.ino, job.idx, job.gen, len);
		else
			path = (free(path), NULL);

		pthread_mutex_lock(&p->lock);
		next->state = SLOT_FREE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int prefetch_start(struct fs *fs, struct prefetch **ret)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fs = fs;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (size_t i = 0; i < PREFETCH_THREADS; i++) {
		if (pthread_create(&p->threads[i], NULL, prefetch_main, p) != 0)
			break;
		p->n_threads++;
	}
	*ret = p;
	return 0;
}

struct prefetch *prefetch_stop(struct prefetch *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

void prefetch_queue(struct prefetch *p, uint64_t ino, uint64_t idx, uint64_t gen)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && !find(p, ino, idx, gen)) {
		for (size_t i = 0; i < PREFETCH_SLOTS; i++)
			if (p->slots[i].state == SLOT_FREE) {
				p->slots[i] = (struct slot){ SLOT_QUEUED, ino, idx, gen, ++p->seq };
				pthread_cond_signal(&p->work);
				break;
			}
	}
	pthread_mutex_unlock(&p->lock);
}

bool prefetch_wait(struct prefetch *p, uint64_t ino, uint64_t idx, uint64_t gen)
{
	bool waited = false;
	struct slot *s;

	if (!p)
		return false;
	pthread_mutex_lock(&p->lock);
	while (!p->stop && (s = find(p, ino, idx, gen))) {
		if (s->state == SLOT_QUEUED)
			s->seq = 0; /* wanted now: first in line */
		waited = true;
		pthread_cond_wait(&p->done, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return waited;
}
