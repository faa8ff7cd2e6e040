// SPDX-License-Identifier: MIT
/*
 * The NBD transmission phase of one connection: read requests, check
 * them, turn them into bios carrying the connection's io context, and
 * reply as they complete (in completion order, not request order).
 *
 * The reader takes everything the socket has with one recv(), then
 * submits every complete request in the buffer under one plug with the
 * reply queue corked, so a burst of pipelined requests becomes one batch
 * for the block layer and one sendmsg() of replies. Before anything that
 * can block (a payload still on the wire, a full request pool, the next
 * recv) the plug is finished and the queue uncorked: held requests must
 * never wait on the reader. The reader of a busy connection polls the
 * socket for a while before it sleeps (the next requests, a payload
 * behind its header), unless it has to wait for a CPU: see
 * nbd_wait_requests().
 *
 * Errors the protocol defines (range, alignment, read-only, unknown
 * flags) are replied and the connection lives; what makes the byte
 * stream unparseable (bad magic, a payload larger than NBD_MAX_PAYLOAD,
 * a truncated message) closes it, with one log line. So does an unknown
 * command: whether a payload follows it cannot be known, so nothing
 * after it can be trusted to be a header.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "block/blk.h"
#include "export/nbd-internal.h"
#include "lib/log.h"
#include "lib/time.h"

/* Data-less bios (trim, zeroes, cache) cover at most this much each. */
#define NBD_BIO_CHUNK		(1ULL << 30)
/* Emulated write-zeroes and CACHE move this much per bio. */
#define NBD_ZERO_CHUNK		(1U << 20)

static uint8_t nbd_zero_buf[NBD_ZERO_CHUNK];

static const char *const nbd_cmd_names[] = {
	[NBD_CMD_READ] = "NBD_CMD_READ", [NBD_CMD_WRITE] = "NBD_CMD_WRITE",
	[NBD_CMD_DISC] = "NBD_CMD_DISC", [NBD_CMD_FLUSH] = "NBD_CMD_FLUSH",
	[NBD_CMD_TRIM] = "NBD_CMD_TRIM", [NBD_CMD_CACHE] = "NBD_CMD_CACHE",
	[NBD_CMD_WRITE_ZEROES] = "NBD_CMD_WRITE_ZEROES",
	[NBD_CMD_BLOCK_STATUS] = "NBD_CMD_BLOCK_STATUS",
};

/* Flags each command accepts. */
static const uint16_t nbd_cmd_flags[] = {
	[NBD_CMD_READ] = NBD_CMD_FLAG_DF,
	[NBD_CMD_WRITE] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_PAYLOAD_LEN,
	[NBD_CMD_FLUSH] = 0,
	[NBD_CMD_TRIM] = NBD_CMD_FLAG_FUA,
	[NBD_CMD_CACHE] = 0,
	[NBD_CMD_WRITE_ZEROES] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE |
				 NBD_CMD_FLAG_FAST_ZERO,
	[NBD_CMD_BLOCK_STATUS] = NBD_CMD_FLAG_REQ_ONE,
};

/* ---- plugging ---- */

/* Submit what is plugged and send every reply queued (or held). */
static void nbd_unplug(struct nbd_conn *conn)
{
	if (!conn->plug && !conn->hold.on)
		return;
	if (conn->plug)
		blk_finish_plug(conn->plug);
	conn->plug = NULL;
	conn->hold.on = false;
	nbd_uncork(conn);
}

/*
 * Replies held while the reader polls for the next requests, so that
 * several leave in one sendmsg(): the client then reads them out of one
 * socket buffer (on a unix socket one skb to free instead of one per
 * reply) and we make one system call, not one per request. Held only
 * while the client has replies of ours still unread (SIOCOUTQ of a unix
 * socket: bytes sent and not yet read), so it never waits for one we
 * hold: a lone request's reply goes out at the first look. At most
 * NBD_HOLD_MAX replies or NBD_HOLD_NS, and never while the reader
 * sleeps or waits for a slot.
 */
#define NBD_HOLD_MAX		8
#define NBD_HOLD_NS		(100 * NSEC_PER_USEC)

