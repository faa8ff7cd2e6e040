// SPDX-License-Identifier: MIT
/*
 * NBD replies and the request pool of a connection.
 *
 * A finished request's reply (simple, structured or extended, by what was
 * negotiated) is queued on its connection. The first thread to find
 * nobody sending becomes the sender and writes everything queued with one
 * sendmsg() per batch, outside the lock, until the queue is empty; others
 * only queue (a flat combiner). While the reader submits a batch of
 * requests it corks the queue, so inline completions go out together when
 * the batch ends; a thread completing a batch under a plug (a driver's
 * completion thread) queues and sends once when its plug ends. Slots return to the pool only after their reply left
 * (read replies send straight from the slot's buffer).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "export/nbd-internal.h"
#include "lib/bug.h"
#include "lib/log.h"

#define NBD_SEND_IOVS	64

uint32_t nbd_errno(int err)
{
	switch (err) {
	case 0:
		return 0;
	case -EPERM:
	case -EROFS:
		return NBD_EPERM;
	case -ENOMEM:
	case -EAGAIN:
		return NBD_ENOMEM;
	case -EINVAL:
		return NBD_EINVAL;
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
		return NBD_ENOSPC;
	case -EOVERFLOW:
		return NBD_EOVERFLOW;
	case -EOPNOTSUPP:
		return NBD_ENOTSUP;
	case -ESHUTDOWN:
	case -ENODEV:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

/* ---- building ---- */

/* The chunk header of a structured or extended reply; its length. */
static unsigned int nbd_chunk_hdr(struct nbd_req *req, uint16_t flags,
				  uint16_t type, uint64_t len)
{
	uint8_t *h = req->hdr;

	if (req->conn->extended) {
		put_be32(h, NBD_EXTENDED_REPLY_MAGIC);
		put_be16(h + 4, flags);
		put_be16(h + 6, type);
		put_be64(h + 8, req->cookie);
		put_be64(h + 16, req->offset);
		put_be64(h + 24, len);
		return NBD_EXT_REPLY_LEN;
	}
	put_be32(h, NBD_STRUCTURED_REPLY_MAGIC);
	put_be16(h + 4, flags);
	put_be16(h + 6, type);
	put_be64(h + 8, req->cookie);
	put_be32(h + 16, (uint32_t)len);
	return NBD_STRUCTURED_REPLY_LEN;
}

static void nbd_build_error(struct nbd_req *req)
{
	size_t mlen = req->msg ? strlen(req->msg) : 0;
	unsigned int n;

	if (!req->conn->structured) {
		put_be32(req->hdr, NBD_SIMPLE_REPLY_MAGIC);
		put_be32(req->hdr + 4, req->error);
		put_be64(req->hdr + 8, req->cookie);
		req->hdr_len = NBD_SIMPLE_REPLY_LEN;
		req->payload_len = 0;
		return;
	}
	n = nbd_chunk_hdr(req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
			  6 + mlen);
	put_be32(req->hdr + n, req->error);
	put_be16(req->hdr + n + 4, (uint16_t)mlen);
	req->hdr_len = n + 6;
	req->payload = req->msg;
	req->payload_len = mlen;
}

/*
 * @req->payload/payload_len hold READ data or BLOCK_STATUS extents
 * (their chunk type in @type), or nothing.
 */
static void nbd_build_reply(struct nbd_req *req, uint16_t type)
{
	unsigned int n;

	if (req->error) {
		nbd_build_error(req);
	} else if (!req->conn->structured ||
		   (type == NBD_REPLY_TYPE_NONE && !req->conn->extended)) {
		/*
		 * A success without data may be a simple reply even with
		 * structured replies (only READ may not): 16 bytes that
		 * libnbd takes in one recv(), where a NONE chunk costs it
		 * two (16 + 4), and nbdkit and qemu-nbd do the same.
		 */
		put_be32(req->hdr, NBD_SIMPLE_REPLY_MAGIC);
		put_be32(req->hdr + 4, 0);
		put_be64(req->hdr + 8, req->cookie);
		req->hdr_len = NBD_SIMPLE_REPLY_LEN;
	} else if (type == NBD_REPLY_TYPE_OFFSET_DATA && req->payload_len) {
		n = nbd_chunk_hdr(req, NBD_REPLY_FLAG_DONE, type,
				  8 + req->payload_len);
		put_be64(req->hdr + n, req->offset);
		req->hdr_len = n + 8;
	} else if (type == NBD_REPLY_TYPE_OFFSET_DATA ||
		   type == NBD_REPLY_TYPE_NONE) {
		/* a zero-length read has no data chunk */
		req->hdr_len = nbd_chunk_hdr(req, NBD_REPLY_FLAG_DONE,
					     NBD_REPLY_TYPE_NONE, 0);
		req->payload_len = 0;
	} else {
		req->hdr_len = nbd_chunk_hdr(req, NBD_REPLY_FLAG_DONE, type,
					     req->payload_len);
	}
}

