/* SPDX-License-Identifier: MIT */
/*
 * What the NBD server's files share: the server, its exports, one client
 * connection with its request pool and reply queue, the buffered socket
 * reader and the big-endian field helpers.
 *
 * Threads: one listener per server (nbd-server.c), one reader per
 * connection (handshake, then the transmission loop of nbd-conn.c).
 * Replies are sent by whichever thread completes a request -- the driver's
 * completion thread, or the reader itself for inline completions -- under
 * the connection's lock as a flat combiner (nbd-reply.c): one thread sends
 * everything queued with one sendmsg while the others only queue. A thread
 * completing a batch under a plug sends when its plug ends.
 */
#ifndef BLKSTACK_EXPORT_NBD_INTERNAL_H
#define BLKSTACK_EXPORT_NBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <blkstack/blk-mq.h>
#include <blkstack/nbd-server.h>

#include "export/nbd-proto.h"
#include "lib/compiler.h"

/* Requests one connection may have in flight (the pool size). */
#define NBD_CONN_MAX_REQS	256
/* The largest READ/WRITE payload (NBD_INFO_BLOCK_SIZE maximum). */
#define NBD_MAX_PAYLOAD		(32U << 20)
/* Request buffers up to this size stay with their pool slot. */
#define NBD_BUF_KEEP		(1U << 20)
/* The socket read buffer: many small requests arrive per recv(). */
#define NBD_RX_BUF		(256U << 10)
/* Option payloads we read; larger (up to NBD_OPT_DRAIN) get ERR_TOO_BIG. */
#define NBD_OPT_MAX_LEN		(64U << 10)
#define NBD_OPT_DRAIN		(16U << 20)
/* Extents in one NBD_CMD_BLOCK_STATUS reply. */
#define NBD_MAX_EXTENTS		1024
/* The metadata context id of base:allocation, the only one we serve. */
#define NBD_META_ALLOC_ID	1
/* Connections per server; more are refused at accept. */
#define NBD_MAX_CONNS		1024
/* Socket send buffer asked for (capped by net.core.wmem_max). */
#define NBD_SNDBUF		(4 << 20)
/*
 * Requests submitted under one plug before their replies go out: enough
 * to batch, few enough that the client gets replies while we read on.
 */
#define NBD_BATCH		16
/* A client that has not chosen an export after this long is dropped. */
#define NBD_HANDSHAKE_TIMEOUT_S	30
/* A reply that cannot be sent for this long ends the connection. */
#define NBD_SEND_TIMEOUT_S	30

/* ---- big-endian fields ---- */

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)get_be16(p) << 16) | get_be16(p + 2);
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* ---- buffered socket reader (nbd-io.c) ---- */

struct nbd_rx {
	int fd;
	uint8_t *buf;
	size_t size;
	size_t start, end;	/* unread bytes are buf[start, end) */
	/*
	 * Sleep in poll(POLLIN), then recv(MSG_DONTWAIT), not in recv():
	 * on a unix socket the client then wakes the reader 5x less often
	 * (each wake-up is the client's cost), measured, and over TCP it
	 * costs the client less per I/O too; most likely
	 * because the way back through poll() is longer and finds more
	 * (a write's payload behind its header) -- see docs/nbd-server.md.
	 * Not in the handshake (its timeout is SO_RCVTIMEO's).
	 */
	bool poll_wait;
	/*
	 * Called on each try while nbd_rx_read_spin() polls (false) and
	 * before it sleeps (true); NULL: nothing to do.
	 */
	void (*idle)(struct nbd_rx *rx, bool sleeping);
};

int nbd_rx_init(struct nbd_rx *rx, int fd, size_t size);
void nbd_rx_free(struct nbd_rx *rx);

static inline size_t nbd_rx_avail(const struct nbd_rx *rx)
{
	return rx->end - rx->start;
}

static inline const uint8_t *nbd_rx_peek(const struct nbd_rx *rx)
{
	return rx->buf + rx->start;
}

static inline void nbd_rx_consume(struct nbd_rx *rx, size_t n)
{
	rx->start += n;
	if (rx->start == rx->end)
		rx->start = rx->end = 0;
}