/* Submit what is plugged, keep the replies corked: the reader polls. */
static void nbd_hold(struct nbd_conn *conn)
{
	if (conn->plug)
		blk_finish_plug(conn->plug);
	conn->plug = NULL;
	if (!conn->hold.on)
		conn->hold.since = ktime_get_ns();
	conn->hold.on = true;
}

static bool nbd_hold_over(struct nbd_conn *conn)
{
	unsigned int n = atomic_load_explicit(&conn->nr_queued,
					      memory_order_relaxed);
	int unread;

	if (!n) {
		/* the time counts from the first reply held */
		conn->hold.since = ktime_get_ns();
		return false;
	}
	if (n >= NBD_HOLD_MAX ||
	    ktime_get_ns() - conn->hold.since >= NBD_HOLD_NS) {
		conn->hold.dry = false;
		return true;
	}
	if (ioctl(conn->fd, SIOCOUTQ, &unread) || unread == 0) {
		conn->hold.dry = true;
		return true;
	}
	return false;
}

/* While polling (@sleeping false) and before sleeping: release? */
static void nbd_hold_check(struct nbd_conn *conn, bool sleeping)
{
	if (conn->hold.on && (sleeping || nbd_hold_over(conn)))
		nbd_unplug(conn);
}

static void nbd_rx_idle(struct nbd_rx *rx, bool sleeping)
{
	nbd_hold_check(container_of(rx, struct nbd_conn, rx), sleeping);
}

/*
 * The reader is about to poll (@spin) or sleep on the socket. A client
 * found without unread replies the last time (one request at a time?)
 * gets its next reply at once, without the look at the socket that
 * would cost it a system call's time, unless several replies are ready
 * together: then it has a deeper queue again.
 */
static void nbd_unplug_wait(struct nbd_conn *conn, bool spin)
{
	if (spin && conn->hold.ok &&
	    (!conn->hold.dry ||
	     atomic_load_explicit(&conn->nr_queued, memory_order_relaxed) > 1))
		nbd_hold(conn);
	else
		nbd_unplug(conn);
}

static void nbd_plug(struct nbd_conn *conn, struct blk_plug *plug,
		     unsigned int hdr_len)
{
	size_t n = nbd_rx_avail(&conn->rx) / hdr_len;

	if (conn->plug)
		return;
	nbd_cork(conn);
	blk_start_plug_nr_ios(plug, (unsigned short)clamp(n, (size_t)1,
							   (size_t)NBD_BATCH));
	conn->plug = plug;
}

/* ---- completion ---- */

static void nbd_req_put(struct nbd_req *req);

static void nbd_end_io(struct bio *bio)
{
	struct nbd_req *req = bio->bi_private;
	uint8_t ok = BLK_STS_OK;

	if (bio->bi_status)
		atomic_compare_exchange_strong(&req->status, &ok,
					       bio->bi_status);
	bio_put(bio);
	nbd_req_put(req);
}

/* One bio of @req; the caller holds a @req->remaining reference. */
static void nbd_submit_bio(struct nbd_req *req, blk_opf_t opf, uint64_t off,
			   void *buf, unsigned int len)
{
	struct nbd_conn *conn = req->conn;
	struct bio *bio = bio_alloc(conn->exp->disk, 1, opf);
	uint8_t ok = BLK_STS_OK;

	if (!bio) {
		atomic_compare_exchange_strong(&req->status, &ok,
					       BLK_STS_RESOURCE);
		return;
	}
	bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
	if (buf)
		bio_add_buf(bio, buf, len);
	else
		bio->bi_iter.bi_size = len;
	bio->bi_ioc = conn->ioc;
	bio->bi_end_io = nbd_end_io;
	bio->bi_private = req;
	atomic_fetch_add_explicit(&req->remaining, 1, memory_order_relaxed);
	submit_bio(bio);
}

static void nbd_req_start(struct nbd_req *req)
{
	atomic_store_explicit(&req->remaining, 1, memory_order_relaxed);
}

/* All of @req's bios ended: a flush may follow (FUA), then the reply. */
static void nbd_req_complete(struct nbd_req *req)
{
	blk_status_t st = atomic_load(&req->status);

	if (!st && req->flush_after) {
		req->flush_after = false;
		nbd_req_start(req);
		nbd_submit_bio(req, REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC,
			       0, NULL, 0);
		nbd_req_put(req);
		return;
	}
	if (st) {
		req->error = nbd_errno(blk_status_to_errno(st));
		req->msg = blk_status_to_str(st);
	} else if (req->type == NBD_CMD_READ) {
		req->payload = req->buf;
		req->payload_len = req->length;
	}
	nbd_reply(req);
}

