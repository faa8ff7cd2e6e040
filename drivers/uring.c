// SPDX-License-Identifier: MIT
/*
 * uring: a block device backed by a regular file or a block device, doing
 * its I/O through io_uring (what the kernel's loop driver does with
 * kiocbs). Parameters: docs/uring.md.
 *
 * Each hardware queue owns a ring. ->queue_rq prepares one SQE per
 * request under the ring's SQ lock (several threads may dispatch on one
 * hctx) and submits when bd->last says the batch is complete, or in
 * ->commit_rqs. One completion thread per ring reaps CQEs (the
 * "interrupt"); poll queues have IOPOLL rings and are reaped by the
 * submitter through ->poll. Short transfers are resubmitted for the
 * rest, -EAGAIN is retried a few times.
 *
 * FLUSH -> fdatasync, FUA -> RWF_DSYNC, DISCARD -> punch a hole (files)
 * or BLKDISCARD on kblockd (block devices: an ioctl, not asynchronous),
 * WRITE_ZEROES -> zero range (punch a hole where the file system lacks
 * it, as tmpfs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block/blk.h"
#include "lib/options.h"

extern const struct blk_driver uring_driver;

#define UR_MAX_SEGMENTS		128	/* iovecs in each request's pdu */
#define UR_MAX_DEPTH		4096
#define UR_MAX_AGAIN		8	/* -EAGAIN retries before failing */
#define UR_STOP			((uint64_t)1)	/* user_data of the stop NOP */
#define UR_SQPOLL_IDLE_MS	1000

enum ur_op { UR_READ, UR_WRITE, UR_FSYNC, UR_FALLOC, UR_DISCARD_IOCTL };

struct uring_params {
	char *path;
	uint64_t size;			/* 0 = the file's or device's */
	int direct;			/* -1 = by file type */
	unsigned int queues;
	unsigned int depth;
	unsigned int poll_queues;
	unsigned int sqpoll;
	unsigned int fixed_files;
	unsigned int readonly;
};

struct uring_dev {
	struct gendisk *disk;
	struct uring_params p;
	struct blk_mq_tag_set tag_set;
	int fd;
	bool is_bdev;
	bool direct;
	uint64_t size;			/* bytes the device exposes */
	unsigned int lbs;		/* logical block size */
	unsigned int dma_align;		/* buffer alignment for O_DIRECT */
	unsigned int granularity;	/* discard granularity */
	bool can_punch;			/* FALLOC_FL_PUNCH_HOLE works */
	bool can_zero_range;		/* FALLOC_FL_ZERO_RANGE works */
	bool can_discard;		/* block device: BLKDISCARD */
	/* the first default ring, for polled I/O the kernel will not poll */
	struct uring_queue *_Atomic unpolled_ring;
	/* undo on a failed create: nothing is left behind */
	bool created;
	bool extended;
	off_t old_size;
	bool undo;
};

/* One per hardware queue: the ring, its SQ lock, the reaper thread. */
struct uring_queue {
	struct uring_dev *ud;
	struct io_uring ring;
	pthread_mutex_t sq_lock;
	unsigned int unsubmitted;	/* prepared SQEs; under sq_lock */
	pthread_mutex_t cq_lock;	/* poll queues: one poller at a time */
	pthread_t thread;
	bool has_thread;
	bool polled;			/* IOPOLL ring, reaped by ->poll */
	_Atomic bool no_iopoll[2];	/* the kernel refused polled reads,
					 * writes: those are done synchronously */
	bool fixed;			/* the file is registered as index 0 */
	unsigned int index;
	_Atomic unsigned long completed;
	_Atomic unsigned long resubmitted;
	_Atomic unsigned long submit_calls;
	_Atomic unsigned long sync_ops;	/* done without the ring */
	_Atomic unsigned long unpolled;	/* sent to the unpolled ring */
};

/* Per-request state in the request's pdu (tag_set.cmd_size). */
struct uring_cmd {
	struct work_struct work;	/* BLKDISCARD on kblockd */
	struct iovec *iov;		/* what is left of the transfer */
	unsigned int nr_iov;
	unsigned int left;		/* bytes left */
	uint64_t pos;			/* file offset of the next byte */
	uint64_t len;			/* fsync/fallocate/discard length */
	enum ur_op op;
	int mode;			/* fallocate mode */
	int rw_flags;			/* RWF_DSYNC for FUA */
	unsigned short again;		/* -EAGAIN retries so far */
	blk_status_t error;
	/*
	 * The submitter hands the command to the completion side through
	 * the kernel; this release/acquire pair says so to the compiler and
	 * to ThreadSanitizer, which cannot see through io_uring.
	 */
	_Atomic unsigned int handoff;
	struct iovec vecs[UR_MAX_SEGMENTS];
};

static struct uring_dev *rq_ud(struct request *rq)
{
	return queue_driver_data(rq->q);
}

/* ---- building the I/O ---- */

/* The request's segments as iovecs, contiguous ones merged. */
static int uring_map_segments(struct request *rq, struct uring_cmd *cmd)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int n = 0;

	rq_for_each_segment(bv, rq, iter) {
		struct iovec *last = n ? &cmd->vecs[n - 1] : NULL;

		if (last && (char *)last->iov_base + last->iov_len ==
			    (char *)bv.bv_buf) {
			last->iov_len += bv.bv_len;
			continue;
		}
		if (n == UR_MAX_SEGMENTS)
			return -E2BIG;
		cmd->vecs[n].iov_base = bv.bv_buf;
		cmd->vecs[n++].iov_len = bv.bv_len;
	}
	cmd->iov = cmd->vecs;
	cmd->nr_iov = n;
	return 0;
}

static int uring_discard_mode(struct uring_dev *ud)
{
	return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
}

/*
 * Write zeroes as the loop driver does: zero range when the blocks must
 * stay allocated (REQ_NOUNMAP), else punch a hole; a file system without
 * zero range (tmpfs) punches either way.
 */
