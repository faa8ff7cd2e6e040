// SPDX-License-Identifier: MIT
/*
 * nbd: a remote NBD export as a local block device (the kernel's
 * drivers/block/nbd.c, with libnbd speaking the protocol). Parameters and
 * failure semantics: docs/nbd-client.md.
 *
 * One hardware queue per connection. Each connection is a libnbd handle
 * driven by its own thread: it polls the handle's socket (in the
 * direction libnbd asks for) and an eventfd that submitters kick, and it
 * is the "interrupt": libnbd's callbacks only park finished commands on
 * the connection's done list, and the thread completes them after libnbd
 * has let go of its handle lock, so a completion that reruns the queue
 * can issue on the same handle.
 *
 * Every command ends through libnbd's .free callback -- replied, aborted
 * by a dying connection, or refused at issue -- so a request can never be
 * lost: one that got no reply ends with BLK_STS_TRANSPORT. A dead
 * connection is closed (libnbd then frees all it held) and the thread
 * reconnects with exponential back-off; meanwhile its requests go to
 * another live connection, or fail fast with BLK_STS_TRANSPORT.
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/blk.h"
#include "lib/options.h"

extern const struct blk_driver nbd_driver;

/* the protocol's payload cap without extended headers (NBD spec) */
#define NBD_MAX_PAYLOAD		(32U << 20)
/* discard/zero/block-status lengths travel in 32 bits */
#define NBD_MAX_RANGE		(1U << 30)
#define NBD_MAX_CONNS		64
/* bounce buffers up to this size stay with their request for reuse */
#define NBD_BOUNCE_KEEP		(256U << 10)

struct nbd_params {
	char *uri;
	unsigned int conns;		/* 0: 1, or the CPUs with multi-conn */
	unsigned int depth;
	uint64_t timeout_ns;
	unsigned int reconnect_delay_ms;
	unsigned int max_reconnect_delay_ms;
};

/* What the handshake said about the export. */
struct nbd_export {
	uint64_t size;
	int64_t min_block, pref_block, max_block;	/* 0: not advertised */
	bool read_only, can_flush, can_fua, can_trim, can_zero;
	bool multi_conn, rotational, can_block_status;
};

struct nbd_conn;

/* The per-request pdu. */
struct nbd_cmd {
	struct nbd_cmd *next;		/* done list */
	struct nbd_conn *conn;		/* the connection it went out on */
	void *buf;			/* data: a segment, or the bounce */
	void *bounce;			/* kept across requests, grown */
	size_t bounce_cap;
	bool bounced;
	bool replied;			/* the completion callback ran */
	_Atomic bool timed_out;
	int error;			/* errno of the reply */
	blk_status_t status;
};

struct nbd_conn {
	struct nbd_device *nbd;
	unsigned int index;
	/*
	 * Submitters hold @lock while they use @h; only the connection
	 * thread replaces it, under @lock. NULL while disconnected.
	 */
	pthread_mutex_t lock;
	struct nbd_handle *h;
	int fd;				/* @h's socket, while connected */
	pthread_spinlock_t done_lock;	/* a leaf: taken in libnbd callbacks */
	pthread_mutex_t complete_lock;	/* held while completing requests */
	struct nbd_cmd *done_head, *done_tail;
	int efd;			/* kicks the thread */
	_Atomic int sleeping;		/* the thread is (about to be) in poll */
	_Atomic bool reset;		/* a time-out: drop the connection */
	_Atomic bool stop;
	pthread_t thread;
	bool has_thread;
	unsigned int delay_ms;		/* the next back-off */
	_Atomic unsigned long reconnects;
	_Atomic unsigned long transport_errors;
};

struct nbd_device {
	struct gendisk *disk;
	char name[32];			/* for messages: threads start before
					   add_disk() names the disk */
	struct nbd_params p;
	struct nbd_export ex;
	struct blk_mq_tag_set tag_set;
	bool has_tag_set;
	unsigned int nr_conns;
	struct nbd_conn *conns;
};

