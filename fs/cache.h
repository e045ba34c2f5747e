/* SPDX-License-Identifier: Apache-2.0 */
/* The local cache: sealed segments (small ones inside it, larger ones as files under cache=DIR) and the SQLite index of nodes, versions and uploads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;
struct node;
struct seg;

/*
 * Opens (creating, mode 0700) the cache directory `dir` holding at most
 * max_bytes of segments. *ret_fresh tells whether the index was just
 * created (the namespace must then be rebuilt from the HCSE).
 */
int cache_open(const char *dir, uint64_t max_bytes, struct cache **ret, int *ret_fresh);
struct cache *cache_close(struct cache *c);
/*
 * From now on an index write with no batch open opens one (group commit,
 * see cache_commit), so a create, its segments and its close share one
 * transaction and one WAL sync. Call it once threads may run (after
 * daemonising: the batch starts the committer thread).
 */
void cache_batch_writes(struct cache *c);

/* Small settings ("aei", "next_ino"). *ret is malloc'd; -ENOENT when absent. */
int cache_meta_get(struct cache *c, const char *key, char **ret);
int cache_meta_set(struct cache *c, const char *key, const char *value);

/* Upserts every persistent field of a node (not its segments). */
int cache_node_save(struct cache *c, const struct node *n);
/* Removes a node, its segment rows and files and its manifest. */
int cache_node_delete(struct cache *c, uint64_t ino);
/* Calls fn for every stored node (freshly allocated; fn takes it). */
int cache_nodes_load(struct cache *c, struct node *(*alloc)(void *ud, uint64_t ino),
		     void *userdata);

/* The committed segment table of a file (malloc'd array indexed by segment). */
int cache_segs_load(struct cache *c, uint64_t ino, struct seg **ret, size_t *ret_n);

/*
 * Commits a version atomically: the node row, its segment table (rows not
 * present become absent; `uploaded` is kept for segments whose generation
 * did not change), the sealed manifest, and remote paths to delete once
 * this version is acknowledged. It joins the open batch of commits (group
 * commit): *ret_batch names it for cache_wait_durable(). Its segment files
 * must be durable first (cache_segs_sync).
 */
int cache_commit(struct cache *c, const struct node *n, const struct seg *segs, size_t n_segs,
		 const char *manifest, size_t manifest_len, char *const *gc_paths, size_t n_gc,
		 uint64_t *ret_batch);
/*
 * Waits until batch (from cache_commit) survives a power loss: the
 * committer thread commits it and fdatasync()s the index's WAL once for
 * every commit in it. -EIO once any batch could not be made durable.
 */
int cache_wait_durable(struct cache *c, uint64_t batch);
/*
 * Makes the segment files of ino whose generation is gen durable, with
 * their names (seg/<ino>, and seg/ when that directory is new): one
 * fdatasync per file, writeback started for all of them first. Call it
 * without fs->lock, before cache_commit() of the version naming them.
 */
int cache_segs_sync(struct cache *c, uint64_t ino, const struct seg *segs, size_t n_segs,
		    uint64_t gen);
/* Stores an already committed manifest fetched from the HCSE (verified). */
int cache_manifest_put(struct cache *c, uint64_t ino, uint64_t version, uint64_t length,
		       const char *compact, size_t len, const struct seg *segs, size_t n_segs);
/* The latest committed manifest of a node: -ENOENT when none. */
int cache_manifest_get(struct cache *c, uint64_t ino, uint64_t *ret_version,
		       uint64_t *ret_length, char **ret, size_t *ret_len);

/* Segments: write (atomically; in the index up to 64 KiB sealed, else a
 * file), read whole, remove. */
int cache_seg_write(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		    size_t len);
/* The same for a verified copy fetched from the HCSE (clean: its writeback
 * is left to the kernel). */
int cache_seg_keep(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, const char *data,
		   size_t len);
int cache_seg_read(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, char **ret,
		   size_t *ret_len);
bool cache_seg_exists(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen);
void cache_seg_unlink(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen);
/* Records that a segment file is present again (fetched), and its use for LRU. */
void cache_seg_cached(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen, size_t bytes);
void cache_seg_touch(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen);

/* Uploads: segments still to push for a node (arrays of idx and gen). */
int cache_segs_pending(struct cache *c, uint64_t ino, uint64_t **ret_idx, uint64_t **ret_gen,
		       size_t *ret_n);
/* 1 when the row was live and is now marked uploaded, 0 when it was superseded meanwhile. */
int cache_seg_uploaded(struct cache *c, uint64_t ino, uint64_t idx, uint64_t gen);
bool cache_node_has_pending_segs(struct cache *c, uint64_t ino);
/* Inodes with anything to push, and remote deletions that are due. */
int cache_dirty_nodes(struct cache *c, uint64_t **ret, size_t *ret_n);
int cache_gc_add(struct cache *c, uint64_t ino, uint64_t after_version, const char *path);
/* The next due deletion: *ret_id, *ret_path (malloc'd); -ENOENT when none. */
int cache_gc_next(struct cache *c, uint64_t after_id, int64_t *ret_id, char **ret_path);
int cache_gc_done(struct cache *c, int64_t id);
/* The highest inode number a queued deletion names (0: none): not to be reused
 * while its container may still be deleted. */
uint64_t cache_gc_max_ino(struct cache *c);
uint64_t cache_pending_bytes(struct cache *c);

/* Evicts uploaded segment files, least recently used first, down to the bound. */
void cache_evict(struct cache *c);
/* fsync(): makes everything committed so far survive a power loss (a no-op
 * when nothing changed since the last durable batch). */
int cache_sync(struct cache *c);