static int uring_zeroes_mode(struct uring_dev *ud, blk_opf_t flags)
{
	if (ud->is_bdev || (ud->can_zero_range && (flags & REQ_NOUNMAP)))
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	if (ud->can_punch)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* Fill @cmd from @rq; BLK_STS_OK or the status to end it with. */
static blk_status_t uring_cmd_init(struct request *rq, struct uring_cmd *cmd)
{
	struct uring_dev *ud = rq_ud(rq);

	cmd->pos = (uint64_t)blk_rq_pos(rq) << SECTOR_SHIFT;
	cmd->len = blk_rq_bytes(rq);
	cmd->left = blk_rq_bytes(rq);
	cmd->again = 0;
	cmd->error = BLK_STS_OK;
	cmd->rw_flags = 0;
	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		cmd->op = req_op(rq) == REQ_OP_READ ? UR_READ : UR_WRITE;
		if (rq->cmd_flags & REQ_FUA)
			cmd->rw_flags = RWF_DSYNC;
		if (uring_map_segments(rq, cmd)) {
			WARN_ON_ONCE(1);	/* max_segments keeps it in */
			return BLK_STS_IOERR;
		}
		return BLK_STS_OK;
	case REQ_OP_FLUSH:
		cmd->op = UR_FSYNC;
		return BLK_STS_OK;
	case REQ_OP_DISCARD:
		cmd->op = ud->is_bdev ? UR_DISCARD_IOCTL : UR_FALLOC;
		cmd->mode = uring_discard_mode(ud);
		return BLK_STS_OK;
	case REQ_OP_WRITE_ZEROES:
		cmd->op = UR_FALLOC;
		cmd->mode = uring_zeroes_mode(ud, rq->cmd_flags);
		return BLK_STS_OK;
	default:
		return BLK_STS_NOTSUPP;
	}
}

/* Fill @sqe with what is left of @rq's command. */
static void uring_prep_sqe(struct uring_queue *uq, struct request *rq,
			   struct io_uring_sqe *sqe)
{
	struct uring_cmd *cmd = blk_mq_rq_to_pdu(rq);
	int fd = uq->fixed ? 0 : uq->ud->fd;

	switch (cmd->op) {
	case UR_READ:
		if (cmd->nr_iov == 1)
			io_uring_prep_read(sqe, fd, cmd->iov->iov_base,
					   (unsigned int)cmd->iov->iov_len,
					   cmd->pos);
		else
			io_uring_prep_readv(sqe, fd, cmd->iov, cmd->nr_iov,
					    cmd->pos);
		break;
	case UR_WRITE:
		if (cmd->nr_iov == 1)
			io_uring_prep_write(sqe, fd, cmd->iov->iov_base,
					    (unsigned int)cmd->iov->iov_len,
					    cmd->pos);
		else
			io_uring_prep_writev(sqe, fd, cmd->iov, cmd->nr_iov,
					     cmd->pos);
		sqe->rw_flags = cmd->rw_flags;
		break;
	case UR_FSYNC:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case UR_FALLOC:
		io_uring_prep_fallocate(sqe, fd, cmd->mode, (off_t)cmd->pos,
					(off_t)cmd->len);
		break;
	case UR_DISCARD_IOCTL:
		BUG_ON(1);	/* never goes through the ring */
	}
	if (uq->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, rq);
	atomic_store_explicit(&cmd->handoff,
			      atomic_load_explicit(&cmd->handoff,
						   memory_order_relaxed) + 1,
			      memory_order_release);
}

/* ---- submission ---- */

/* Caller holds uq->sq_lock. */
static int __uring_submit(struct uring_queue *uq)
{
	int ret;

	/* the reaper peeks at it unlocked: updates are WRITE_ONCE */
	if (!uq->unsubmitted)
		return 0;
	atomic_fetch_add_explicit(&uq->submit_calls, 1, memory_order_relaxed);
	do {
		ret = io_uring_submit(&uq->ring);
	} while (ret == -EINTR);
	if (ret >= 0)
		WRITE_ONCE(uq->unsubmitted, 0);
	return ret < 0 ? ret : 0;
}

/* An SQE, flushing what is prepared if the SQ ring is full. */
static struct io_uring_sqe *__uring_get_sqe(struct uring_queue *uq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uq->ring);

	if (!sqe && uq->unsubmitted && !__uring_submit(uq))
		sqe = io_uring_get_sqe(&uq->ring);
	return sqe;
}

/*
 * Put the rest of @rq back on the ring (short transfer, -EAGAIN), from
 * the completion side. False if it could not be.
 */
static bool uring_resubmit(struct uring_queue *uq, struct request *rq)
{
	struct io_uring_sqe *sqe;
	bool ok = false;

	atomic_fetch_add_explicit(&uq->resubmitted, 1, memory_order_relaxed);
	pthread_mutex_lock(&uq->sq_lock);
	sqe = __uring_get_sqe(uq);
	if (sqe) {
		uring_prep_sqe(uq, rq, sqe);
		WRITE_ONCE(uq->unsubmitted, uq->unsubmitted + 1);
		ok = !__uring_submit(uq);
	}
	pthread_mutex_unlock(&uq->sq_lock);
	return ok;
}

/* ---- completion ---- */

/* Skip @bytes of the command's iovecs: a short transfer. */
static void uring_cmd_advance(struct uring_cmd *cmd, unsigned int bytes)
{
	cmd->pos += bytes;
	cmd->left -= bytes;
	while (bytes) {
		size_t step = min((size_t)bytes, cmd->iov->iov_len);

		cmd->iov->iov_base = (char *)cmd->iov->iov_base + step;
		cmd->iov->iov_len -= step;
		bytes -= (unsigned int)step;
		if (!cmd->iov->iov_len) {
			cmd->iov++;
			cmd->nr_iov--;
		}
	}
}

/* A read at or past the end of a shorter file: the rest reads as zeroes. */
static void uring_zero_rest(struct uring_cmd *cmd)
{
	for (unsigned int i = 0; i < cmd->nr_iov; i++)
		memset(cmd->iov[i].iov_base, 0, cmd->iov[i].iov_len);
	cmd->left = 0;
}