static void nbd_conn_kick(struct nbd_conn *conn)
{
	uint64_t one = 1;

	if (write(conn->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("nbd: eventfd write: %s", strerror(errno));
}

/* ---- libnbd callbacks (any thread, libnbd's handle lock held) ---- */

static int nbd_cmd_done(void *user_data, int *error)
{
	struct nbd_cmd *cmd = user_data;

	cmd->error = *error;
	cmd->replied = true;
	return 1;	/* retire the command: libnbd then calls .free */
}

/* The last word on every command: park it for the connection thread. */
static void nbd_cmd_free(void *user_data)
{
	struct nbd_cmd *cmd = user_data;
	struct nbd_conn *conn = cmd->conn;

	cmd->next = NULL;
	pthread_spin_lock(&conn->done_lock);
	if (conn->done_tail)
		conn->done_tail->next = cmd;
	else
		conn->done_head = cmd;
	conn->done_tail = cmd;
	pthread_spin_unlock(&conn->done_lock);
	/* the thread drains after each event; others must wake it */
	if (!conn->has_thread || !pthread_equal(pthread_self(), conn->thread))
		nbd_conn_kick(conn);
}

/* ---- completion ("interrupt" context: the connection thread) ---- */

static blk_status_t nbd_cmd_status(struct nbd_cmd *cmd)
{
	if (atomic_load(&cmd->timed_out))
		return BLK_STS_TIMEOUT;
	if (!cmd->replied)
		return BLK_STS_TRANSPORT;	/* aborted or never sent */
	switch (cmd->error) {
	case 0:
		return BLK_STS_OK;
	case ENOTCONN: case ESHUTDOWN: case ECONNRESET: case EPIPE:
		return BLK_STS_TRANSPORT;	/* the connection, not the data */
	case ENOSPC:
		return BLK_STS_NOSPC;
	case ENOTSUP:
		return BLK_STS_NOTSUPP;
	default:
		return BLK_STS_IOERR;		/* as the kernel: any server error */
	}
}

static void nbd_cmd_drop_bounce(struct nbd_cmd *cmd)
{
	free(cmd->bounce);
	cmd->bounce = NULL;
	cmd->bounce_cap = 0;
}

/* Copy a bounced read into the request's segments. */
static void nbd_cmd_unbounce(struct nbd_cmd *cmd, struct request *rq)
{
	const char *p = cmd->bounce;
	struct bio *bio;

	__rq_for_each_bio(bio, rq) {
		bio_copy_from_buf(bio, p);
		p += bio->bi_iter.bi_size;
	}
}

static void nbd_conn_complete(struct nbd_conn *conn)
{
	struct nbd_cmd *list, *cmd;

	pthread_spin_lock(&conn->done_lock);
	list = conn->done_head;
	conn->done_head = conn->done_tail = NULL;
	pthread_spin_unlock(&conn->done_lock);
	if (!list)
		return;
	pthread_mutex_lock(&conn->complete_lock);
	while ((cmd = list)) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);

		list = cmd->next;
		cmd->status = nbd_cmd_status(cmd);
		if (cmd->status == BLK_STS_TRANSPORT)
			atomic_fetch_add(&conn->transport_errors, 1);
		if (!cmd->status && cmd->bounced && req_op(rq) == REQ_OP_READ)
			nbd_cmd_unbounce(cmd, rq);
		if (cmd->bounce_cap > NBD_BOUNCE_KEEP)
			nbd_cmd_drop_bounce(cmd);
		blk_mq_complete_request(rq);
	}
	pthread_mutex_unlock(&conn->complete_lock);
}

static bool nbd_conn_has_done(struct nbd_conn *conn)
{
	bool any;

	pthread_spin_lock(&conn->done_lock);
	any = conn->done_head != NULL;
	pthread_spin_unlock(&conn->done_lock);
	return any;
}

/* ---- the connection thread ---- */

/*
 * Wait up to @timeout_ms for @h's socket (in the direction libnbd wants)
 * or a kick, then let libnbd move. Submitters kick only a sleeping
 * thread whose handle wants to write: the store of @sleeping before the
 * direction is read, and theirs after, make sure one side sees the other.
 */
static void nbd_conn_poll(struct nbd_conn *conn, struct nbd_handle *h,
			  int timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = conn ? conn->efd : -1, .events = POLLIN },
		{ .fd = conn && conn->h == h ? conn->fd : nbd_aio_get_fd(h) },
	};
	unsigned int dir;
	uint64_t v;

	if (conn) {
		atomic_store(&conn->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (nbd_conn_has_done(conn) || atomic_load(&conn->reset) ||
		    atomic_load(&conn->stop))
			timeout_ms = 0;
	}
	dir = nbd_aio_get_direction(h);
	if (pfd[1].fd < 0)
		timeout_ms = 0;		/* no socket: the caller sees why */
	pfd[1].events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			(dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
	if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR)
		pr_warn("nbd: poll: %s", strerror(errno));
	if (conn)
		atomic_store(&conn->sleeping, 0);
	if ((pfd[0].revents & POLLIN) && read(conn->efd, &v, sizeof(v)) < 0)
		v = 0;
	if (pfd[1].fd < 0)
		return;
	if ((pfd[1].revents & POLLOUT) && (dir & LIBNBD_AIO_DIRECTION_WRITE))
		nbd_aio_notify_write(h);
	else if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
		if (dir & LIBNBD_AIO_DIRECTION_READ)
			nbd_aio_notify_read(h);
		else
			nbd_aio_notify_write(h);	/* to find the error */
	}
}

static bool nbd_handle_alive(struct nbd_handle *h)
{
	return !nbd_aio_is_dead(h) && !nbd_aio_is_closed(h);
}

/*
 * A handle connected to the URI and ready for commands, or NULL with
 * the reason in @err. @conn (NULL at create) lets stop end the wait.
 */
static struct nbd_handle *nbd_open(struct nbd_device *nbd,
				   struct nbd_conn *conn, char *err,
				   size_t errlen)
{
	uint64_t deadline = ktime_get_ns() + nbd->p.timeout_ns;
	struct nbd_handle *h = nbd_create();

	if (!h) {
		snprintf(err, errlen, "%s", nbd_get_error());
		return NULL;
	}
	if (nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) ||
	    nbd_aio_connect_uri(h, nbd->p.uri))
		goto fail;
	while (nbd_aio_is_connecting(h)) {
		uint64_t now = ktime_get_ns();

		if (now >= deadline) {
			snprintf(err, errlen, "no handshake within the "
				 "time-out");
			goto out;
		}
		if (conn && atomic_load(&conn->stop)) {
			snprintf(err, errlen, "device removed");
			goto out;
		}
		nbd_conn_poll(conn, h, (int)min((deadline - now) /
						NSEC_PER_MSEC + 1,
						(uint64_t)100));
	}
	if (nbd_aio_is_ready(h))
		return h;
