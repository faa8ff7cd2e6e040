// SPDX-License-Identifier: MIT
/*
 * Socket I/O for the NBD server: a buffered reader that takes everything
 * the socket has in one recv() (so a burst of pipelined requests costs one
 * system call), reads the rest of a payload straight into its destination
 * (and what follows it into the buffer, in the same recvmsg()), either
 * of them without sleeping for the reader's polling, and a sender that
 * writes whole iovec arrays with sendmsg(MSG_NOSIGNAL). In transmission
 * the reader sleeps in poll(), not in recv(): see struct nbd_rx.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "export/nbd-internal.h"
#include "lib/compiler.h"
#include "lib/time.h"

int nbd_rx_init(struct nbd_rx *rx, int fd, size_t size)
{
	rx->fd = fd;
	rx->size = size;
	rx->start = rx->end = 0;
	rx->poll_wait = false;
	rx->idle = NULL;
	rx->buf = malloc(size);
	return rx->buf ? 0 : -ENOMEM;
}

void nbd_rx_free(struct nbd_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
}

static ssize_t nbd_recvmsg(int fd, struct msghdr *msg, int flags)
{
	for (;;) {
		ssize_t n = recvmsg(fd, msg, flags);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

/* Until the socket is readable (bytes, EOF or an error): 0 or -errno. */
static int nbd_rx_wait(struct nbd_rx *rx)
{
	struct pollfd pfd = { .fd = rx->fd, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* One recvmsg(); unless MSG_DONTWAIT, asleep in poll() if @rx->poll_wait. */
static ssize_t nbd_rx_recvmsg(struct nbd_rx *rx, struct msghdr *msg,
			      int flags)
{
	ssize_t n;
	int ret;

	if (!rx->poll_wait || flags & MSG_DONTWAIT)
		return nbd_recvmsg(rx->fd, msg, flags);
	while ((n = nbd_recvmsg(rx->fd, msg, flags | MSG_DONTWAIT)) ==
	       -EAGAIN) {
		ret = nbd_rx_wait(rx);
		if (ret)
			return ret;
	}
	return n;
}

static ssize_t nbd_rx_fill_flags(struct nbd_rx *rx, int flags)
{
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	/* keep a partial message at the front so the tail has room */
	if (rx->start && rx->size - rx->end < rx->size / 4) {
		memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
		rx->end -= rx->start;
		rx->start = 0;
	}
	iov.iov_base = rx->buf + rx->end;
	iov.iov_len = rx->size - rx->end;
	n = nbd_rx_recvmsg(rx, &msg, flags);
	if (n > 0)
		rx->end += (size_t)n;
	return n;
}

ssize_t nbd_rx_fill(struct nbd_rx *rx)
{
	return nbd_rx_fill_flags(rx, 0);
}

ssize_t nbd_rx_fill_nowait(struct nbd_rx *rx)
{
	return nbd_rx_fill_flags(rx, MSG_DONTWAIT);
}

/*
 * One recv of the rest of a message into @dst, with whatever follows it
 * on the socket (the next requests) going into the empty buffer: the
 * payload is not copied, and the next requests cost no recv of their own.
 */
static ssize_t nbd_rx_recv_into(struct nbd_rx *rx, void *dst, size_t len,
				int flags)
{
	struct iovec iov[2] = {
		{ .iov_base = dst, .iov_len = len },
		{ .iov_base = rx->buf, .iov_len = rx->size },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n = nbd_rx_recvmsg(rx, &msg, flags);

	if (n > 0 && (size_t)n > len) {
		rx->start = 0;
		rx->end = (size_t)n - len;
	}
	return n;
}

int nbd_rx_read_spin(struct nbd_rx *rx, void *dst, size_t len,
		     uint64_t spin_ns)
{
	size_t have = min(nbd_rx_avail(rx), len);
	uint64_t end = spin_ns ? ktime_get_ns() + spin_ns : 0;
	uint8_t *p = dst;

	memcpy(p, nbd_rx_peek(rx), have);
	nbd_rx_consume(rx, have);
	p += have;
	len -= have;
	/* the buffer is empty now if anything is left to read */
	while (len) {
		bool spin = end && ktime_get_ns() < end;
		ssize_t n;

		if (rx->idle)
			rx->idle(rx, !spin);
		n = nbd_rx_recv_into(rx, p, len, spin ? MSG_DONTWAIT : 0);

		if (n == -EAGAIN && spin)
			continue;
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return (int)n;
		if ((size_t)n >= len)
			break;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_rx_read(struct nbd_rx *rx, void *dst, size_t len)
{
	return nbd_rx_read_spin(rx, dst, len, 0);
}

int nbd_rx_skip(struct nbd_rx *rx, uint64_t len)
{
	while (len) {
		size_t n;

		if (!nbd_rx_avail(rx)) {
			ssize_t r = nbd_rx_fill(rx);

			if (r == 0)
				return -EPIPE;
			if (r < 0)
				return (int)r;
		}
		n = (size_t)min((uint64_t)nbd_rx_avail(rx), len);
		nbd_rx_consume(rx, n);
		len -= n;
	}
	return 0;
}

int nbd_send_iov(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int nbd_send_buf(int fd, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return nbd_send_iov(fd, &iov, 1);
}