/* The rest of a read or write with preadv/pwritev2, for a ring that cannot. */
static int uring_sync_rw(struct uring_dev *ud, struct uring_cmd *cmd)
{
	while (cmd->left) {
		ssize_t n = cmd->op == UR_READ ?
			    preadv(ud->fd, cmd->iov, (int)cmd->nr_iov,
				   (off_t)cmd->pos) :
			    pwritev2(ud->fd, cmd->iov, (int)cmd->nr_iov,
				     (off_t)cmd->pos, cmd->rw_flags);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && cmd->op == UR_READ)
			uring_zero_rest(cmd);
		else if (n == 0)
			return -EIO;
		else
			uring_cmd_advance(cmd, (unsigned int)n);
	}
	return 0;
}

/*
 * Commands done synchronously: BLKDISCARD (on kblockd), anything but
 * reads and writes on an IOPOLL ring, which takes only those, and reads
 * or writes the kernel refuses to poll.
 */
static blk_status_t uring_sync_op(struct uring_dev *ud, struct uring_cmd *cmd)
{
	uint64_t range[2] = { cmd->pos, cmd->len };
	int ret;

	switch (cmd->op) {
	case UR_READ:
	case UR_WRITE:
		ret = uring_sync_rw(ud, cmd);
		return ret ? errno_to_blk_status(ret) : BLK_STS_OK;
	case UR_FSYNC:
		ret = fdatasync(ud->fd);
		break;
	case UR_FALLOC:
		ret = fallocate(ud->fd, cmd->mode, (off_t)cmd->pos,
				(off_t)cmd->len);
		break;
	case UR_DISCARD_IOCTL:
		ret = ioctl(ud->fd, BLKDISCARD, range);
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	return ret ? errno_to_blk_status(-errno) : BLK_STS_OK;
}

/*
 * The kernel's answer @res for @rq. Returns true when the request is
 * finished (cmd->error says how), false when the rest went back on the
 * ring.
 */
static bool uring_cmd_done(struct uring_queue *uq, struct request *rq,
			   int res)
{
	struct uring_cmd *cmd = blk_mq_rq_to_pdu(rq);
	bool rw = cmd->op == UR_READ || cmd->op == UR_WRITE;

	if (res == -EAGAIN || res == -EINTR) {
		if (++cmd->again <= UR_MAX_AGAIN && uring_resubmit(uq, rq))
			return false;
		cmd->error = rq->cmd_flags & REQ_NOWAIT ? BLK_STS_AGAIN :
			     BLK_STS_IOERR;
		return true;
	}
	if (res == -EOPNOTSUPP && uq->polled && rw) {
		/*
		 * The file cannot be polled (a device under the file system
		 * without poll queues refuses polled reads): from now on this
		 * direction goes to a default ring and completes by its
		 * thread, as the kernel completes REQ_POLLED bios by interrupt
		 * on a queue that cannot poll.
		 */
		struct uring_queue *dq = atomic_load(&uq->ud->unpolled_ring);

		atomic_store(&uq->no_iopoll[cmd->op == UR_WRITE], true);
		atomic_fetch_add(&uq->unpolled, 1);
		if (dq && uring_resubmit(dq, rq))
			return false;
		cmd->error = uring_sync_op(uq->ud, cmd);
		return true;
	}
	if (res < 0) {
		cmd->error = errno_to_blk_status(res);
		return true;
	}
	if (!rw || (unsigned int)res >= cmd->left)
		return true;
	if (res == 0) {
		/* end of file: a read gets zeroes, a write cannot go on */
		if (cmd->op == UR_READ)
			uring_zero_rest(cmd);
		else
			cmd->error = BLK_STS_IOERR;
		return true;
	}
	uring_cmd_advance(cmd, (unsigned int)res);
	if (uring_resubmit(uq, rq))
		return false;
	cmd->error = BLK_STS_IOERR;
	return true;
}

/*
 * End a finished request: successes go into @iob to be freed in bulk,
 * errors through ->complete. blk_mq_mark_complete() loses to a time-out
 * that got there first.
 */
static void uring_end_rq(struct request *rq, struct io_comp_batch *iob)
{
	struct uring_cmd *cmd = blk_mq_rq_to_pdu(rq);

	if (cmd->error) {
		blk_mq_complete_request(rq);
		return;
	}
	if (!blk_mq_mark_complete(rq))
		return;
	if (!blk_mq_add_to_batch(rq, iob, 0, blk_mq_end_request_batch))
		blk_mq_end_request(rq, BLK_STS_OK);
}

/*
 * Reap what the CQ ring holds now, at most a batch. Returns how many
 * requests finished; *@stop set when the stop NOP came back.
 */
static int uring_reap(struct uring_queue *uq, struct io_comp_batch *iob,
		      bool *stop)
{
	struct io_uring_cqe *cqes[64];
	unsigned int n = io_uring_peek_batch_cqe(&uq->ring, cqes,
						 ARRAY_SIZE(cqes));
	int nr = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint64_t data = io_uring_cqe_get_data64(cqes[i]);
		int res = cqes[i]->res;
		struct request *rq = (struct request *)(uintptr_t)data;

		if (data == UR_STOP) {
			*stop = true;
			continue;
		}
		atomic_load_explicit(&((struct uring_cmd *)
				       blk_mq_rq_to_pdu(rq))->handoff,
				     memory_order_acquire);
		if (!uring_cmd_done(uq, rq, res))
			continue;
		nr++;
		uring_end_rq(rq, iob);
	}
	io_uring_cq_advance(&uq->ring, n);
	atomic_fetch_add_explicit(&uq->completed, (unsigned long)nr,
				  memory_order_relaxed);
	return nr;
}

/* Send what queue_rq prepared but did not submit. */
static void uring_commit(struct uring_queue *uq)
{
	pthread_mutex_lock(&uq->sq_lock);
	__uring_submit(uq);
	pthread_mutex_unlock(&uq->sq_lock);
}

