/* SPDX-License-Identifier: Apache-2.0 */
/* One guarded, locked scratch page per thread, for key material on hot paths. */
#pragma once

#include <stddef.h>

#define SECURE_SCRATCH_SIZE 4096

/*
 * This thread's SECURE_SCRATCH_SIZE bytes of sodium_malloc memory (created
 * on first use, freed when the thread exits), or NULL when out of memory.
 * Mapping and unmapping a guarded page per use (with the TLB shootdowns
 * unmapping costs a multi-threaded process) dominated a key retrieval.
 * Not reentrant: use it only within one call that does not call another
 * user of it, and wipe what you put there (sodium_memzero) before returning.
 */
void *secure_scratch(void);

#define SECURE_SLOT_SIZE 64

/*
 * A SECURE_SLOT_SIZE-byte slot of sodium_malloc memory for one short-lived
 * key (seal_key, a key tefd released), or NULL when out of memory. Slots
 * are carved from guarded, locked chunks that stay mapped: a key costs no
 * mmap/mlock/munmap (and no TLB shootdown across threads). Any thread.
 * secure_slot_put() wipes the whole slot and takes it back; NULL is fine.
 */
void *secure_slot_get(void);
void secure_slot_put(void *slot);
