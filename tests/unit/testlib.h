/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the unit tests, linked into every test program from
 * testlib.c:
 *
 *  - checks that count failures and print file:line and both values;
 *    test_report() turns the count (and unexpected WARNs) into the exit
 *    code (0 pass, 1 fail);
 *  - a watchdog that turns a hang into a failure with a dump of every
 *    queue;
 *  - data patterns, CPU masks, and devices made through the public API
 *    (null_blk, queue attributes, write-and-verify);
 *  - asynchronous I/O with a completion record per I/O (struct tio),
 *    submitted as bios or through blkdev_submit();
 *  - the recording driver: a request-based device built on the driver
 *    API (tag set, blk_mq_alloc_disk, add_disk) that records every
 *    request reaching ->queue_rq, can hold requests until the test
 *    completes them, can refuse (BLK_STS_RESOURCE / DEV_RESOURCE),
 *    requeue or fail them, limits dispatch with a budget, and may keep
 *    data in a flat memory buffer;
 *  - "fifo-test", a minimal FIFO I/O scheduler counting its hooks.
 */
#ifndef BLKSTACK_TESTS_TESTLIB_H
#define BLKSTACK_TESTS_TESTLIB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <blkstack/blk-mq.h>

/* ---- checks ---- */

extern _Atomic int testlib_failures;

void testlib_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each check evaluates to whether it held, so a test can stop early. */
#define CHECK(cond)							\
	({								\
		bool __ok = !!(cond);					\
		if (!__ok)						\
			testlib_fail(__FILE__, __LINE__, "%s", #cond);	\
		__ok;							\
	})

#define CHECK_MSG(cond, ...)						\
	({								\
		bool __ok = !!(cond);					\
		if (!__ok)						\
			testlib_fail(__FILE__, __LINE__, __VA_ARGS__);	\
		__ok;							\
	})

#define CHECK_EQ_U64(a, b)						\
	({								\
		uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);	\
		bool __ok = __a == __b;					\
		if (!__ok)						\
			testlib_fail(__FILE__, __LINE__,		\
				     "%s == %s: %llu != %llu", #a, #b,	\
				     (unsigned long long)__a,		\
				     (unsigned long long)__b);		\
		__ok;							\
	})

/* For -errno results. */
#define CHECK_EQ_INT(a, b)						\
	({								\
		long long __a = (long long)(a), __b = (long long)(b);	\
		bool __ok = __a == __b;					\
		if (!__ok)						\
			testlib_fail(__FILE__, __LINE__,		\
				     "%s == %s: %lld != %lld", #a, #b,	\
				     __a, __b);				\
		__ok;							\
	})

/* A check the rest of the current function depends on. */
#define REQUIRE(cond)							\
	do {								\
		if (!CHECK(cond))					\
			return;						\
	} while (0)

#define REQUIRE_MSG(cond, ...)						\
	do {								\
		if (!CHECK_MSG(cond, __VA_ARGS__))			\
			return;						\
	} while (0)

/*
 * Set up a test program: a simulated topology of @nr_cpus CPUs (so hw
 * queue counts do not depend on the machine) with this thread pinned to
 * CPU 0 -- or, with @nr_cpus 0, the machine's topology and no pinning --;
 * the watchdog started, warnings counted from here. Call first.
 */
void test_init(unsigned int nr_cpus);
/*
 * Start a named part; a hang of more than @secs in it (4 times that in a
 * sanitizer build) fails the test with a dump of every queue.
 */
void test_begin(const char *name, unsigned int secs);
/* WARN_ON()s the test provokes on purpose (others are failures). */
void test_allow_warns(unsigned long n);
/* Print the summary; the exit code: 0 all passed, 1 otherwise. */
int test_report(void);
/* Exit 77 (skip) with a reason. */
__attribute__((noreturn, format(printf, 1, 2)))
void test_skip(const char *fmt, ...);

bool test_slow(void);		/* sanitizer build: scale loads down */
/* @n, or a quarter of it (at least 1) when test_slow(). */
unsigned int test_scale(unsigned int n);
uint64_t test_now_ns(void);
void test_sleep_ms(unsigned int ms);

/* Deterministic data: byte pattern of @seed for device offset @off. */
void test_fill(void *buf, size_t len, uint64_t seed, uint64_t off);
/* -1 if @buf holds the pattern, else the first bad byte. */
long test_verify(const void *buf, size_t len, uint64_t seed, uint64_t off);
bool test_is_zero(const void *buf, size_t len);

/* Present-CPU mask of the CPUs in @list (terminated by -1). */
void test_cpu_mask(uint64_t *mask, size_t words, const int *list);

/* ---- devices through the public API ---- */

/*
 * Create a null_blk device with the parameters printed from @fmt; NULL
 * (and a failure) if it cannot be.
 */
