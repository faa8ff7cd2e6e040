/* SPDX-License-Identifier: MIT */
/*
 * Types shared by consumers and drivers: sectors, operations and flags,
 * block status codes, io contexts. Values follow include/linux/blk_types.h
 * where the kernel defines them.
 */
#ifndef BLKSTACK_BLK_TYPES_H
#define BLKSTACK_BLK_TYPES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef uint64_t sector_t;
#define SECTOR_SHIFT	9
#define SECTOR_SIZE	(1U << SECTOR_SHIFT)

/* blk_status_t: what an I/O ended with. blk_status_to_errno() maps them. */
typedef uint8_t blk_status_t;
#define BLK_STS_OK		0
#define BLK_STS_NOTSUPP		1
#define BLK_STS_TIMEOUT		2
#define BLK_STS_NOSPC		3
#define BLK_STS_TRANSPORT	4
#define BLK_STS_TARGET		5
#define BLK_STS_RESV_CONFLICT	6
#define BLK_STS_MEDIUM		7
#define BLK_STS_PROTECTION	8
#define BLK_STS_RESOURCE	9	/* driver out of resources: retry */
#define BLK_STS_IOERR		10
#define BLK_STS_DM_REQUEUE	11
#define BLK_STS_AGAIN		12	/* NOWAIT and would block */
#define BLK_STS_DEV_RESOURCE	13	/* retry only when this queue frees */
#define BLK_STS_ZONE_OPEN_RESOURCE 14
#define BLK_STS_ZONE_ACTIVE_RESOURCE 15
#define BLK_STS_OFFLINE		16
#define BLK_STS_DURATION_LIMIT	17
#define BLK_STS_INVAL		18	/* bad request: misaligned, past the end */
#define BLK_STS_NEXUS		19
#define BLK_STS_MAX		20

int blk_status_to_errno(blk_status_t status);
blk_status_t errno_to_blk_status(int errnum);
/* "I/O error", "timeout" ... as the kernel's blk_errors[] names them. */
const char *blk_status_to_str(blk_status_t status);

/*
 * Operations (low 8 bits of opf). Odd ops transfer data to the device,
 * even ops from it, as in the kernel.
 */
enum req_op {
	REQ_OP_READ = 0,
	REQ_OP_WRITE = 1,
	REQ_OP_FLUSH = 2,
	REQ_OP_DISCARD = 3,
	REQ_OP_SECURE_ERASE = 5,
	REQ_OP_WRITE_ZEROES = 9,
	REQ_OP_DRV_IN = 34,
	REQ_OP_DRV_OUT = 35,
	REQ_OP_LAST = 36,
};
#define REQ_OP_BITS	8
#define REQ_OP_MASK	((1U << REQ_OP_BITS) - 1)

typedef uint32_t blk_opf_t;

enum req_flag_bits {
	__REQ_FAILFAST_DEV = REQ_OP_BITS,
	__REQ_FAILFAST_TRANSPORT,
	__REQ_FAILFAST_DRIVER,
	__REQ_SYNC,
	__REQ_META,
	__REQ_PRIO,
	__REQ_NOMERGE,
	__REQ_IDLE,
	__REQ_INTEGRITY,
	__REQ_FUA,
	__REQ_PREFLUSH,
	__REQ_RAHEAD,
	__REQ_BACKGROUND,
	__REQ_NOWAIT,
	__REQ_POLLED,
	__REQ_ALLOC_CACHE,
	__REQ_SWAP,
	__REQ_DRV,
	__REQ_FS_PRIVATE,
	__REQ_NOUNMAP,
	__REQ_NR_BITS,
};