fail:
	snprintf(err, errlen, "%s", nbd_get_error() ? nbd_get_error() :
		 "connection closed during the handshake");
out:
	nbd_close(h);
	return NULL;
}

static void nbd_read_export(struct nbd_handle *h, struct nbd_export *ex)
{
	ex->size = (uint64_t)nbd_get_size(h);
	ex->min_block = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	ex->pref_block = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
	ex->max_block = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	ex->read_only = nbd_is_read_only(h) == 1;
	ex->can_flush = nbd_can_flush(h) == 1;
	ex->can_fua = nbd_can_fua(h) == 1;
	ex->can_trim = nbd_can_trim(h) == 1;
	ex->can_zero = nbd_can_zero(h) == 1;
	ex->multi_conn = nbd_can_multi_conn(h) == 1;
	ex->rotational = nbd_is_rotational(h) == 1;
	ex->can_block_status = nbd_can_meta_context(
		h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
}

static unsigned int nbd_block(int64_t v, unsigned int dflt)
{
	return v > 0 && v <= INT32_MAX ? (unsigned int)v : dflt;
}

/* The device's logical block size: the server's minimum, at least 512. */
static unsigned int nbd_lbs(const struct nbd_export *ex)
{
	return max(nbd_block(ex->min_block, 512), 512U);
}

/*
 * A reconnect must reach the same export, able to do what the device
 * already promised its users (another server process is fine).
 */
static int nbd_check_same(struct nbd_device *nbd, struct nbd_handle *h,
			  char *err, size_t errlen)
{
	const struct nbd_export *old = &nbd->ex;
	struct nbd_export ex;

	nbd_read_export(h, &ex);
	if (ex.size != old->size || ex.read_only != old->read_only ||
	    nbd_lbs(&ex) > nbd_lbs(old) ||
	    (old->can_flush && !ex.can_flush) || (old->can_fua && !ex.can_fua) ||
	    (old->can_trim && !ex.can_trim) || (old->can_zero && !ex.can_zero)) {
		snprintf(err, errlen, "the export changed (size %" PRIu64
			 " -> %" PRIu64 ", read-only %d -> %d, block %u -> %u, "
			 "flush/fua/trim/zero %d%d%d%d -> %d%d%d%d)", old->size,
			 ex.size, old->read_only, ex.read_only, nbd_lbs(old),
			 nbd_lbs(&ex), old->can_flush, old->can_fua,
			 old->can_trim, old->can_zero, ex.can_flush,
			 ex.can_fua, ex.can_trim, ex.can_zero);
		return -ESTALE;
	}
	return 0;
}

/* Sleep @ms, or less if the device goes away. */
static void nbd_conn_sleep(struct nbd_conn *conn, unsigned int ms)
{
	uint64_t end = ktime_get_ns() + (uint64_t)ms * NSEC_PER_MSEC, now;
	struct pollfd pfd = { .fd = conn->efd, .events = POLLIN };
	uint64_t v;

	while (!atomic_load(&conn->stop) && (now = ktime_get_ns()) < end) {
		if (poll(&pfd, 1, (int)((end - now) / NSEC_PER_MSEC) + 1) > 0 &&
		    read(conn->efd, &v, sizeof(v)) < 0)
			v = 0;
	}
}

static void nbd_conn_reconnect(struct nbd_conn *conn)
{
	struct nbd_device *nbd = conn->nbd;
	const char *name = nbd->name;
	struct nbd_handle *h;
	char err[256];

	nbd_conn_sleep(conn, conn->delay_ms);
	if (atomic_load(&conn->stop))
		return;
	h = nbd_open(nbd, conn, err, sizeof(err));
	if (h && nbd_check_same(nbd, h, err, sizeof(err))) {
		nbd_close(h);
		h = NULL;
	}
	if (!h) {
		conn->delay_ms = min(conn->delay_ms * 2,
				     nbd->p.max_reconnect_delay_ms);
		pr_info("nbd %s: connection %u: reconnect failed: %s; next "
			"try in %u ms", name, conn->index, err, conn->delay_ms);
		return;
	}
	atomic_store(&conn->reset, false);
	pthread_mutex_lock(&conn->lock);
	conn->fd = nbd_aio_get_fd(h);
	conn->h = h;
	pthread_mutex_unlock(&conn->lock);
	conn->delay_ms = nbd->p.reconnect_delay_ms;
	atomic_fetch_add(&conn->reconnects, 1);
	pr_notice("nbd %s: connection %u: reconnected", name, conn->index);
}

/*
 * Drop the connection: no submitter can reach the handle once it is
 * unpublished, and closing it makes libnbd free every command it held,
 * so each in-flight request ends (BLK_STS_TRANSPORT, or TIMEOUT for the
 * one that timed out).
 */
static void nbd_conn_down(struct nbd_conn *conn, const char *why)
{
	struct nbd_handle *h;

	pthread_mutex_lock(&conn->lock);
	h = conn->h;
	conn->h = NULL;
	pthread_mutex_unlock(&conn->lock);
	if (why)
		pr_warn("nbd %s: connection %u: %s; reconnecting",
			conn->nbd->name, conn->index, why);
	else if (nbd_handle_alive(h))
		nbd_shutdown(h, 0);	/* NBD_CMD_DISC, as nbd-client -d */
	nbd_close(h);
	nbd_conn_complete(conn);
	conn->delay_ms = conn->nbd->p.reconnect_delay_ms;
}

static void *nbd_conn_thread(void *arg)
{
	struct nbd_conn *conn = arg;

	while (!atomic_load(&conn->stop)) {
		if (!conn->h) {
			nbd_conn_reconnect(conn);
			continue;
		}
		nbd_conn_poll(conn, conn->h, -1);
		nbd_conn_complete(conn);
		if (atomic_load(&conn->reset))
			nbd_conn_down(conn, "a request timed out");
		else if (!nbd_handle_alive(conn->h))
			nbd_conn_down(conn, nbd_get_error() ? nbd_get_error() :
					    "the server closed the connection");
	}
	if (conn->h)
		nbd_conn_down(conn, NULL);
	return NULL;
}

/* ---- blk_mq_ops ---- */

static struct nbd_device *rq_nbd(struct request *rq)
{
	return queue_driver_data(rq->q);
}

/*
 * Point cmd->buf at the request's data: its own memory when the
 * segments are one contiguous run, else the bounce buffer (a write is
 * gathered into it now, a read scattered from it on completion).
 */
static int nbd_cmd_map(struct nbd_cmd *cmd, struct request *rq)
{
	unsigned int len = blk_rq_bytes(rq);
	char *start = NULL, *end = NULL;
	struct bvec_iter iter;
	struct bio_vec bv;
	bool contig = true;

	cmd->bounced = false;
	rq_for_each_segment(bv, rq, iter) {
		if (!start)
			start = end = bv.bv_buf;
		else if ((char *)bv.bv_buf != end)
			contig = false;
		end = (char *)bv.bv_buf + bv.bv_len;
	}
	if (contig) {
		cmd->buf = start;
		return 0;
	}
	if (cmd->bounce_cap < len) {
		void *p = realloc(cmd->bounce, len);

		if (!p)
			return -ENOMEM;
		cmd->bounce = p;
		cmd->bounce_cap = len;
	}
	cmd->buf = cmd->bounce;
	cmd->bounced = true;
	if (req_op(rq) == REQ_OP_WRITE) {
		char *p = cmd->bounce;
		struct bio *bio;

		__rq_for_each_bio(bio, rq) {
			bio_copy_to_buf(bio, p);
			p += bio->bi_iter.bi_size;
		}
	}
	return 0;
}

/* The first live connection from @pref on, locked; NULL if none. */
static struct nbd_conn *nbd_lock_conn(struct nbd_device *nbd,
				      struct nbd_conn *pref)
{
	for (unsigned int i = 0; i < nbd->nr_conns; i++) {
		struct nbd_conn *conn =
			&nbd->conns[(pref->index + i) % nbd->nr_conns];

		pthread_mutex_lock(&conn->lock);
		if (conn->h)
			return conn;
		pthread_mutex_unlock(&conn->lock);
	}
	return NULL;
}

/* Hand @rq to libnbd on @h; whatever happens, .free ends it. */
static void nbd_issue(struct nbd_device *nbd, struct nbd_handle *h,
		      struct nbd_cmd *cmd, struct request *rq)
{
	nbd_completion_callback cb = {
		.callback = nbd_cmd_done,
		.user_data = cmd,
		.free = nbd_cmd_free,
	};
	uint64_t off = (uint64_t)blk_rq_pos(rq) << SECTOR_SHIFT;
	uint32_t len = blk_rq_bytes(rq);
	uint32_t fua = (rq->cmd_flags & REQ_FUA) && nbd->ex.can_fua ?
		       LIBNBD_CMD_FLAG_FUA : 0;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		nbd_aio_pread(h, cmd->buf, len, off, cb, 0);
		break;
	case REQ_OP_WRITE:
		nbd_aio_pwrite(h, cmd->buf, len, off, cb, fua);
		break;
	case REQ_OP_FLUSH:
		nbd_aio_flush(h, cb, 0);
		break;
	case REQ_OP_DISCARD:
		nbd_aio_trim(h, len, off, cb, fua);
		break;
	default:	/* REQ_OP_WRITE_ZEROES */
		nbd_aio_zero(h, len, off, cb, fua |
			     (rq->cmd_flags & REQ_NOUNMAP ?
			      LIBNBD_CMD_FLAG_NO_HOLE : 0));
		break;
	}
}