/* CQEs waiting? A hint read without the CQ lock (atomically: racy). */
static bool uring_cq_pending(struct uring_queue *uq)
{
	struct io_uring_cq *cq = &uq->ring.cq;

	return atomic_load_explicit((_Atomic unsigned int *)cq->ktail,
				    memory_order_acquire) !=
	       atomic_load_explicit((_Atomic unsigned int *)cq->khead,
				    memory_order_relaxed);
}

static void uring_flush_batch(struct io_comp_batch *iob)
{
	if (iob->req_list)
		iob->complete(iob);
	iob->req_list = NULL;
	iob->complete = NULL;
	iob->need_ts = false;
}

/*
 * Reap under the CQ lock: the completion thread, pollers and submitters
 * share the CQ ring. With @wait false, give way to whoever holds it.
 */
static int uring_reap_locked(struct uring_queue *uq, bool wait,
			     struct io_comp_batch *iob, bool *stop)
{
	int nr;

	if (!wait && pthread_mutex_trylock(&uq->cq_lock))
		return 0;
	if (wait)
		pthread_mutex_lock(&uq->cq_lock);
	nr = uring_reap(uq, iob, stop);
	pthread_mutex_unlock(&uq->cq_lock);
	return nr;
}

/*
 * Completions the submitter finds after its own submit: the kernel posts
 * CQEs of this thread's earlier I/O on the way out of io_uring_enter(),
 * so ending them here saves a round trip through the completion thread
 * (the io_uring task that submitted is the one that runs their task
 * work). Only what is already there is taken; nothing waits.
 */
static void uring_reap_inline(struct uring_queue *uq)
{
	DEFINE_IO_COMP_BATCH(iob);
	bool stop = false;

	if (!uring_cq_pending(uq))
		return;
	uring_reap_locked(uq, false, &iob, &stop);
	WARN_ON_ONCE(stop);	/* the stop NOP comes after the last I/O */
	uring_flush_batch(&iob);
}

/* Sleep in the kernel until the CQ ring holds at least one CQE. */
static int uring_wait_cq(struct uring_queue *uq)
{
	int ret;

	/* liburing's wait reads the CQ head unlocked: do it atomically */
	if (uring_cq_pending(uq))
		return 0;
	ret = io_uring_enter((unsigned int)uq->ring.ring_fd, 0, 1,
			     IORING_ENTER_GETEVENTS, NULL);
	if (ret == -1)
		ret = -errno;
	return ret < 0 ? ret : 0;
}

/* The "interrupt": wait for completions and end them, until stopped. */
static void *uring_cq_thread(void *arg)
{
	struct uring_queue *uq = arg;
	DEFINE_IO_COMP_BATCH(iob);
	struct blk_plug plug;
	bool stop = false;

	while (!stop) {
		int ret = uring_wait_cq(uq);

		if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY)
			continue;
		if (ret) {
			pr_err("uring: %s: waiting for completions: %s",
			       uq->ud->disk->disk_name, strerror(-ret));
			break;
		}
		/* under a plug: work left for the batch's end (NBD replies,
		   blk_check_plugged) and bios submitted meanwhile go together */
		blk_start_plug(&plug);
		uring_reap_locked(uq, true, &iob, &stop);
		uring_flush_batch(&iob);
		blk_finish_plug(&plug);
		if (READ_ONCE(uq->unsubmitted))
			uring_commit(uq);
	}
	return NULL;
}

/* ---- blk_mq_ops ---- */

static void uring_commit_rqs(struct blk_mq_hw_ctx *hctx);

static void uring_discard_work(struct work_struct *work)
{
	struct uring_cmd *cmd = container_of(work, struct uring_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);

	cmd->error = uring_sync_op(rq_ud(rq), cmd);
	blk_mq_complete_request(rq);
}

/* Start @rq on another ring @dq and submit it; false if @dq is full. */
static bool uring_issue(struct uring_queue *dq, struct request *rq)
{
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&dq->sq_lock);
	sqe = __uring_get_sqe(dq);
	if (sqe) {
		blk_mq_start_request(rq);
		uring_prep_sqe(dq, rq, sqe);
		WRITE_ONCE(dq->unsubmitted, dq->unsubmitted + 1);
		__uring_submit(dq);
	}
	pthread_mutex_unlock(&dq->sq_lock);
	return sqe != NULL;
}

/* A command that does not go through the ring; BLK_STS_OK if it did not. */
static bool uring_queue_off_ring(struct uring_queue *uq, struct request *rq,
				 struct uring_cmd *cmd)
{
	if (cmd->op == UR_DISCARD_IOCTL) {
		blk_mq_start_request(rq);
		INIT_WORK(&cmd->work, uring_discard_work);
		kblockd_schedule_work(&cmd->work);
		return true;
	}
	if (uq->polled && cmd->op <= UR_WRITE &&
	    atomic_load_explicit(&uq->no_iopoll[cmd->op],
				 memory_order_relaxed)) {
		struct uring_queue *dq = atomic_load(&uq->ud->unpolled_ring);

		atomic_fetch_add_explicit(&uq->unpolled, 1,
					  memory_order_relaxed);
		if (dq && uring_issue(dq, rq))
			return true;
	}
	if (uq->polled && (cmd->op > UR_WRITE ||
			   atomic_load_explicit(&uq->no_iopoll[cmd->op],
						memory_order_relaxed))) {
		atomic_fetch_add_explicit(&uq->sync_ops, 1,
					  memory_order_relaxed);
		blk_mq_start_request(rq);
		blk_mq_end_request(rq, uring_sync_op(uq->ud, cmd));
		return true;
	}
	return false;
}

