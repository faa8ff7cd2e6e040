// SPDX-License-Identifier: MIT
/*
 * I/O contexts (the kernel's block/blk-ioc.c): who is issuing, with what
 * priority and weight. Each thread has a default one, made on first use
 * and released when the thread exits; requests hold references, so a
 * thread may exit with I/O in flight.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk.h"

static _Thread_local struct io_context *current_ioc;	/* set explicitly */
static _Thread_local struct io_context *thread_ioc;	/* the default */
static pthread_key_t ioc_key;
static pthread_once_t ioc_once = PTHREAD_ONCE_INIT;

struct io_context *ioc_create(pid_t pid, uint16_t ioprio, uint16_t weight,
			      const char *comm)
{
	struct io_context *ioc = calloc(1, sizeof(*ioc));

	if (!ioc) {
		blk_err(-ENOMEM, "out of memory for an io context");
		return NULL;
	}
	atomic_init(&ioc->refcount, 1);
	ioc->pid = pid;
	ioc->ioprio = ioprio;
	ioc->weight = weight;
	if (comm)
		snprintf(ioc->comm, sizeof(ioc->comm), "%s", comm);
	return ioc;
}

void get_io_context(struct io_context *ioc)
{
	atomic_fetch_add_explicit(&ioc->refcount, 1, memory_order_relaxed);
}

void put_io_context(struct io_context *ioc)
{
	if (ioc && atomic_fetch_sub_explicit(&ioc->refcount, 1,
					     memory_order_acq_rel) == 1)
		free(ioc);
}

static void ioc_thread_exit(void *arg)
{
	put_io_context(arg);
	thread_ioc = NULL;
}

static void ioc_key_init(void)
{
	BUG_ON(pthread_key_create(&ioc_key, ioc_thread_exit));
}

struct io_context *blk_current_ioc(void)
{
	char comm[16] = "";

	if (current_ioc)
		return current_ioc;
	if (likely(thread_ioc))
		return thread_ioc;
	pthread_once(&ioc_once, ioc_key_init);
	pthread_getname_np(pthread_self(), comm, sizeof(comm));
	thread_ioc = ioc_create(gettid(), IOPRIO_DEFAULT, 0, comm);
	if (thread_ioc)
		pthread_setspecific(ioc_key, thread_ioc);
	return thread_ioc;
}

void blk_set_current_ioc(struct io_context *ioc)
{
	current_ioc = ioc;
}

int ioc_set_ioprio(struct io_context *ioc, int class, int level)
{
	if (class < IOPRIO_CLASS_NONE || class > IOPRIO_CLASS_IDLE)
		return blk_err(-EINVAL, "ioprio class %d: valid classes are "
			       "0 (none), 1 (rt), 2 (be), 3 (idle)", class);
	if (level < 0 || level >= IOPRIO_NR_LEVELS)
		return blk_err(-EINVAL, "ioprio level %d: valid levels are "
			       "0..%d", level, IOPRIO_NR_LEVELS - 1);
	ioc->ioprio = IOPRIO_PRIO_VALUE(class, level);
	return 0;
}

int ioc_set_weight(struct io_context *ioc, unsigned int weight)
{
	if (weight > 1000)
		return blk_err(-EINVAL, "weight %u: valid values are 1..1000, "
			       "or 0 to derive it from the priority", weight);
	ioc->weight = (uint16_t)weight;
	return 0;
}