/* ---- the pool ---- */

int nbd_conn_pool_init(struct nbd_conn *conn)
{
	conn->reqs = calloc(NBD_CONN_MAX_REQS, sizeof(*conn->reqs));
	if (!conn->reqs)
		return -ENOMEM;
	for (unsigned int i = NBD_CONN_MAX_REQS; i-- > 0;) {
		struct nbd_req *req = &conn->reqs[i];

		req->conn = conn;
		req->next = conn->free_list;
		conn->free_list = req;
	}
	return 0;
}

void nbd_conn_pool_free(struct nbd_conn *conn)
{
	if (!conn->reqs)
		return;
	WARN_ON(conn->in_flight);
	for (unsigned int i = 0; i < NBD_CONN_MAX_REQS; i++)
		free(conn->reqs[i].buf);
	free(conn->reqs);
	conn->reqs = NULL;
}

static struct nbd_req *nbd_req_take(struct nbd_conn *conn, bool wait)
{
	struct nbd_req *req;

	pthread_mutex_lock(&conn->lock);
	while (!conn->free_list && wait) {
		conn->waiting = true;
		pthread_cond_wait(&conn->cond, &conn->lock);
	}
	conn->waiting = false;
	req = conn->free_list;
	if (req) {
		conn->free_list = req->next;
		conn->in_flight++;
	}
	pthread_mutex_unlock(&conn->lock);
	if (!req)
		return NULL;
	req->next = NULL;
	req->error = 0;
	req->msg = NULL;
	req->flush_after = false;
	req->payload = NULL;
	req->payload_len = 0;
	atomic_store_explicit(&req->status, BLK_STS_OK, memory_order_relaxed);
	return req;
}

struct nbd_req *nbd_req_alloc(struct nbd_conn *conn)
{
	return nbd_req_take(conn, true);
}

struct nbd_req *nbd_req_tryalloc(struct nbd_conn *conn)
{
	return nbd_req_take(conn, false);
}

int nbd_req_buf(struct nbd_req *req, size_t len)
{
	void *p;

	if (req->buf_size >= len)
		return 0;
	free(req->buf);
	req->buf = NULL;
	req->buf_size = 0;
	len = ALIGN_UP(len, 4096);
	if (posix_memalign(&p, 4096, len))
		return -ENOMEM;
	req->buf = p;
	req->buf_size = len;
	return 0;
}

/* Back to the pool; conn->lock held. */
static void __nbd_req_free(struct nbd_conn *conn, struct nbd_req *req)
{
	if (req->buf_size > NBD_BUF_KEEP) {
		free(req->buf);
		req->buf = NULL;
		req->buf_size = 0;
	}
	req->next = conn->free_list;
	conn->free_list = req;
	BUG_ON(!conn->in_flight);
	if (!--conn->in_flight || conn->waiting)
		pthread_cond_signal(&conn->cond);
}

void nbd_req_drop(struct nbd_req *req)
{
	struct nbd_conn *conn = req->conn;

	pthread_mutex_lock(&conn->lock);
	__nbd_req_free(conn, req);
	pthread_mutex_unlock(&conn->lock);
}

void nbd_conn_drain(struct nbd_conn *conn)
{
	pthread_mutex_lock(&conn->lock);
	while (conn->in_flight || conn->unplug_pending) {
		conn->waiting = true;
		pthread_cond_wait(&conn->cond, &conn->lock);
	}
	conn->waiting = false;
	pthread_mutex_unlock(&conn->lock);
}

/* ---- sending ---- */

static int nbd_send_list(struct nbd_conn *conn, struct nbd_req *list)
{
	struct iovec iov[NBD_SEND_IOVS];
	int n = 0, ret = 0;

	for (struct nbd_req *req = list; req && !ret; req = req->next) {
		if (n + 2 > NBD_SEND_IOVS) {
			ret = nbd_send_iov(conn->fd, iov, n);
			n = 0;
		}
		iov[n].iov_base = req->hdr;
		iov[n++].iov_len = req->hdr_len;
		if (req->payload_len) {
			iov[n].iov_base = (void *)req->payload;
			iov[n++].iov_len = req->payload_len;
		}
	}
	if (n && !ret)
		ret = nbd_send_iov(conn->fd, iov, n);
	return ret;
}