static void nbd_req_put(struct nbd_req *req)
{
	if (atomic_fetch_sub_explicit(&req->remaining, 1,
				      memory_order_acq_rel) == 1)
		nbd_req_complete(req);
}

static void nbd_req_fail(struct nbd_req *req, uint32_t error, const char *msg)
{
	req->error = error;
	req->msg = msg;
	nbd_reply(req);
}

/* ---- commands ---- */

/* Data-less @op over a long range, in chunks a bio can carry. */
static void nbd_submit_range(struct nbd_req *req, blk_opf_t opf)
{
	uint64_t off = req->offset, left = req->length;

	while (left) {
		uint64_t n = min(left, NBD_BIO_CHUNK);

		nbd_submit_bio(req, opf, off, NULL, (unsigned int)n);
		off += n;
		left -= n;
	}
}

/* Repeat a buffer over the range: emulated zeroes, CACHE's read-ahead. */
static void nbd_submit_buffered(struct nbd_req *req, blk_opf_t opf,
				void *buf)
{
	uint64_t off = req->offset, left = req->length;

	while (left) {
		unsigned int n = (unsigned int)min(left, (uint64_t)NBD_ZERO_CHUNK);

		nbd_submit_bio(req, opf, off, buf, n);
		off += n;
		left -= n;
	}
}

static void nbd_do_write_zeroes(struct nbd_req *req)
{
	if (req->conn->native_zeroes)
		nbd_submit_range(req, REQ_OP_WRITE_ZEROES |
				 (req->flags & NBD_CMD_FLAG_NO_HOLE ?
				  REQ_NOUNMAP : 0));
	else
		nbd_submit_buffered(req, REQ_OP_WRITE | REQ_SYNC,
				    nbd_zero_buf);
}

static void nbd_do_cache(struct nbd_req *req)
{
	uint32_t n = (uint32_t)min(req->length, (uint64_t)NBD_ZERO_CHUNK);

	if (nbd_req_buf(req, n)) {
		atomic_store(&req->status, BLK_STS_RESOURCE);
		return;
	}
	/* the data is not wanted, only the device's reading it ahead */
	nbd_submit_buffered(req, REQ_OP_READ | REQ_RAHEAD, req->buf);
}

/* Submit the bios of a checked request; its reply comes at completion. */
static void nbd_submit(struct nbd_req *req)
{
	blk_opf_t fua = req->flags & NBD_CMD_FLAG_FUA ? REQ_FUA : 0;

	nbd_req_start(req);
	switch (req->type) {
	case NBD_CMD_READ:
		if (req->length)
			nbd_submit_bio(req, REQ_OP_READ, req->offset, req->buf,
				       (unsigned int)req->length);
		break;
	case NBD_CMD_WRITE:
		if (req->length)
			nbd_submit_bio(req, REQ_OP_WRITE | REQ_SYNC | fua,
				       req->offset, req->buf,
				       (unsigned int)req->length);
		break;
	case NBD_CMD_FLUSH:
		nbd_submit_bio(req, REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC, 0,
			       NULL, 0);
		break;
	case NBD_CMD_TRIM:
		req->flush_after = fua;
		nbd_submit_range(req, REQ_OP_DISCARD);
		break;
	case NBD_CMD_WRITE_ZEROES:
		req->flush_after = fua;
		nbd_do_write_zeroes(req);
		break;
	case NBD_CMD_CACHE:
		nbd_do_cache(req);
		break;
	}
	nbd_req_put(req);
}

/* ---- block status ---- */

struct nbd_extents {
	uint64_t len[NBD_MAX_EXTENTS];
	uint32_t flags[NBD_MAX_EXTENTS];
	unsigned int n, max;
	uint64_t end;			/* of the requested range */
	uint64_t pos;			/* covered so far */
};