/* What the export cannot do at all, the request never reaches. */
static blk_status_t nbd_check_op(struct nbd_device *nbd, struct request *rq)
{
	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_FLUSH:
		return BLK_STS_OK;
	case REQ_OP_WRITE:
		return nbd->ex.read_only ? BLK_STS_IOERR : BLK_STS_OK;
	case REQ_OP_DISCARD:
		return nbd->ex.can_trim ? BLK_STS_OK : BLK_STS_NOTSUPP;
	case REQ_OP_WRITE_ZEROES:
		return nbd->ex.can_zero ? BLK_STS_OK : BLK_STS_NOTSUPP;
	default:
		return BLK_STS_NOTSUPP;
	}
}

static blk_status_t nbd_queue_rq(struct blk_mq_hw_ctx *hctx,
				 const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct nbd_device *nbd = rq_nbd(rq);
	struct nbd_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nbd_conn *conn;
	blk_status_t st = nbd_check_op(nbd, rq);
	bool kick;

	if (st)
		return st;
	cmd->buf = NULL;
	if ((req_op(rq) == REQ_OP_READ || req_op(rq) == REQ_OP_WRITE) &&
	    nbd_cmd_map(cmd, rq))
		return BLK_STS_RESOURCE;
	if (req_op(rq) == REQ_OP_FLUSH && !nbd->ex.can_flush) {
		/* no volatile cache on the server: nothing to flush */
		blk_mq_start_request(rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	}
	conn = nbd_lock_conn(nbd, hctx_driver_data(hctx));
	if (!conn)
		return BLK_STS_TRANSPORT;	/* fail fast while down */
	cmd->conn = conn;
	blk_mq_start_request(rq);
	cmd->replied = false;
	cmd->error = 0;
	atomic_store(&cmd->timed_out, false);
	nbd_issue(nbd, conn->h, cmd, rq);
	/* @cmd may be complete already: only the connection from here */
	atomic_thread_fence(memory_order_seq_cst);
	kick = atomic_load(&conn->sleeping) &&
	       (nbd_aio_get_direction(conn->h) & LIBNBD_AIO_DIRECTION_WRITE);
	pthread_mutex_unlock(&conn->lock);
	if (kick && atomic_exchange(&conn->sleeping, 0))
		nbd_conn_kick(conn);
	return BLK_STS_OK;
}

static void nbd_complete_rq(struct request *rq)
{
	struct nbd_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->status);
}