/* One recv() of whatever the socket has: bytes, 0 at EOF, or -errno. */
ssize_t nbd_rx_fill(struct nbd_rx *rx);
/* The same without waiting: -EAGAIN if the socket has nothing. */
ssize_t nbd_rx_fill_nowait(struct nbd_rx *rx);
/* Exactly @len bytes (buffered first, then straight into @dst). */
int nbd_rx_read(struct nbd_rx *rx, void *dst, size_t len);
/* The same, polling the socket for up to @spin_ns before it sleeps. */
int nbd_rx_read_spin(struct nbd_rx *rx, void *dst, size_t len,
		     uint64_t spin_ns);
/* Read and drop @len bytes. */
int nbd_rx_skip(struct nbd_rx *rx, uint64_t len);
/* Send all of @iov (MSG_NOSIGNAL); @iov is consumed. 0 or -errno. */
int nbd_send_iov(int fd, struct iovec *iov, int iovcnt);
int nbd_send_buf(int fd, const void *buf, size_t len);

/* ---- exports (nbd-server.c) ---- */

struct nbd_export {
	struct list_head list;		/* srv->exports, under srv->lock */
	char *name;
	struct gendisk *disk;		/* referenced */
	bool readonly;
	bool dead;			/* removed: no new connections */
	unsigned int nr_conns;		/* under srv->lock */
	uint16_t ioprio;		/* defaults for new connections */
	uint16_t weight;
	_Atomic int refcount;		/* the list, and each connection */
};

struct nbd_server {
	int listen_fd;
	int wake_fd;			/* eventfd: stop the listener */
	pthread_t thread;
	char *unix_path;		/* unlinked by nbd_server_stop() */
	unsigned int port;
	bool is_tcp;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a connection went away */
	struct list_head exports;
	struct list_head conns;
	unsigned int nr_conns;
	bool stopping;
	unsigned int next_conn_id;
	unsigned int handshake_timeout;	/* seconds to choose an export */
};

/*
 * Find @name ("" = the first export) and take a reference; NULL if there
 * is none or it is being removed.
 */
struct nbd_export *nbd_export_get(struct nbd_server *srv, const char *name);
void nbd_export_put(struct nbd_export *exp);
/* Names of every live export, for NBD_OPT_LIST: calls @fn under the lock. */
int nbd_export_list(struct nbd_server *srv,
		    int (*fn)(const char *name, void *arg), void *arg);

/* ---- a connection ---- */

struct nbd_conn;

/* One request from the pool: parsed header, buffer, reply. */
struct nbd_req {
	struct nbd_conn *conn;
	struct nbd_req *next;		/* free list or reply queue */
	uint64_t cookie;
	uint64_t offset;
	uint64_t length;
	uint16_t type;
	uint16_t flags;
	bool flush_after;		/* FUA on trim/zero: flush, then reply */
	uint32_t error;			/* NBD_E*, 0 = success */
	const char *msg;		/* for a structured error reply */
	_Atomic int remaining;		/* bios in flight + 1 while submitting */
	_Atomic uint8_t status;		/* first failing blk_status_t */
	uint8_t *buf;			/* payload: write data, read data */
	size_t buf_size;
	/* the reply: header bytes, then @payload_len bytes of @payload */
	uint8_t hdr[48];
	unsigned int hdr_len;
	const void *payload;
	size_t payload_len;
};

struct nbd_conn {
	struct nbd_server *srv;
	struct list_head list;		/* srv->conns, under srv->lock */
	unsigned int id;
	int fd;
	char peer[80];			/* the client, for log lines */
	pthread_t thread;

	/* negotiated in the handshake */
	bool fixed_newstyle;
	bool no_zeroes;
	bool structured;		/* structured replies */
	bool extended;			/* extended headers (implies structured) */
	bool meta_alloc;		/* base:allocation selected */
	char *meta_export;		/* ... for this export name */
	struct nbd_export *exp;		/* after NBD_OPT_GO / EXPORT_NAME */
	uint64_t size;			/* export size in bytes */
	uint16_t tflags;		/* transmission flags sent */
	unsigned int min_block;		/* logical block size */
	bool readonly;
	bool native_zeroes;		/* the device has REQ_OP_WRITE_ZEROES */
	struct io_context *ioc;		/* issuer of this connection's bios */