/* Send until the queue is empty; conn->lock held, conn->sending set. */
static void __nbd_send_queued(struct nbd_conn *conn)
{
	while (conn->reply_head) {
		struct nbd_req *list = conn->reply_head, *next;
		bool broken = conn->broken;
		int ret = 0;

		conn->reply_head = conn->reply_tail = NULL;
		atomic_store_explicit(&conn->nr_queued, 0,
				      memory_order_relaxed);
		pthread_mutex_unlock(&conn->lock);
		if (!broken)
			ret = nbd_send_list(conn, list);
		if (ret) {
			pr_info("nbd: %s: sending replies: %s; closing",
				conn->peer, strerror(-ret));
			/* wake the reader: it must not wait for more */
			shutdown(conn->fd, SHUT_RDWR);
		}
		pthread_mutex_lock(&conn->lock);
		if (ret)
			conn->broken = true;
		for (; list; list = next) {
			next = list->next;
			__nbd_req_free(conn, list);
		}
	}
	conn->sending = false;
}

/* Replies left for the end of a completing thread's plug. */
struct nbd_plug_cb {
	struct blk_plug_cb cb;
	bool counted;			/* in conn->unplug_pending */
};

/*
 * The completing thread's plug ends: its batch's replies go out (unless
 * someone else sends them or the reader batches). Until this ran the
 * connection is not drained, so it cannot go away under us.
 */
static void nbd_reply_unplug(struct blk_plug_cb *cb, bool from_schedule)
{
	struct nbd_conn *conn = cb->data;

	free(cb);
	pthread_mutex_lock(&conn->lock);
	if (!conn->sending && !conn->corked && conn->reply_head) {
		conn->sending = true;
		__nbd_send_queued(conn);
	}
	if (!--conn->unplug_pending && !conn->in_flight)
		pthread_cond_signal(&conn->cond);
	pthread_mutex_unlock(&conn->lock);
}

/* Leave the sending to the end of this thread's plug; conn->lock held. */
static bool nbd_reply_defer(struct nbd_conn *conn)
{
	struct nbd_plug_cb *pcb = (struct nbd_plug_cb *)blk_check_plugged(
			nbd_reply_unplug, conn, sizeof(*pcb));

	if (!pcb)
		return false;
	if (!pcb->counted) {
		pcb->counted = true;
		conn->unplug_pending++;
	}
	return true;
}

void nbd_reply(struct nbd_req *req)
{
	struct nbd_conn *conn = req->conn;
	uint16_t type = NBD_REPLY_TYPE_NONE;

	if (req->type == NBD_CMD_READ)
		type = NBD_REPLY_TYPE_OFFSET_DATA;
	else if (req->type == NBD_CMD_BLOCK_STATUS)
		type = conn->extended ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT :
					NBD_REPLY_TYPE_BLOCK_STATUS;
	nbd_build_reply(req, type);

	pthread_mutex_lock(&conn->lock);
	req->next = NULL;
	if (conn->reply_tail)
		conn->reply_tail->next = req;
	else
		conn->reply_head = req;
	conn->reply_tail = req;
	atomic_fetch_add_explicit(&conn->nr_queued, 1, memory_order_relaxed);
	/*
	 * A thread completing a batch under a plug (a driver's completion
	 * thread) sends once, when its plug ends. The connection lives
	 * until then: this reply holds a slot.
	 */
	if (!conn->sending && !conn->corked && !nbd_reply_defer(conn)) {
		conn->sending = true;
		__nbd_send_queued(conn);
	}
	pthread_mutex_unlock(&conn->lock);
}

void nbd_cork(struct nbd_conn *conn)
{
	pthread_mutex_lock(&conn->lock);
	conn->corked = true;
	pthread_mutex_unlock(&conn->lock);
}

void nbd_uncork(struct nbd_conn *conn)
{
	pthread_mutex_lock(&conn->lock);
	conn->corked = false;
	if (!conn->sending && conn->reply_head) {
		conn->sending = true;
		__nbd_send_queued(conn);
	}
	pthread_mutex_unlock(&conn->lock);
}