/*
 * As the kernel's nbd_xmit_timeout() on a connection that cannot be
 * trusted any more: shut it down. libnbd cannot cancel one command, and
 * the server may still write into the buffer, so the request ends only
 * when the connection thread has closed the handle.
 */
static enum blk_eh_timer_return nbd_timeout_rq(struct request *rq)
{
	struct nbd_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct nbd_conn *conn = cmd->conn;

	pr_warn("nbd %s: connection %u: request (sector %llu, %s) timed out; "
		"dropping the connection", rq_nbd(rq)->name,
		conn->index, (unsigned long long)blk_rq_pos(rq),
		blk_op_str(req_op(rq)));
	atomic_store(&cmd->timed_out, true);
	atomic_store(&conn->reset, true);
	nbd_conn_kick(conn);
	return BLK_EH_DONE;
}

static int nbd_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			 unsigned int idx)
{
	struct nbd_device *nbd = queue_driver_data(hctx_queue(hctx));

	hctx_set_driver_data(hctx, &nbd->conns[idx % nbd->nr_conns]);
	return 0;
}

/*
 * On removal the core frees the hctxs and the flush queue next, but the
 * last request's bio may have ended (and the drain finished) while a
 * connection thread is still in the tail of its completion -- ending a
 * flush sequence, say. Wait for every thread to leave it, as a kernel
 * driver's remove path quiesces its interrupts (synchronize_irq()).
 * Only then: during an nr_hw_queues update the core holds locks that a
 * completion may need.
 */
static void nbd_exit_hctx(struct blk_mq_hw_ctx *hctx, unsigned int idx)
{
	struct request_queue *q = hctx_queue(hctx);
	struct nbd_device *nbd = queue_driver_data(q);

	if (!blk_queue_dying(q))
		return;
	for (unsigned int i = 0; i < nbd->nr_conns; i++) {
		pthread_mutex_lock(&nbd->conns[i].complete_lock);
		pthread_mutex_unlock(&nbd->conns[i].complete_lock);
	}
}

static void nbd_exit_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx)
{
	nbd_cmd_drop_bounce(blk_mq_rq_to_pdu(rq));
}

static void nbd_show_hctx(struct blk_mq_hw_ctx *hctx, FILE *out)
{
	struct nbd_conn *conn = hctx_driver_data(hctx);

	fprintf(out, "  nbd: connection=%u connected=%d reconnects=%lu "
		"transport_errors=%lu\n", conn->index, conn->h != NULL,
		atomic_load(&conn->reconnects),
		atomic_load(&conn->transport_errors));
}

static const struct blk_mq_ops nbd_mq_ops = {
	.queue_rq	= nbd_queue_rq,
	.complete	= nbd_complete_rq,
	.timeout	= nbd_timeout_rq,
	.init_hctx	= nbd_init_hctx,
	.exit_hctx	= nbd_exit_hctx,
	.exit_request	= nbd_exit_request,
	.show_hctx	= nbd_show_hctx,
};

/* ---- block status (base:allocation) ---- */

struct nbd_extent {
	uint64_t len;
	uint32_t flags;
};

/* One NBD_CMD_BLOCK_STATUS in flight, waited for by its caller. */
struct nbd_bs_query {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool freed, replied;
	int error;
	struct nbd_extent *ext;
	size_t nr, cap;
};

static int nbd_bs_extent(void *user_data, const char *metacontext,
			 uint64_t offset, uint32_t *entries, size_t nr_entries,
			 int *error)
{
	struct nbd_bs_query *bq = user_data;

	if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION))
		return 0;
	for (size_t i = 0; i + 1 < nr_entries; i += 2) {
		if (bq->nr == bq->cap) {
			size_t cap = bq->cap ? bq->cap * 2 : 16;
			void *p = realloc(bq->ext, cap * sizeof(*bq->ext));

			if (!p) {
				*error = ENOMEM;
				return -1;
			}
			bq->ext = p;
			bq->cap = cap;
		}
		bq->ext[bq->nr].len = entries[i];
		bq->ext[bq->nr++].flags = entries[i + 1];
	}
	return 0;
}

static int nbd_bs_done(void *user_data, int *error)
{
	struct nbd_bs_query *bq = user_data;

	bq->error = *error;
	bq->replied = true;
	return 1;
}

static void nbd_bs_free(void *user_data)
{
	struct nbd_bs_query *bq = user_data;

	pthread_mutex_lock(&bq->lock);
	bq->freed = true;
	pthread_cond_signal(&bq->cond);
	pthread_mutex_unlock(&bq->lock);
}