static blk_status_t uring_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct uring_queue *uq = hctx_driver_data(hctx);
	struct request *rq = bd->rq;
	struct uring_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct io_uring_sqe *sqe;
	blk_status_t st;

	st = uring_cmd_init(rq, cmd);
	if (st)
		return st;
	if (uring_queue_off_ring(uq, rq, cmd)) {
		if (bd->last)
			uring_commit_rqs(hctx);
		return BLK_STS_OK;
	}
	pthread_mutex_lock(&uq->sq_lock);
	sqe = __uring_get_sqe(uq);
	if (!sqe) {
		/* full: rerun when one of ours completes */
		__uring_submit(uq);
		pthread_mutex_unlock(&uq->sq_lock);
		return BLK_STS_DEV_RESOURCE;
	}
	blk_mq_start_request(rq);
	uring_prep_sqe(uq, rq, sqe);
	WRITE_ONCE(uq->unsubmitted, uq->unsubmitted + 1);
	/*
	 * A failed submit (-EBUSY: completions to reap first) leaves the
	 * SQE queued; the next submit, or the reaper, sends it.
	 */
	if (bd->last)
		__uring_submit(uq);
	pthread_mutex_unlock(&uq->sq_lock);
	if (bd->last && !uq->polled)
		uring_reap_inline(uq);
	return BLK_STS_OK;
}

static void uring_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	struct uring_queue *uq = hctx_driver_data(hctx);

	uring_commit(uq);
	if (!uq->polled)
		uring_reap_inline(uq);
}

/* Poll queues: the submitter reaps, one poller per ring at a time. */
static int uring_poll(struct blk_mq_hw_ctx *hctx, struct io_comp_batch *iob)
{
	struct uring_queue *uq = hctx_driver_data(hctx);
	bool stop = false;
	int nr;

	if (READ_ONCE(uq->unsubmitted))
		uring_commit(uq);
	/* an IOPOLL ring completes only when asked: poll the file once */
	if (!uring_cq_pending(uq))
		io_uring_get_events(&uq->ring);
	nr = uring_reap_locked(uq, false, iob, &stop);
	WARN_ON_ONCE(stop);
	return nr;
}

/*
 * The kernel has the I/O and its buffers: it cannot be taken back, only
 * waited for. The kernel's loop driver has no time-out handler either.
 */
static enum blk_eh_timer_return uring_timeout_rq(struct request *rq)
{
	return BLK_EH_RESET_TIMER;
}

static int uring_queue_start(struct uring_dev *ud, struct uring_queue *uq,
			     unsigned int idx, bool polled)
{
	struct io_uring_params prm = { 0 };
	char name[16];
	int ret;

	if (ud->p.sqpoll) {
		prm.flags |= IORING_SETUP_SQPOLL;
		prm.sq_thread_idle = UR_SQPOLL_IDLE_MS;
	}
	if (polled)
		prm.flags |= IORING_SETUP_IOPOLL;
	ret = io_uring_queue_init_params(ud->p.depth, &uq->ring, &prm);
	if (ret)
		return blk_err(ret, "uring: io_uring_queue_init(%u entries%s%s): "
			       "%s", ud->p.depth, polled ? ", IOPOLL" : "",
			       ud->p.sqpoll ? ", SQPOLL" : "", strerror(-ret));
	uq->ud = ud;
	uq->index = idx;
	uq->polled = polled;
	if (ud->p.fixed_files) {
		ret = io_uring_register_files(&uq->ring, &ud->fd, 1);
		uq->fixed = !ret;
		if (ret)
			pr_warn("uring: registering the file: %s; using the "
				"plain descriptor", strerror(-ret));
	}
	pthread_mutex_init(&uq->sq_lock, NULL);
	pthread_mutex_init(&uq->cq_lock, NULL);
	if (polled)
		return 0;
	ret = pthread_create(&uq->thread, NULL, uring_cq_thread, uq);
	if (ret) {
		pthread_mutex_destroy(&uq->sq_lock);
		pthread_mutex_destroy(&uq->cq_lock);
		io_uring_queue_exit(&uq->ring);
		return blk_err(-ret, "uring: completion thread: %s",
			       strerror(ret));
	}
	snprintf(name, sizeof(name), "uring-cq/%u", idx);
	pthread_setname_np(uq->thread, name);
	uq->has_thread = true;
	return 0;
}

/* After del_gendisk drained the queue: stop the reaper with a NOP. */
static void uring_queue_stop(struct uring_queue *uq)
{
	if (uq->has_thread) {
		struct io_uring_sqe *sqe;

		pthread_mutex_lock(&uq->sq_lock);
		sqe = __uring_get_sqe(uq);
		BUG_ON(!sqe);	/* nothing is in flight any more */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, UR_STOP);
		WRITE_ONCE(uq->unsubmitted, uq->unsubmitted + 1);
		__uring_submit(uq);
		pthread_mutex_unlock(&uq->sq_lock);
		pthread_join(uq->thread, NULL);
	}
	io_uring_queue_exit(&uq->ring);
	pthread_mutex_destroy(&uq->sq_lock);
	pthread_mutex_destroy(&uq->cq_lock);
}

static int uring_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			   unsigned int idx)
{
	struct uring_dev *ud = data;
	unsigned int nr = ud->tag_set.nr_hw_queues;
	struct uring_queue *uq = calloc(1, sizeof(*uq));
	int ret;

	if (!uq)
		return -ENOMEM;
	/* the last poll_queues hctxs are the poll map's (uring_map_queues) */
	ret = uring_queue_start(ud, uq, idx,
				ud->p.poll_queues && idx >= nr - ud->p.poll_queues);
	if (ret) {
		free(uq);
		return ret;
	}
	hctx_set_driver_data(hctx, uq);
	if (!uq->polled) {
		struct uring_queue *none = NULL;

		atomic_compare_exchange_strong(&ud->unpolled_ring, &none, uq);
	}
	return 0;
}

static void uring_exit_hctx(struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	struct uring_queue *uq = hctx_driver_data(hctx);
	struct uring_queue *self = uq;

	/* the queue is drained or frozen: no polled I/O is looking */
	atomic_compare_exchange_strong(&uq->ud->unpolled_ring, &self, NULL);
	uring_queue_stop(uq);
	free(uq);
}

/* queues for the default map, poll_queues for the poll map. */
static void uring_map_queues(struct blk_mq_tag_set *set)
{
	struct uring_dev *ud = set->driver_data;

	blk_mq_map_default_and_poll(set, ud->p.poll_queues);
}

