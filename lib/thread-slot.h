/* SPDX-License-Identifier: MIT */
/*
 * Per-thread slots: the user-space stand-in for "this CPU's copy" of a
 * counter. Each thread gets a slot number below THREAD_SLOTS; while fewer
 * than THREAD_SLOTS live threads have one, a slot has one owner, which may update
 * its copy with a plain load and store (no atomic read-modify-write),
 * as the kernel updates per-CPU data with preemption off. Threads beyond
 * that share the last slot, which no thread owns, and must use atomic
 * operations: the flag says which. A slot is free again when its thread
 * exits.
 */
#ifndef BLKSTACK_LIB_THREAD_SLOT_H
#define BLKSTACK_LIB_THREAD_SLOT_H

#include <stdbool.h>
#include "compiler.h"

#define THREAD_SLOTS	64

struct thread_slot {
	int slot;		/* -1 until claimed */
	bool shared;		/* another thread may use this slot too */
};

extern _Thread_local struct thread_slot current_thread_slot
	__attribute__((tls_model("initial-exec")));
void thread_slot_claim(void);

static inline struct thread_slot *this_thread_slot(void)
{
	if (unlikely(current_thread_slot.slot < 0))
		thread_slot_claim();
	return &current_thread_slot;
}

/*
 * Add @v to a counter of a slot whose shared flag is @shared: a plain
 * store when only this thread writes the slot, an atomic add otherwise.
 * Callers making several adds read the flag once and pass it.
 */
#define slot_counter_add_flag(shared, c, v)				\
	do {								\
		if (likely(!(shared)))					\
			atomic_store_explicit((c),			\
				atomic_load_explicit((c),		\
					memory_order_relaxed) + (v),	\
				memory_order_relaxed);			\
		else							\
			atomic_fetch_add_explicit((c), (v),		\
						  memory_order_relaxed);\
	} while (0)

/* Add @v to a counter of this thread's slot. */
#define slot_counter_add(ts, c, v) slot_counter_add_flag((ts)->shared, c, v)

#endif