/* Wait for libnbd to let go of @bq; past the time-out, drop the link. */
static void nbd_bs_wait(struct nbd_device *nbd, struct nbd_conn *conn,
			struct nbd_bs_query *bq)
{
	struct timespec ts;
	bool timed_out = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(nbd->p.timeout_ns / NSEC_PER_SEC);
	pthread_mutex_lock(&bq->lock);
	while (!bq->freed) {
		if (timed_out) {
			pthread_cond_wait(&bq->cond, &bq->lock);
		} else if (pthread_cond_timedwait(&bq->cond, &bq->lock, &ts) ==
			   ETIMEDOUT) {
			timed_out = true;
			atomic_store(&conn->reset, true);
			nbd_conn_kick(conn);
		}
	}
	pthread_mutex_unlock(&bq->lock);
}

/* Extents from @off (up to @len bytes) into @bq, or -errno. */
static int nbd_bs_run(struct nbd_device *nbd, uint64_t off, uint64_t len,
		      struct nbd_bs_query *bq)
{
	nbd_extent_callback ecb = { .callback = nbd_bs_extent,
				    .user_data = bq };
	nbd_completion_callback cb = { .callback = nbd_bs_done,
				       .user_data = bq, .free = nbd_bs_free };
	struct nbd_conn *conn = nbd_lock_conn(nbd, &nbd->conns[0]);

	if (!conn)
		return blk_err(-ENOLINK, "nbd %s: not connected",
			       nbd->name);
	bq->nr = 0;
	bq->freed = bq->replied = false;
	nbd_aio_block_status(conn->h, len, off, ecb, cb, 0);
	pthread_mutex_unlock(&conn->lock);
	nbd_conn_kick(conn);
	nbd_bs_wait(nbd, conn, bq);
	if (!bq->replied)
		return blk_err(-ENOLINK, "nbd %s: block status: the connection "
			       "dropped", nbd->name);
	if (bq->error)
		return blk_err(-bq->error, "nbd %s: block status: %s",
			       nbd->name, strerror(bq->error));
	if (!bq->nr)
		return blk_err(-EIO, "nbd %s: block status: the server "
			       "returned no extents", nbd->name);
	return 0;
}

/* Walk the extents of [@off, @off + @len) as the server reports them. */
static int nbd_dev_block_status(struct gendisk *disk, uint64_t off,
				uint64_t len,
				int (*fn)(uint64_t off, uint64_t len, bool hole,
					  void *arg),
				void *arg)
{
	struct nbd_device *nbd = disk_private(disk);
	struct nbd_bs_query bq = { .ext = NULL };
	uint64_t end = off + len;
	int ret = 0;

	if (off > nbd->ex.size || len > nbd->ex.size - off)
		return blk_err(-EINVAL, "nbd %s: block status [%" PRIu64 ", +%"
			       PRIu64 "): beyond the end (%" PRIu64 " bytes)",
			       nbd->name, off, len, nbd->ex.size);
	/* a server without base:allocation: all data (the NBD rule) */
	if (!nbd->ex.can_block_status)
		return len ? fn(off, len, false, arg) : 0;
	pthread_mutex_init(&bq.lock, NULL);
	pthread_cond_init(&bq.cond, NULL);
	while (off < end && !ret) {
		uint64_t from = off;

		ret = nbd_bs_run(nbd, off, min(end - off, (uint64_t)NBD_MAX_RANGE),
				 &bq);
		for (size_t i = 0; !ret && i < bq.nr && off < end; i++) {
			uint64_t n = min(bq.ext[i].len, end - off);
			uint32_t hz = LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO;

			if (!n)
				break;
			ret = fn(off, n, (bq.ext[i].flags & hz) == hz, arg);
			off += n;
		}
		if (!ret && off == from)
			ret = blk_err(-EIO, "nbd %s: block status: an empty "
				      "extent at %" PRIu64, nbd->name, off);
	}
	free(bq.ext);
	pthread_cond_destroy(&bq.cond);
	pthread_mutex_destroy(&bq.lock);
	return ret;
}

/* ---- parameters ---- */

static const char nbd_keys[] = "uri, conns, depth, timeout, "
	"reconnect_delay_ms, max_reconnect_delay_ms";

static int nbd_param_uint(const char *k, const char *v, unsigned int lo,
			  unsigned int hi, unsigned int *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (end == v || *end || *v == '-' || errno || n < lo || n > hi)
		return blk_err(-EINVAL, "nbd: %s=%s: valid values are %u..%u",
			       k, v, lo, hi);
	*out = (unsigned int)n;
	return 0;
}