#define REQ_FAILFAST_DEV	(1U << __REQ_FAILFAST_DEV)
#define REQ_FAILFAST_TRANSPORT	(1U << __REQ_FAILFAST_TRANSPORT)
#define REQ_FAILFAST_DRIVER	(1U << __REQ_FAILFAST_DRIVER)
#define REQ_SYNC		(1U << __REQ_SYNC)
#define REQ_META		(1U << __REQ_META)
#define REQ_PRIO		(1U << __REQ_PRIO)
#define REQ_NOMERGE		(1U << __REQ_NOMERGE)
#define REQ_IDLE		(1U << __REQ_IDLE)
#define REQ_FUA			(1U << __REQ_FUA)
#define REQ_PREFLUSH		(1U << __REQ_PREFLUSH)
#define REQ_RAHEAD		(1U << __REQ_RAHEAD)
#define REQ_BACKGROUND		(1U << __REQ_BACKGROUND)
#define REQ_NOWAIT		(1U << __REQ_NOWAIT)
#define REQ_POLLED		(1U << __REQ_POLLED)
#define REQ_NOUNMAP		(1U << __REQ_NOUNMAP)
#define REQ_DRV			(1U << __REQ_DRV)

#define REQ_FAILFAST_MASK \
	(REQ_FAILFAST_DEV | REQ_FAILFAST_TRANSPORT | REQ_FAILFAST_DRIVER)
/* Flags that make two requests unmergeable when they differ. */
#define REQ_NOMERGE_FLAGS	(REQ_NOMERGE | REQ_PREFLUSH | REQ_FUA)

static inline enum req_op bio_op_of(blk_opf_t opf)
{
	return (enum req_op)(opf & REQ_OP_MASK);
}

static inline bool op_is_write(blk_opf_t op)
{
	return op & 1;
}

/* Reads and explicitly synchronous writes are sync; FUA/PREFLUSH imply it. */
static inline bool op_is_sync(blk_opf_t op)
{
	return (op & REQ_OP_MASK) == REQ_OP_READ ||
	       (op & (REQ_SYNC | REQ_FUA | REQ_PREFLUSH));
}

static inline bool op_is_flush(blk_opf_t op)
{
	return op & (REQ_FUA | REQ_PREFLUSH);
}

static inline bool op_is_discard(blk_opf_t op)
{
	return (op & REQ_OP_MASK) == REQ_OP_DISCARD;
}

/* Ops that carry no data buffer. */
static inline bool op_has_no_data(blk_opf_t op)
{
	enum req_op o = bio_op_of(op);

	return o == REQ_OP_FLUSH || o == REQ_OP_DISCARD ||
	       o == REQ_OP_SECURE_ERASE || o == REQ_OP_WRITE_ZEROES;
}

const char *blk_op_str(enum req_op op);

/*
 * I/O priority, the ioprio_set(2) encoding: class in the top 3 bits of a
 * 16-bit value, level (0 highest .. 7 lowest) in the low bits.
 */
enum {
	IOPRIO_CLASS_NONE = 0,
	IOPRIO_CLASS_RT = 1,
	IOPRIO_CLASS_BE = 2,
	IOPRIO_CLASS_IDLE = 3,
};
#define IOPRIO_CLASS_SHIFT	13
#define IOPRIO_PRIO_VALUE(class, level) \
	((uint16_t)(((class) << IOPRIO_CLASS_SHIFT) | (level)))
#define IOPRIO_PRIO_CLASS(p)	(((p) >> IOPRIO_CLASS_SHIFT) & 0x7)
#define IOPRIO_PRIO_LEVEL(p)	((p) & 0x7)
#define IOPRIO_NR_LEVELS	8
#define IOPRIO_DEFAULT		IOPRIO_PRIO_VALUE(IOPRIO_CLASS_NONE, 0)

/*
 * Who issues I/O: a thread, an NBD connection, a benchmark job. Schedulers
 * that keep per-issuer state (bfq) key it on this. Reference counted;
 * a bio holds a reference while it is in flight.
 */
struct io_context {
	_Atomic int refcount;
	pid_t pid;		/* issuing thread or a connection id */
	uint16_t ioprio;
	uint16_t weight;	/* 1..1000, 0 = default (from ioprio) */
	char comm[16];		/* process name for traces ("fio", "nbd-conn-3") */
	void *sched_data[2];	/* scheduler-private per-context state */
};

#endif