	struct nbd_rx rx;
	struct blk_plug *plug;		/* the reader's plug while batching */
	/* replies held corked while the reader polls (nbd-conn.c) */
	struct {
		bool ok;		/* the socket tells what is unread */
		bool on;		/* holding now */
		bool dry;		/* the last hold found nothing unread */
		uint64_t since;		/* ns */
	} hold;
	/* polling before the reader sleeps (nbd-conn.c); the reader's own */
	struct {
		bool hot;		/* the last wait was short */
		int stat_fd;		/* /proc/thread-self/schedstat, or -1 */
		uint64_t since;		/* the preemption window began (ns) */
		uint64_t delay;		/* run delay at its start (ns) */
		uint64_t off_until;	/* no polling before this (ns) */
	} spin;

	/* request pool and reply queue, under @lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a slot came free / all idle */
	struct nbd_req *reqs;		/* [NBD_CONN_MAX_REQS] */
	struct nbd_req *free_list;
	unsigned int in_flight;
	bool waiting;			/* the reader waits on @cond */
	struct nbd_req *reply_head, *reply_tail;
	bool sending;			/* a thread is draining the queue */
	unsigned int unplug_pending;	/* nbd_reply_unplug() still to run */
	bool corked;			/* the reader batches: queue only */
	_Atomic unsigned int nr_queued;	/* replies in the queue */
	bool broken;			/* sending failed: drop replies */

	_Atomic bool closing;		/* stop reading (stop, export removal) */
};

/* nbd-export.c: validate an ioprio_set(2)-style class/level and weight. */
int nbd_ioprio_check(int class, int level, unsigned int weight,
		     uint16_t *ioprio);
/* nbd-server.c: make connections of @exp (NULL: all) finish; srv->lock. */
void __nbd_close_conns(struct nbd_server *srv, struct nbd_export *exp);
/* nbd-server.c: bind @conn to @exp for transmission; -ESHUTDOWN if gone. */
int nbd_conn_attach(struct nbd_conn *conn, struct nbd_export *exp);
/* Transmission flags and block sizes of @exp as @conn would see them. */
uint16_t nbd_export_tflags(const struct nbd_conn *conn,
			   const struct nbd_export *exp);
void nbd_export_block_sizes(const struct nbd_export *exp, uint32_t *min,
			    uint32_t *pref, uint32_t *max);

/* nbd-handshake.c: 0 = go to transmission, 1 = client left, -errno. */
int nbd_handshake(struct nbd_conn *conn);

/* nbd-conn.c */
int nbd_conn_pool_init(struct nbd_conn *conn);
void nbd_conn_pool_free(struct nbd_conn *conn);
/* The transmission phase until the client leaves or we close. */
void nbd_conn_transmit(struct nbd_conn *conn);

/* nbd-reply.c */
/* Build the reply of a finished @req and queue it (or send it now). */
void nbd_reply(struct nbd_req *req);
/* Queue only, while the reader batches; nbd_uncork() sends. */
void nbd_cork(struct nbd_conn *conn);
void nbd_uncork(struct nbd_conn *conn);
/* Map a -errno from the block layer to the protocol's error value. */
uint32_t nbd_errno(int err);
/* Take a slot, waiting while all are busy; the try version does not wait. */
struct nbd_req *nbd_req_alloc(struct nbd_conn *conn);
struct nbd_req *nbd_req_tryalloc(struct nbd_conn *conn);
/* Give back a slot that gets no reply (the client went away). */
void nbd_req_drop(struct nbd_req *req);
/* Make sure @req->buf holds @len bytes; -ENOMEM. */
int nbd_req_buf(struct nbd_req *req, size_t len);
/* Wait until every slot is back (replies sent or dropped). */
void nbd_conn_drain(struct nbd_conn *conn);

#endif