static int nbd_extent_add(uint64_t off, uint64_t len, bool hole, void *arg)
{
	struct nbd_extents *e = arg;
	uint32_t flags = hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;

	/* clip to the request; extents must follow each other */
	if (off != e->pos || off >= e->end)
		return 1;
	len = min(len, e->end - off);
	if (e->n && e->flags[e->n - 1] == flags) {
		e->len[e->n - 1] += len;
	} else {
		if (e->n == e->max)
			return 1;
		e->len[e->n] = len;
		e->flags[e->n++] = flags;
	}
	e->pos += len;
	return 0;
}

static void nbd_block_status(struct nbd_req *req)
{
	struct nbd_conn *conn = req->conn;
	struct gendisk *disk = conn->exp->disk;
	const struct blk_driver *drv = disk->driver;
	bool ext = conn->extended;
	struct nbd_extents e;	/* 12 KiB: the reader's stack has room */
	size_t size, pos;
	int ret = 0;

	e.n = 0;
	e.max = req->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_MAX_EXTENTS;
	e.pos = req->offset;
	e.end = req->offset + req->length;
	if (drv && drv->block_status)
		ret = drv->block_status(disk, req->offset, req->length,
					nbd_extent_add, &e);
	else
		nbd_extent_add(req->offset, req->length, false, &e);
	if (ret < 0 || !e.n) {
		nbd_req_fail(req, NBD_EIO, "block status failed");
		return;
	}
	size = (ext ? 8 : 4) + (size_t)e.n * (ext ? 16 : 8);
	if (nbd_req_buf(req, size)) {
		nbd_req_fail(req, NBD_ENOMEM, "out of memory");
		return;
	}
	put_be32(req->buf, NBD_META_ALLOC_ID);
	pos = 4;
	if (ext) {
		put_be32(req->buf + 4, e.n);
		pos = 8;
	}
	for (unsigned int i = 0; i < e.n; i++) {
		if (ext) {
			put_be64(req->buf + pos, e.len[i]);
			put_be64(req->buf + pos + 8, e.flags[i]);
			pos += 16;
		} else {
			put_be32(req->buf + pos, (uint32_t)e.len[i]);
			put_be32(req->buf + pos + 4, e.flags[i]);
			pos += 8;
		}
	}
	req->payload = req->buf;
	req->payload_len = size;
	nbd_reply(req);
}

/* ---- checking ---- */

static const char *nbd_cmd_name(uint16_t type)
{
	return type < ARRAY_SIZE(nbd_cmd_names) && nbd_cmd_names[type] ?
	       nbd_cmd_names[type] : "unknown command";
}

/* Range and alignment: 0 or the NBD error, with @req->msg set. */
static uint32_t nbd_check_range(struct nbd_conn *conn, struct nbd_req *req)
{
	bool writes = req->type == NBD_CMD_WRITE ||
		      req->type == NBD_CMD_WRITE_ZEROES;

	if (req->type == NBD_CMD_FLUSH)
		return 0;
	if (req->offset > conn->size || req->length > conn->size - req->offset) {
		req->msg = "request beyond the end of the export";
		return writes ? NBD_ENOSPC : NBD_EINVAL;
	}
	if (req->type == NBD_CMD_BLOCK_STATUS)
		return 0;
	if ((req->offset | req->length) & (conn->min_block - 1)) {
		req->msg = "offset or length not a multiple of the minimum "
			   "block size";
		return NBD_EINVAL;
	}
	if (req->type == NBD_CMD_READ && req->length > NBD_MAX_PAYLOAD) {
		req->msg = "read larger than the maximum block size";
		return req->flags & NBD_CMD_FLAG_DF ? NBD_EOVERFLOW :
						      NBD_EINVAL;
	}
	return 0;
}