static int nbd_param_set(struct nbd_params *p, const char *k, const char *v)
{
	if (!strcmp(k, "uri")) {
		if (!*v)
			return blk_err(-EINVAL, "nbd: uri=: empty; e.g. "
				       "nbd://HOST:PORT/EXPORT or "
				       "nbd+unix:///EXPORT?socket=PATH");
		free(p->uri);
		p->uri = strdup(v);
		return p->uri ? 0 : -ENOMEM;
	}
	if (!strcmp(k, "timeout")) {
		if (opt_parse_time(v, &p->timeout_ns) ||
		    p->timeout_ns < NSEC_PER_SEC ||
		    p->timeout_ns > 86400 * NSEC_PER_SEC)
			return blk_err(-EINVAL, "nbd: timeout=%s: seconds from 1 "
				       "to 86400 (or with a unit: 500s, 2m)", v);
		return 0;
	}
	if (!strcmp(k, "conns"))
		return nbd_param_uint(k, v, 1, NBD_MAX_CONNS, &p->conns);
	if (!strcmp(k, "depth"))
		return nbd_param_uint(k, v, 1, 4096, &p->depth);
	if (!strcmp(k, "reconnect_delay_ms"))
		return nbd_param_uint(k, v, 1, 3600000, &p->reconnect_delay_ms);
	if (!strcmp(k, "max_reconnect_delay_ms"))
		return nbd_param_uint(k, v, 1, 3600000,
				      &p->max_reconnect_delay_ms);
	return blk_err(-EINVAL, "nbd: unknown parameter '%s'; valid: %s", k,
		       nbd_keys);
}

static int nbd_params_parse(struct nbd_params *p, const char *params)
{
	char *buf = strdup(params ? params : ""), *save, *tok;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	*p = (struct nbd_params){
		.depth = 64,
		.timeout_ns = 30 * NSEC_PER_SEC,
		.reconnect_delay_ms = 100,
		.max_reconnect_delay_ms = 10000,
	};
	for (tok = strtok_r(buf, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			ret = blk_err(-EINVAL, "nbd: '%s': parameters are "
				      "key=value; valid keys: %s", tok, nbd_keys);
			break;
		}
		*eq = '\0';
		ret = nbd_param_set(p, tok, eq + 1);
	}
	free(buf);
	if (!ret && !p->uri)
		ret = blk_err(-EINVAL, "nbd: uri= is required (nbd://HOST:PORT/"
			      "EXPORT or nbd+unix:///EXPORT?socket=PATH)");
	if (!ret && p->max_reconnect_delay_ms < p->reconnect_delay_ms)
		ret = blk_err(-EINVAL, "nbd: max_reconnect_delay_ms=%u: must be "
			      ">= reconnect_delay_ms (%u)",
			      p->max_reconnect_delay_ms, p->reconnect_delay_ms);
	if (ret) {
		free(p->uri);
		p->uri = NULL;
	}
	return ret;
}

/* ---- create/destroy ---- */

/* conns=: what the user asked for, checked against multi-conn. */
static int nbd_pick_conns(struct nbd_device *nbd)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!nbd->p.conns) {
		nbd->nr_conns = nbd->ex.multi_conn && cpus > 1 ?
				(unsigned int)min(cpus, (long)NBD_MAX_CONNS) : 1;
		return 0;
	}
	if (nbd->p.conns > 1 && !nbd->ex.multi_conn)
		return blk_err(-EINVAL, "nbd: conns=%u: the server does not "
			       "advertise multi-conn, so only conns=1 is safe "
			       "(e.g. qemu-nbd --shared=N, nbdkit)",
			       nbd->p.conns);
	nbd->nr_conns = nbd->p.conns;
	return 0;
}

static void nbd_fill_limits(const struct nbd_export *ex,
			    struct queue_limits *lim)
{
	unsigned int lbs = nbd_lbs(ex);
	unsigned int maxb = nbd_block(ex->max_block, NBD_MAX_PAYLOAD);

	blk_set_default_limits(lim);
	lim->logical_block_size = lbs;
	lim->physical_block_size = max(nbd_block(ex->pref_block, lbs), lbs);
	lim->io_opt = nbd_block(ex->pref_block, 0);
	lim->max_hw_sectors = min(maxb, NBD_MAX_PAYLOAD) >> SECTOR_SHIFT;
	lim->max_segments = UINT16_MAX;		/* bounced when scattered */
	lim->max_segment_size = UINT32_MAX >> 1;
	if (ex->can_trim) {
		lim->max_hw_discard_sectors = NBD_MAX_RANGE >> SECTOR_SHIFT;
		lim->discard_granularity = lbs;
	}
	if (ex->can_zero)
		lim->max_write_zeroes_sectors = NBD_MAX_RANGE >> SECTOR_SHIFT;
	lim->features_write_cache = ex->can_flush;
	lim->features_fua = ex->can_fua;
	lim->features_rotational = ex->rotational;
}

/* The handshake of every connection; @first is connection 0's. */
static int nbd_connect_all(struct nbd_device *nbd, struct nbd_handle *first)
{
	char err[256];

	nbd->conns = calloc(nbd->nr_conns, sizeof(*nbd->conns));
	if (!nbd->conns) {
		nbd_close(first);
		return -ENOMEM;
	}
	nbd->conns[0].h = first;
	nbd->conns[0].fd = nbd_aio_get_fd(first);
	for (unsigned int i = 0; i < nbd->nr_conns; i++) {
		struct nbd_conn *conn = &nbd->conns[i];

		conn->nbd = nbd;
		conn->index = i;
		conn->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		pthread_mutex_init(&conn->lock, NULL);
		pthread_spin_init(&conn->done_lock, PTHREAD_PROCESS_PRIVATE);
		pthread_mutex_init(&conn->complete_lock, NULL);
		conn->delay_ms = nbd->p.reconnect_delay_ms;
	}
	for (unsigned int i = 0; i < nbd->nr_conns; i++)
		if (nbd->conns[i].efd < 0)
			return blk_err(-EMFILE, "nbd: eventfd: %s",
				       strerror(errno));
	for (unsigned int i = 1; i < nbd->nr_conns; i++) {
		nbd->conns[i].h = nbd_open(nbd, NULL, err, sizeof(err));
		if (nbd->conns[i].h)
			nbd->conns[i].fd = nbd_aio_get_fd(nbd->conns[i].h);
		else
			return blk_err(-ECONNREFUSED, "nbd: %s: connection %u: "
				       "%s", nbd->p.uri, i, err);
	}
	return 0;
}