static void uring_show_hctx(struct blk_mq_hw_ctx *hctx, FILE *out)
{
	struct uring_queue *uq = hctx_driver_data(hctx);

	fprintf(out, "  uring: ring=%u completed=%lu resubmitted=%lu "
		"submit_calls=%lu sync_ops=%lu unpolled=%lu%s%s\n", uq->index,
		atomic_load(&uq->completed), atomic_load(&uq->resubmitted),
		atomic_load(&uq->submit_calls), atomic_load(&uq->sync_ops),
		atomic_load(&uq->unpolled),
		uq->polled ? " iopoll" : "", uq->fixed ? " fixed_file" : "");
}

static void uring_complete_rq(struct request *rq)
{
	struct uring_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->error);
}

static const struct blk_mq_ops uring_mq_ops = {
	.queue_rq	= uring_queue_rq,
	.commit_rqs	= uring_commit_rqs,
	.complete	= uring_complete_rq,
	.timeout	= uring_timeout_rq,
	.poll		= uring_poll,
	.init_hctx	= uring_init_hctx,
	.exit_hctx	= uring_exit_hctx,
	.map_queues	= uring_map_queues,
	.show_hctx	= uring_show_hctx,
};

/* ---- parameters ---- */

static const char uring_keys[] = "path, size, direct, queues, depth, "
	"poll_queues, sqpoll, fixed_files, readonly";

static int uring_parse_uint(const char *key, const char *v, unsigned int min,
			    unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || *end || *v == '-' || n < min || n > max)
		return blk_err(-EINVAL, "uring: %s=%s: valid values are %u..%u",
			       key, v, min, max);
	*out = (unsigned int)n;
	return 0;
}

static int uring_param_set(struct uring_params *p, const char *k,
			   const char *v)
{
	unsigned int u;
	int ret;

#define UINT_PARAM(name, lo, hi, field)					\
	if (!strcmp(k, name))						\
		return uring_parse_uint(k, v, lo, hi, &p->field);
	if (!strcmp(k, "path")) {
		if (!*v)
			return blk_err(-EINVAL, "uring: path=: empty; give a "
				       "regular file or a block device");
		free(p->path);
		p->path = strdup(v);
		return p->path ? 0 : -ENOMEM;
	}
	if (!strcmp(k, "size")) {
		if (opt_parse_size(v, &p->size) || !p->size)
			return blk_err(-EINVAL, "uring: size=%s: a size in bytes "
				       "above 0, with an optional K/M/G/T suffix "
				       "(e.g. size=1G)", v);
		return 0;
	}
	if (!strcmp(k, "direct")) {
		ret = uring_parse_uint(k, v, 0, 1, &u);
		if (!ret)
			p->direct = (int)u;
		return ret;
	}
	UINT_PARAM("queues", 1, 64, queues)
	UINT_PARAM("depth", 1, UR_MAX_DEPTH, depth)
	UINT_PARAM("poll_queues", 0, 64, poll_queues)
	UINT_PARAM("sqpoll", 0, 1, sqpoll)
	UINT_PARAM("fixed_files", 0, 1, fixed_files)
	UINT_PARAM("readonly", 0, 1, readonly)
#undef UINT_PARAM
	return blk_err(-EINVAL, "uring: unknown parameter '%s'; valid: %s", k,
		       uring_keys);
}

/* Parse "k=v,k=v" over the defaults; on error *@p holds nothing to free. */
static int uring_params_parse(struct uring_params *p, const char *params)
{
	char *buf = strdup(params ? params : ""), *save, *tok;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	*p = (struct uring_params){ .direct = -1, .queues = 1, .depth = 128,
				    .fixed_files = 1 };
	for (tok = strtok_r(buf, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			ret = blk_err(-EINVAL, "uring: '%s': parameters are "
				      "key=value; valid keys: %s", tok,
				      uring_keys);
			break;
		}
		*eq = '\0';
		ret = uring_param_set(p, tok, eq + 1);
	}
	free(buf);
	if (!ret && !p->path)
		ret = blk_err(-EINVAL, "uring: path= is required (a regular "
			      "file or a block device); valid keys: %s",
			      uring_keys);
	if (!ret && p->poll_queues && p->direct == 0)
		ret = blk_err(-EINVAL, "uring: poll_queues=%u needs direct=1 "
			      "(IOPOLL works only on O_DIRECT I/O)",
			      p->poll_queues);
	if (ret) {
		free(p->path);
		p->path = NULL;
	}
	return ret;
}

/* ---- the backing file ---- */