/* What the protocol says to refuse: 0 or the NBD error, with a message. */
static uint32_t nbd_check(struct nbd_conn *conn, struct nbd_req *req)
{
	uint16_t t = req->type;

	/* unknown commands never get here (nbd_parse_header()) */
	if (req->flags & ~nbd_cmd_flags[t] ||
	    (req->flags & NBD_CMD_FLAG_PAYLOAD_LEN && !conn->extended)) {
		req->msg = "flag not valid for this command";
		return NBD_EINVAL;
	}
	if (conn->readonly && (t == NBD_CMD_WRITE || t == NBD_CMD_TRIM ||
			       t == NBD_CMD_WRITE_ZEROES)) {
		req->msg = "the export is read-only";
		return NBD_EPERM;
	}
	if ((t == NBD_CMD_TRIM && !(conn->tflags & NBD_FLAG_SEND_TRIM)) ||
	    (t == NBD_CMD_BLOCK_STATUS && !conn->meta_alloc)) {
		req->msg = t == NBD_CMD_TRIM ? "the device cannot discard" :
			   "no metadata context was negotiated";
		return NBD_EINVAL;
	}
	if (t == NBD_CMD_WRITE_ZEROES && req->flags & NBD_CMD_FLAG_FAST_ZERO &&
	    !conn->native_zeroes) {
		req->msg = "the device has no fast zeroing";
		return NBD_ENOTSUP;
	}
	if (t == NBD_CMD_BLOCK_STATUS && !req->length) {
		req->msg = "block status of length 0";
		return NBD_EINVAL;
	}
	return nbd_check_range(conn, req);
}

/* ---- waiting for requests ---- */

/* How long a busy connection's reader polls before it sleeps. */
#define NBD_SPIN_NS		(50 * NSEC_PER_USEC)
/* How often it looks whether polling takes a CPU others want ... */
#define NBD_SPIN_WINDOW_NS	(10 * NSEC_PER_MSEC)
/* ... which it does if it waited for one over 1/10 of the window */
#define NBD_SPIN_DELAY_DIV	10
/* and then it does not poll for this long. */
#define NBD_SPIN_OFF_NS		(100 * NSEC_PER_MSEC)

static void nbd_spin_init(struct nbd_conn *conn)
{
	conn->spin.hot = false;
	conn->spin.since = conn->spin.delay = conn->spin.off_until = 0;
	/* no schedstat (no /proc): no polling, for want of a brake */
	conn->spin.stat_fd = open("/proc/thread-self/schedstat",
				  O_RDONLY | O_CLOEXEC);
}

static void nbd_spin_exit(struct nbd_conn *conn)
{
	if (conn->spin.stat_fd >= 0)
		close(conn->spin.stat_fd);
	conn->spin.stat_fd = -1;
}

/* Nanoseconds this thread has spent runnable but not running; < 0: ? */
static int64_t nbd_run_delay(int fd)
{
	unsigned long long run, delay;
	char buf[96];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &run, &delay) != 2)
		return -1;
	return (int64_t)delay;
}

/*
 * Whether to poll before sleeping: only if the last wait was short (a
 * client with requests queued; an idle one costs one poll at most), and
 * not while this thread waits for a CPU: then others want the CPU --
 * the clients themselves, when there are more of them than cores -- and
 * polling would take the time from them.
 */
static bool nbd_spin_allowed(struct nbd_conn *conn, uint64_t now)
{
	int64_t delay;
	bool contended;

	if (!conn->spin.hot || conn->spin.stat_fd < 0 ||
	    now < conn->spin.off_until)
		return false;
	if (now - conn->spin.since < NBD_SPIN_WINDOW_NS)
		return true;
	delay = nbd_run_delay(conn->spin.stat_fd);
	if (delay < 0) {
		nbd_spin_exit(conn);
		return false;
	}
	contended = (uint64_t)(delay - (int64_t)conn->spin.delay) *
		    NBD_SPIN_DELAY_DIV > now - conn->spin.since;
	conn->spin.since = now;
	conn->spin.delay = (uint64_t)delay;
	if (contended)
		conn->spin.off_until = now + NBD_SPIN_OFF_NS;
	return !contended;
}

/*
 * Wait for more requests: bytes, 0 at EOF, or -errno. A client that
 * keeps its queue full sends again within microseconds of our replies;
 * a reader asleep in recv() then costs it a wake-up per batch (an IPI,
 * dear on a virtual machine), and the scheduler tends to pull the woken
 * reader onto the client's CPU, where the two take turns. So a busy
 * connection's reader polls the socket for up to NBD_SPIN_NS first.
 */
static ssize_t nbd_wait_requests(struct nbd_conn *conn, bool spin)
{
	uint64_t start = ktime_get_ns();
	ssize_t n;

	if (spin) {
		do {
			nbd_hold_check(conn, false);
			n = nbd_rx_fill_nowait(&conn->rx);
			if (n != -EAGAIN)
				return n;
		} while (ktime_get_ns() - start < NBD_SPIN_NS);
	}
	nbd_hold_check(conn, true);
	n = nbd_rx_fill(&conn->rx);
	conn->spin.hot = ktime_get_ns() - start < NBD_SPIN_NS;
	return n;
}