static int nbd_start_threads(struct nbd_device *nbd, unsigned int id)
{
	for (unsigned int i = 0; i < nbd->nr_conns; i++) {
		struct nbd_conn *conn = &nbd->conns[i];
		char name[16];	/* the kernel's limit on thread names */

		if (pthread_create(&conn->thread, NULL, nbd_conn_thread, conn))
			return blk_err(-EAGAIN, "nbd: cannot start a thread");
		conn->has_thread = true;
		snprintf(name, sizeof(name), "nbd%u/c%u", id % 1000, i % 64);
		pthread_setname_np(conn->thread, name);
	}
	return 0;
}

static void nbd_free(struct nbd_device *nbd)
{
	for (unsigned int i = 0; nbd->conns && i < nbd->nr_conns; i++) {
		struct nbd_conn *conn = &nbd->conns[i];

		if (conn->has_thread) {
			atomic_store(&conn->stop, true);
			nbd_conn_kick(conn);
			pthread_join(conn->thread, NULL);
		} else if (conn->h) {
			nbd_close(conn->h);
		}
		if (conn->efd >= 0)
			close(conn->efd);
		pthread_mutex_destroy(&conn->lock);
		pthread_spin_destroy(&conn->done_lock);
		pthread_mutex_destroy(&conn->complete_lock);
	}
	if (nbd->has_tag_set)
		blk_mq_free_tag_set(&nbd->tag_set);
	free(nbd->conns);
	free(nbd->p.uri);
	free(nbd);
}

static int nbd_setup_tagset(struct nbd_device *nbd)
{
	struct blk_mq_tag_set *set = &nbd->tag_set;
	int ret;

	memset(set, 0, sizeof(*set));
	set->ops = &nbd_mq_ops;
	set->nr_hw_queues = nbd->nr_conns;
	set->nr_maps = 1;
	set->queue_depth = nbd->p.depth;
	set->cmd_size = sizeof(struct nbd_cmd);
	set->timeout = (unsigned int)(nbd->p.timeout_ns / NSEC_PER_MSEC);
	set->driver_data = nbd;
	set->flags = BLK_MQ_F_SHOULD_MERGE;
	ret = blk_mq_alloc_tag_set(set);
	nbd->has_tag_set = !ret;
	return ret;
}

/* Parse, connect, learn the export: everything that may fail cleanly. */
static int nbd_probe(struct nbd_device *nbd, const char *params)
{
	struct nbd_handle *h;
	char err[256];
	int ret;

	ret = nbd_params_parse(&nbd->p, params);
	if (ret)
		return ret;
	h = nbd_open(nbd, NULL, err, sizeof(err));
	if (!h)
		return blk_err(-ECONNREFUSED, "nbd: %s: %s", nbd->p.uri, err);
	nbd_read_export(h, &nbd->ex);
	ret = nbd_pick_conns(nbd);
	if (ret) {
		nbd_close(h);
		return ret;
	}
	return nbd_connect_all(nbd, h);
}

static _Atomic unsigned int nbd_index;

static int nbd_dev_create(const char *name, const char *params,
			  struct gendisk **diskp)
{
	unsigned int id = atomic_fetch_add(&nbd_index, 1);
	struct nbd_device *nbd = calloc(1, sizeof(*nbd));
	struct queue_limits lim;
	int ret;

	if (!nbd)
		return blk_err(-ENOMEM, "nbd: out of memory");
	if (name && *name)
		snprintf(nbd->name, sizeof(nbd->name), "%s", name);
	else
		snprintf(nbd->name, sizeof(nbd->name), "nbd%u", id);
	ret = nbd_probe(nbd, params);
	if (!ret)
		ret = nbd_setup_tagset(nbd);
	if (ret) {
		nbd_free(nbd);
		return ret;
	}
	nbd_fill_limits(&nbd->ex, &lim);
	nbd->disk = blk_mq_alloc_disk(&nbd->tag_set, &lim, nbd);
	if (!nbd->disk) {
		nbd_free(nbd);
		return -ENOMEM;
	}
	disk_set_private(nbd->disk, nbd);
	nbd->disk->driver = &nbd_driver;

	if (nbd->ex.read_only)
		set_disk_ro(nbd->disk, true);
	ret = nbd_start_threads(nbd, id);
	if (!ret)
		ret = add_disk(nbd->disk, name && *name ? name : nbd->name,
			       (nbd->ex.size / lim.logical_block_size) *
			       (lim.logical_block_size >> SECTOR_SHIFT));
	if (ret) {
		put_disk(nbd->disk);	/* disk_release -> nbd_dev_destroy */
		return ret;
	}
	*diskp = nbd->disk;
	put_disk(nbd->disk);	/* the registry keeps it */
	return 0;
}

static void nbd_dev_destroy(struct gendisk *disk)
{
	struct nbd_device *nbd = disk_private(disk);

	if (nbd)
		nbd_free(nbd);
}

const struct blk_driver nbd_driver = {
	.name		= "nbd",
	.params_help	= nbd_keys,
	.create		= nbd_dev_create,
	.destroy	= nbd_dev_destroy,
	.block_status	= nbd_dev_block_status,
};