/* Open path= as asked; a missing regular file is created with size=. */
static int uring_open(struct uring_dev *ud, struct stat *st)
{
	const struct uring_params *p = &ud->p;
	int flags = (p->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	bool create = false;

	if (stat(p->path, st)) {
		if (errno != ENOENT)
			return blk_err(-errno, "uring: path=%s: %s", p->path,
				       strerror(errno));
		if (!p->size || p->readonly)
			return blk_err(-ENOENT, "uring: path=%s does not exist "
				       "(give size= without readonly=1 to "
				       "create it)", p->path);
		create = true;
		flags |= O_CREAT | O_EXCL;
	} else if (S_ISBLK(st->st_mode)) {
		ud->is_bdev = true;
	} else if (!S_ISREG(st->st_mode)) {
		return blk_err(-EINVAL, "uring: path=%s: not a regular file "
			       "or a block device", p->path);
	}
	ud->direct = p->direct < 0 ? ud->is_bdev : p->direct;
	if (p->poll_queues && !ud->direct)
		return blk_err(-EINVAL, "uring: poll_queues=%u needs direct=1 "
			       "(IOPOLL works only on O_DIRECT I/O)",
			       p->poll_queues);
	ud->fd = open(p->path, flags | (ud->direct ? O_DIRECT : 0), 0644);
	if (ud->fd < 0 && errno == EINVAL && ud->direct)
		return blk_err(-EINVAL, "uring: direct=1: the file system of "
			       "%s refuses O_DIRECT; use direct=0", p->path);
	if (ud->fd < 0)
		return blk_err(-errno, "uring: path=%s: open: %s", p->path,
			       strerror(errno));
	ud->created = create;
	if (fstat(ud->fd, st))
		return blk_err(-errno, "uring: path=%s: fstat: %s", p->path,
			       strerror(errno));
	return 0;
}

/* The device's size: size= (files grow to it, sparse) or what is there. */
static int uring_set_size(struct uring_dev *ud, const struct stat *st)
{
	const struct uring_params *p = &ud->p;
	uint64_t have = (uint64_t)st->st_size;

	if (ud->is_bdev && ioctl(ud->fd, BLKGETSIZE64, &have))
		return blk_err(-errno, "uring: path=%s: BLKGETSIZE64: %s",
			       p->path, strerror(errno));
	ud->size = p->size ? p->size : have;
	if (p->size > have) {
		if (ud->is_bdev || p->readonly)
			return blk_err(-EINVAL, "uring: size=%llu: %s %s holds "
				       "only %llu bytes",
				       (unsigned long long)p->size,
				       ud->is_bdev ? "device" : "read-only file",
				       p->path, (unsigned long long)have);
		if (ftruncate(ud->fd, (off_t)p->size))
			return blk_err(-errno, "uring: path=%s: extending to "
				       "%llu bytes: %s", p->path,
				       (unsigned long long)p->size,
				       strerror(errno));
		ud->extended = !ud->created;
		ud->old_size = st->st_size;
	}
	ud->size -= ud->size % ud->lbs;
	if (!ud->size)
		return blk_err(-EINVAL, "uring: path=%s is empty (%llu bytes); "
			       "give size= (at least %u) to extend it", p->path,
			       (unsigned long long)have, ud->lbs);
	return 0;
}

/* A sysfs queue attribute of a block device, as a number (0 if none). */
static uint64_t uring_bdev_attr(const struct stat *st, const char *attr)
{
	unsigned long long v = 0;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s",
		 major(st->st_rdev), minor(st->st_rdev), attr);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/*
 * Block sizes: the device's (BLKSSZGET), or for O_DIRECT on a file what
 * statx(STATX_DIOALIGN) says the file system needs; else 512.
 */
static int uring_probe_block_size(struct uring_dev *ud, const struct stat *st)
{
	struct statx sx;
	int lbs = 512;

	ud->lbs = 512;
	ud->dma_align = 1;
	ud->granularity = (unsigned int)st->st_blksize;
	if (ud->is_bdev) {
		if (ioctl(ud->fd, BLKSSZGET, &lbs))
			return blk_err(-errno, "uring: path=%s: BLKSSZGET: %s",
				       ud->p.path, strerror(errno));
		ud->lbs = (unsigned int)lbs;
		ud->granularity = max(ud->lbs, (unsigned int)
				      uring_bdev_attr(st, "discard_granularity"));
	}
	if (ud->direct && !statx(ud->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN,
				 &sx) && (sx.stx_mask & STATX_DIOALIGN) &&
	    sx.stx_dio_offset_align) {
		ud->lbs = max(ud->lbs, sx.stx_dio_offset_align);
		ud->dma_align = max(1U, sx.stx_dio_mem_align);
	} else if (ud->direct) {
		ud->dma_align = ud->lbs;
	}
	if (ud->granularity < ud->lbs || ud->granularity % ud->lbs)
		ud->granularity = ud->lbs;
	return 0;
}

/*
 * Which fallocate modes the file system has, tried past the end of the
 * file where they change nothing that can be read (a zeroed range there
 * is punched out again).
 */
static void uring_probe_discard(struct uring_dev *ud, const struct stat *st)
{
	off_t eof = (off_t)ALIGN_UP(max((uint64_t)st->st_size, ud->size),
				    (uint64_t)ud->granularity);
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

	if (ud->p.readonly)
		return;
	if (ud->is_bdev) {
		ud->can_discard = uring_bdev_attr(st, "discard_max_bytes") != 0;
		return;
	}
	ud->can_punch = !fallocate(ud->fd, punch, eof, ud->granularity);
	ud->can_zero_range = !fallocate(ud->fd, FALLOC_FL_ZERO_RANGE |
					FALLOC_FL_KEEP_SIZE, eof,
					ud->granularity);
	if (ud->can_zero_range && ud->can_punch)
		fallocate(ud->fd, punch, eof, ud->granularity);
}

static void uring_fill_limits(struct uring_dev *ud, struct queue_limits *lim)
{
	unsigned int max_fl = (UINT32_MAX >> SECTOR_SHIFT) &
			      ~((ud->granularity >> SECTOR_SHIFT) - 1);

	blk_set_default_limits(lim);
	lim->logical_block_size = ud->lbs;
	lim->physical_block_size = ud->lbs;
	lim->io_min = ud->lbs;
	lim->max_hw_sectors = BLK_DEF_MAX_SECTORS;
	lim->max_segments = UR_MAX_SEGMENTS;
	lim->max_segment_size = UINT32_MAX >> 1;
	/* O_DIRECT wants aligned buffers; the page cache takes any */
	lim->dma_alignment = ud->direct ? ud->dma_align - 1 : 0;
	if (ud->can_punch || ud->can_discard) {
		lim->max_hw_discard_sectors = max_fl;
		lim->discard_granularity = ud->granularity;
	}
	if (!ud->p.readonly && (ud->is_bdev || ud->can_punch ||
				ud->can_zero_range))
		lim->max_write_zeroes_sectors = max_fl;
	/* files sit in a page cache, devices may have a cache: flush */
	lim->features_write_cache = !ud->p.readonly;
	lim->features_fua = !ud->p.readonly;
	lim->features_poll = ud->p.poll_queues != 0;
}

/* ---- create/destroy ---- */

static void uring_free(struct uring_dev *ud)
{
	if (ud->fd >= 0) {
		if (ud->undo && ud->extended &&
		    ftruncate(ud->fd, ud->old_size))
			pr_warn("uring: %s: could not shrink back to %lld "
				"bytes: %s", ud->p.path,
				(long long)ud->old_size, strerror(errno));
		close(ud->fd);
	}
	if (ud->undo && ud->created)
		unlink(ud->p.path);
	free(ud->p.path);
	free(ud);
}

static int uring_setup_backing(struct uring_dev *ud)
{
	struct stat st;
	int ret;

	ret = uring_open(ud, &st);
	if (!ret)
		ret = uring_probe_block_size(ud, &st);
	if (!ret)
		ret = uring_set_size(ud, &st);
	if (!ret)
		uring_probe_discard(ud, &st);
	return ret;
}

static void uring_init_set(struct uring_dev *ud)
{
	struct blk_mq_tag_set *set = &ud->tag_set;

	memset(set, 0, sizeof(*set));
	set->ops = &uring_mq_ops;
	set->nr_hw_queues = ud->p.queues + ud->p.poll_queues;
	set->nr_maps = ud->p.poll_queues ? HCTX_MAX_TYPES : 1;
	set->queue_depth = ud->p.depth;
	set->cmd_size = sizeof(struct uring_cmd);
	set->driver_data = ud;
	/* as loop: the file system or device below schedules already */
	set->flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
}

static _Atomic unsigned int uring_index;

static int uring_create(const char *name, const char *params,
			struct gendisk **diskp)
{
	struct queue_limits lim;
	struct uring_dev *ud;
	char auto_name[32];
	int ret;

	ud = calloc(1, sizeof(*ud));
	if (!ud)
		return blk_err(-ENOMEM, "uring: out of memory");
	ud->fd = -1;
	ud->undo = true;
	ret = uring_params_parse(&ud->p, params);
	if (!ret)
		ret = uring_setup_backing(ud);
	if (!ret) {
		uring_init_set(ud);
		ret = blk_mq_alloc_tag_set(&ud->tag_set);
	}
	if (ret) {
		uring_free(ud);
		return ret;
	}
	if (!name || !*name) {
		snprintf(auto_name, sizeof(auto_name), "uring%u",
			 atomic_fetch_add(&uring_index, 1));
		name = auto_name;
	}
	uring_fill_limits(ud, &lim);
	ud->disk = blk_mq_alloc_disk(&ud->tag_set, &lim, ud);
	if (!ud->disk) {
		blk_mq_free_tag_set(&ud->tag_set);
		uring_free(ud);
		return -ENOMEM;
	}
	disk_set_private(ud->disk, ud);
	ud->disk->driver = &uring_driver;
	if (ud->p.readonly)
		set_disk_ro(ud->disk, true);
	ret = add_disk(ud->disk, name, ud->size >> SECTOR_SHIFT);
	if (ret) {
		put_disk(ud->disk);	/* disk_release -> uring_destroy */
		return ret;
	}
	ud->undo = false;
	*diskp = ud->disk;
	put_disk(ud->disk);	/* the registry keeps it */
	return 0;
}

static void uring_destroy(struct gendisk *disk)
{
	struct uring_dev *ud = disk_private(disk);

	if (!ud)
		return;
	blk_mq_free_tag_set(&ud->tag_set);
	uring_free(ud);
}

/* ---- without the block layer ---- */

/* One synchronous I/O with pread/pwrite (blkbench --bypass). */
static int uring_bypass_rw(struct gendisk *disk, enum req_op op,
			   sector_t sector, void *buf, unsigned int len)
{
	struct uring_dev *ud = disk_private(disk);
	off_t off = (off_t)(sector << SECTOR_SHIFT);
	char *p = buf;

	if (op != REQ_OP_READ && op != REQ_OP_WRITE)
		return blk_err(-EOPNOTSUPP, "uring: bypass does reads and "
			       "writes only");
	while (len) {
		ssize_t n = op == REQ_OP_READ ? pread(ud->fd, p, len, off) :
						pwrite(ud->fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return blk_err(-errno, "uring: %s at %lld: %s",
				       blk_op_str(op), (long long)off,
				       strerror(errno));
		if (n == 0 && op == REQ_OP_READ) {
			memset(p, 0, len);	/* past the end of the file */
			break;
		}
		if (n == 0)
			return blk_err(-EIO, "uring: write at %lld: no progress",
				       (long long)off);
		p += n;
		off += n;
		len -= (unsigned int)n;
	}
	return 0;
}

/*
 * Allocated extents and holes with SEEK_DATA/SEEK_HOLE. A file system
 * (or block device) without them reports everything as data; past the
 * end of the file is a hole.
 */
static int uring_block_status(struct gendisk *disk, uint64_t off,
			      uint64_t len,
			      int (*fn)(uint64_t off, uint64_t len, bool hole,
					void *arg),
			      void *arg)
{
	struct uring_dev *ud = disk_private(disk);
	uint64_t end = off + len;
	int ret = 0;

	while (off < end && !ret) {
		off_t data = lseek(ud->fd, (off_t)off, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno == ENXIO)
			data = (off_t)end;
		else if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP))
			return fn(off, end - off, false, arg);
		else if (data < 0)
			return blk_err(-errno, "uring: SEEK_DATA at %llu: %s",
				       (unsigned long long)off,
				       strerror(errno));
		if ((uint64_t)data > off) {
			uint64_t n = min((uint64_t)data, end) - off;

			ret = fn(off, n, true, arg);
			off += n;
			continue;
		}
		hole = lseek(ud->fd, (off_t)off, SEEK_HOLE);
		if (hole < 0)
			return blk_err(-errno, "uring: SEEK_HOLE at %llu: %s",
				       (unsigned long long)off,
				       strerror(errno));
		hole = (off_t)min((uint64_t)hole, end);
		ret = fn(off, (uint64_t)hole - off, false, arg);
		off = (uint64_t)hole;
	}
	return ret;
}

const struct blk_driver uring_driver = {
	.name		= "uring",
	.params_help	= uring_keys,
	.create		= uring_create,
	.destroy	= uring_destroy,
	.bypass_rw	= uring_bypass_rw,
	.block_status	= uring_block_status,
};