/* ---- reading requests ---- */

static int nbd_violation(struct nbd_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int nbd_violation(struct nbd_conn *conn, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pr_warn("nbd: %s: %s; closing", conn->peer, what);
	return -EPROTO;
}

static uint32_t nbd_magic(const struct nbd_conn *conn)
{
	return conn->extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
}

/* Parse the header at the front of the buffer into @req (after a check). */
static int nbd_parse_header(struct nbd_conn *conn, struct nbd_req *req,
			    const uint8_t *h)
{
	uint32_t magic = get_be32(h);

	if (magic != nbd_magic(conn))
		return nbd_violation(conn, "bad request magic 0x%08x "
				     "(expected 0x%08x)", magic,
				     nbd_magic(conn));
	req->flags = get_be16(h + 4);
	req->type = get_be16(h + 6);
	req->cookie = get_be64(h + 8);
	req->offset = get_be64(h + 16);
	req->length = conn->extended ? get_be64(h + 24) : get_be32(h + 24);
	if (req->type >= ARRAY_SIZE(nbd_cmd_flags) ||
	    !nbd_cmd_names[req->type])
		return nbd_violation(conn, "unknown command %u", req->type);
	return 0;
}

/* Bytes of payload following the header. */
static uint64_t nbd_payload_len(struct nbd_conn *conn, struct nbd_req *req)
{
	if (req->type == NBD_CMD_WRITE ||
	    (conn->extended && req->flags & NBD_CMD_FLAG_PAYLOAD_LEN))
		return req->length;
	return 0;
}

/* Read the payload into the slot: 0, or < 0 to close. */
static int nbd_read_payload(struct nbd_conn *conn, struct nbd_req *req,
			    uint64_t len)
{
	bool skip = req->type != NBD_CMD_WRITE, spin = false;

	if (len > NBD_MAX_PAYLOAD)
		return nbd_violation(conn, "%s with a %llu-byte payload "
				     "(at most %u)", nbd_cmd_name(req->type),
				     (unsigned long long)len, NBD_MAX_PAYLOAD);
	if (!skip && nbd_req_buf(req, len)) {
		req->error = NBD_ENOMEM;
		req->msg = "out of memory";
		skip = true;
	}
	/*
	 * About to wait on the socket: nothing may stay held, but for
	 * replies while we poll for a payload (nbd_rx_idle() sends them
	 * before we sleep).
	 */
	if (nbd_rx_avail(&conn->rx) < len) {
		spin = !skip && nbd_spin_allowed(conn, ktime_get_ns());
		nbd_unplug_wait(conn, spin);
	}
	if (skip)
		return nbd_rx_skip(&conn->rx, len) ? -EPIPE : 0;
	/* the payload follows its header at once: worth polling for */
	if (nbd_rx_read_spin(&conn->rx, req->buf, len,
			     spin ? NBD_SPIN_NS : 0)) {
		pr_info("nbd: %s: gone inside the payload of %s", conn->peer,
			nbd_cmd_name(req->type));
		return -EPIPE;
	}
	return 0;
}

static struct nbd_req *nbd_get_req(struct nbd_conn *conn)
{
	struct nbd_req *req = nbd_req_tryalloc(conn);

	if (req)
		return req;
	/* the pool is full: what we hold must go out before we wait */
	nbd_unplug(conn);
	return nbd_req_alloc(conn);
}

/* One request from the buffer: 0 next, 1 client disconnects, < 0 close. */
static int nbd_handle_request(struct nbd_conn *conn, unsigned int hdr_len)
{
	struct nbd_req *req = nbd_get_req(conn);
	uint32_t err;
	int ret;

	ret = nbd_parse_header(conn, req, nbd_rx_peek(&conn->rx));
	if (!ret) {
		nbd_rx_consume(&conn->rx, hdr_len);
		ret = nbd_read_payload(conn, req, nbd_payload_len(conn, req));
	}
	if (ret || req->type == NBD_CMD_DISC) {
		nbd_req_drop(req);
		return ret ? ret : 1;
	}
	if (req->error) {		/* from reading the payload */
		nbd_reply(req);
		return 0;
	}
	err = nbd_check(conn, req);
	if (err)
		nbd_req_fail(req, err, req->msg);
	else if (req->type == NBD_CMD_BLOCK_STATUS)
		nbd_block_status(req);
	else if (req->type == NBD_CMD_READ && nbd_req_buf(req, req->length))
		nbd_req_fail(req, NBD_ENOMEM, "out of memory");
	else
		nbd_submit(req);
	return 0;
}

static void nbd_conn_setup(struct nbd_conn *conn)
{
	struct gendisk *disk = conn->exp->disk;
	const struct queue_limits *lim = queue_limits(disk_queue(disk));

	conn->size = get_capacity(disk) << SECTOR_SHIFT;
	conn->tflags = nbd_export_tflags(conn, conn->exp);
	conn->readonly = conn->tflags & NBD_FLAG_READ_ONLY;
	conn->min_block = lim->logical_block_size;
	conn->native_zeroes = lim->max_write_zeroes_sectors != 0;
}

/*
 * The reader is woken by its client's requests, and a client's send is a
 * synchronous wake-up: when the reader's own CPU is busy the scheduler
 * puts it on the client's CPU, and there wake-up preemption switches the
 * client out after every request it sends, while it still has replies of
 * ours to read (fio at queue depth 32: 0.2-0.4 preemptions per I/O on a
 * loaded 2-core machine). As SCHED_BATCH the reader does not preempt on
 * waking: it runs when the client blocks, its slice ends or another CPU
 * takes it, and then finds the requests sent meanwhile together. A
 * client that waits for its reply blocks at once, so it waits no longer.
 * Only from SCHED_OTHER: a real-time policy someone set is kept.
 */
static void nbd_reader_batch(void)
{
	struct sched_param sp = { 0 };

	if (sched_getscheduler(0) == SCHED_OTHER)
		sched_setscheduler(0, SCHED_BATCH, &sp);
}

void nbd_conn_transmit(struct nbd_conn *conn)
{
	unsigned int hdr_len = conn->extended ? NBD_EXT_REQUEST_LEN :
						NBD_REQUEST_LEN;
	struct blk_plug plug;
	unsigned int batch = 0;
	bool spin;
	ssize_t n;
	int ret = 0;

	nbd_conn_setup(conn);
	nbd_spin_init(conn);
	nbd_reader_batch();
	conn->rx.poll_wait = true;
	/* TCP's SIOCOUTQ counts bytes not yet acknowledged, not unread */
	conn->hold.ok = !conn->srv->is_tcp;
	conn->hold.on = conn->hold.dry = false;
	conn->rx.idle = nbd_rx_idle;
	pr_debug("nbd: %s: export %s, %s replies", conn->peer, conn->exp->name,
		 conn->extended ? "extended" : conn->structured ? "structured" :
		 "simple");
	while (!ret) {
		if (nbd_rx_avail(&conn->rx) >= hdr_len &&
		    !atomic_load_explicit(&conn->closing,
					  memory_order_relaxed)) {
			if (batch++ == NBD_BATCH) {
				nbd_unplug(conn);
				batch = 1;
			}
			nbd_plug(conn, &plug, hdr_len);
			ret = nbd_handle_request(conn, hdr_len);
			continue;
		}
		batch = 0;
		spin = nbd_spin_allowed(conn, ktime_get_ns());
		nbd_unplug_wait(conn, spin);
		if (atomic_load(&conn->closing))
			break;
		/* a wrong magic needs no more bytes to be refused */
		if (nbd_rx_avail(&conn->rx) >= 4 &&
		    get_be32(nbd_rx_peek(&conn->rx)) != nbd_magic(conn)) {
			ret = nbd_parse_header(conn, NULL,
					       nbd_rx_peek(&conn->rx));
			break;
		}
		n = nbd_wait_requests(conn, spin);
		if (n == 0 && nbd_rx_avail(&conn->rx))
			nbd_violation(conn, "connection closed inside a "
				      "request header");
		if (n <= 0)
			break;
	}
	nbd_unplug(conn);
	/* replies of requests in flight still go out, then we close */
	nbd_conn_drain(conn);
	nbd_spin_exit(conn);
}