struct gendisk *test_null_add(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Remove a device (NULL: nothing) and drop the caller's reference. */
void test_dev_del(struct gendisk *disk);
/* Store a queue attribute; a failure unless it works. */
int test_attr_store(struct gendisk *disk, const char *attr, const char *val);
/* The attribute's value without the trailing newline, in @buf. */
const char *test_attr_show(struct gendisk *disk, const char *attr, char *buf,
			   size_t len);
/*
 * Wait up to @ms for the disk's in-flight count to drop to 0 (a waiter
 * wakes when its bio ends, a moment before the request's accounting
 * ends); the count left.
 */
uint64_t test_wait_idle(struct gendisk *disk, unsigned int ms);
/*
 * Write @len bytes of pattern @seed at @off through blkdev_pwrite(), read
 * them back into @rbuf and compare; false (and a failure) if anything
 * went wrong.
 */
bool test_write_verify(struct gendisk *disk, off_t off, size_t len,
		       uint64_t seed, void *wbuf, void *rbuf);

/*
 * Switch @disk's scheduler between none and @sched 100 times while three
 * threads write, read back and verify 16 KiB blocks on a fresh device
 * @driver:@params: no I/O lost, duplicated, failed or corrupted.
 */
void test_sched_switching(const char *sched, const char *driver,
			  const char *params);

/*
 * FIELD=N on the first line of @disk's debug dump that contains @line
 * (e.g. "mq-deadline BE:"); -1 if the line or the field is not there.
 */
long test_dump_field(struct gendisk *disk, const char *line,
		     const char *field);

/* ---- asynchronous I/O ---- */

#define TIO_MAX 512

struct tio;

/* One I/O of a tio: its completion, filled in when it ends. */
struct tio_req {
	struct tio *t;
	int err;			/* -errno */
	unsigned int calls;		/* end_io calls: must end at 1 */
	_Atomic bool done;
	unsigned int done_seq;		/* order of completion in t, from 1 */
	uint64_t submit_ns, done_ns;
};

/*
 * A group of I/Os submitted by a test: counters under @lock, and the
 * records of the I/Os submitted with tio_submit*() by index.
 */
struct tio {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int nr;		/* submitted */
	unsigned int done;		/* completions */
	unsigned int errors;		/* completions with an error */
	int last_err;			/* the latest of those errors */
	struct tio_req req[TIO_MAX];	/* of tio_submit*(): req[index] */
};

void tio_init(struct tio *t);
void tio_destroy(struct tio *t);

/*
 * Submit one bio of @nvec segments (@bufs[i], @lens[i]) at @sector.
 * Returns its index in @t->req. Data-less ops (discard, write zeroes,
 * flush) pass @nvec 0 and their size in @lens[0] (or none).
 */
int tio_submit_vec(struct tio *t, struct gendisk *disk, blk_opf_t opf,
		   sector_t sector, void *const *bufs,
		   const unsigned int *lens, unsigned int nvec);
/* One segment; @buf NULL makes a data-less bio of @len bytes. */
int tio_submit(struct tio *t, struct gendisk *disk, blk_opf_t opf,
	       sector_t sector, void *buf, unsigned int len);
/*
 * Submit through blkdev_submit() (byte offset @off, the public API's
 * checks), recorded in the caller's @r, which may be reused once done.
 * Returns blkdev_submit()'s result; on an error nothing was submitted.
 */
int tio_blkdev_submit(struct tio *t, struct tio_req *r, struct gendisk *disk,
		      blk_opf_t opf, off_t off, void *buf, size_t len);
/* Wait until @n I/Os completed; false on time-out (@ms). */
bool tio_wait(struct tio *t, unsigned int n, unsigned int ms);
/* Wait until at most @left I/Os are in flight; false on time-out (@ms). */
bool tio_wait_pending(struct tio *t, unsigned int left, unsigned int ms);
unsigned int tio_done(struct tio *t);
unsigned int tio_pending(struct tio *t);	/* submitted, not done */

/* Submit one bio and wait for it: its -errno. */
int test_bio_sync(struct gendisk *disk, blk_opf_t opf, sector_t sector,
		  void *buf, unsigned int len);

/* ---- the recording driver ---- */

enum rec_mode {
	REC_INLINE,	/* complete inside ->queue_rq */
	REC_HELD,	/* keep until rec_complete_*() */
};

struct rec_config {
	const char *name;		/* NULL: "recN" */
	sector_t capacity;		/* sectors */
	unsigned int nr_hw_queues;
	unsigned int queue_depth;
	unsigned int reserved_tags;
	unsigned int tag_flags;		/* BLK_MQ_F_* */
	struct queue_limits lim;
	bool memory_backed;		/* keep data in a flat buffer */
	bool has_queue_rqs;
	bool has_commit_rqs;
	bool has_budget;		/* get/put_budget; reruns the queues
					   when budget returns after a refusal */
	unsigned int budget;		/* requests the budget allows */
	enum rec_mode mode;
};

/*
 * Defaults: 16 MiB, 1 hw queue of depth 64, BLK_MQ_F_SHOULD_MERGE,
 * kernel default limits but max_hw_sectors 2560, no data kept, inline
 * completion, no optional ops.
 */
void rec_config_init(struct rec_config *cfg);

/* Limits to change from those defaults (0, false: keep the default). */
struct rec_limits {
	unsigned int max_hw_sectors;
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int max_segments;
	unsigned int max_segment_size;
	unsigned int chunk_sectors;
	unsigned int max_hw_discard_sectors;
	unsigned int discard_granularity;
	unsigned int max_write_zeroes_sectors;
	bool features_write_cache;
};

/* Apply the limits @l sets (NULL: none) to @cfg->lim. */
void rec_config_limits(struct rec_config *cfg, const struct rec_limits *l);

#define REC_MAX_BIOS 16

/* One ->queue_rq call as the driver saw it. */
struct rec_io {
	unsigned int seq;
	enum req_op op;
	blk_opf_t cmd_flags;
	sector_t sector;
	unsigned int bytes;
	unsigned int nr_bios;
	unsigned short nr_phys_segments;
	unsigned int hctx;
	bool last;			/* bd->last */
	bool via_queue_rqs;		/* came in a ->queue_rqs batch */
	blk_status_t ret;		/* what ->queue_rq returned */
	bool requeued;			/* driver called blk_mq_requeue_request */
	sector_t bio_sector[REC_MAX_BIOS];	/* of the first bios */
};

struct rec_dev;

struct rec_dev *rec_create(const struct rec_config *cfg);
/* Complete what is held, remove the disk, free everything. */
void rec_destroy(struct rec_dev *d);
struct gendisk *rec_disk(struct rec_dev *d);
struct request_queue *rec_queue(struct rec_dev *d);
unsigned char *rec_mem(struct rec_dev *d);	/* NULL unless memory_backed */

/* The log of ->queue_rq calls. */
unsigned int rec_nr_ios(struct rec_dev *d);
bool rec_get_io(struct rec_dev *d, unsigned int i, struct rec_io *out);
/* Calls the driver accepted (and did not requeue); of one op or all. */
unsigned int rec_accepted(struct rec_dev *d);
unsigned int rec_count_op(struct rec_dev *d, enum req_op op);
void rec_clear_log(struct rec_dev *d);
/* Print the log to stderr (for failure diagnosis). */
void rec_dump(struct rec_dev *d, const char *why);
/* Check that @n calls were logged; dump the log (@what) if not. */
bool rec_expect_ios(struct rec_dev *d, unsigned int n, const char *what);
/* Log entry @i (zeroed, and a failure, if there is none). */
struct rec_io rec_io_at(struct rec_dev *d, unsigned int i);

unsigned long rec_queue_rqs_calls(struct rec_dev *d);
unsigned long rec_commit_calls(struct rec_dev *d);
/* Requests accepted with bd->last false and not yet committed. */
unsigned int rec_uncommitted(struct rec_dev *d);

/* After @skip more ->queue_rq calls, return @st from the next @n. */
void rec_fail_next(struct rec_dev *d, unsigned int skip, unsigned int n,
		   blk_status_t st);
/* The next @n accepted requests are requeued by the driver instead. */
void rec_requeue_next(struct rec_dev *d, unsigned int n);
/* Requests touching [@start, @start + @nr) complete with @st (nr 0: off). */
void rec_set_error(struct rec_dev *d, sector_t start, sector_t nr,
		   blk_status_t st);
/* The next @n REQ_OP_FLUSH requests complete with @st. */
void rec_fail_flushes(struct rec_dev *d, unsigned int n, blk_status_t st);

void rec_set_mode(struct rec_dev *d, enum rec_mode mode);
unsigned int rec_nr_held(struct rec_dev *d);
/* Wait until at least @n are held / logged / accepted; false after @ms. */
bool rec_wait_held(struct rec_dev *d, unsigned int n, unsigned int ms);
bool rec_wait_ios(struct rec_dev *d, unsigned int n, unsigned int ms);
bool rec_wait_accepted(struct rec_dev *d, unsigned int n, unsigned int ms);
/* Complete the oldest @n held requests (fewer if fewer held). */
unsigned int rec_complete_n(struct rec_dev *d, unsigned int n);
unsigned int rec_complete_all(struct rec_dev *d);
/* Complete held request number @idx (0 = oldest). */
bool rec_complete_at(struct rec_dev *d, unsigned int idx);

/* Budget (has_budget): change the limit; in use now; most ever in use. */
void rec_set_budget(struct rec_dev *d, unsigned int budget);
unsigned int rec_budget_in_use(struct rec_dev *d);
unsigned int rec_budget_max(struct rec_dev *d);
unsigned long rec_budget_denied(struct rec_dev *d);

/* ---- "fifo-test": a FIFO scheduler that counts its hooks ---- */

struct fifo_stats {
	_Atomic unsigned long inserted;
	_Atomic unsigned long dispatched;
	_Atomic unsigned long prepared;
	_Atomic unsigned long finished;
	_Atomic unsigned long completed;
	_Atomic unsigned long requeued;
	_Atomic unsigned long queues;	/* attached now (init - exit) */
};

extern struct fifo_stats fifo_stats;
/* Register with elv_register() once per program; name "fifo-test". */
extern struct elevator_type fifo_test_elv;

/* elv_register(&fifo_test_elv), a failure unless it works. */
void fifo_test_register(void);
void fifo_stats_snapshot(struct fifo_stats *out);

#endif
