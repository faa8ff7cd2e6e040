// SPDX-License-Identifier: MIT
/*
 * blktrace's merged stream (blktrace -o -): every record, in time order,
 * to one file descriptor: a pipe into "blkparse -i -", a FIFO, a socket
 * or a file.
 *
 * The reader at the other end may be slow or stop reading. The trace's
 * reader thread must not wait for it: it would stop draining the rings,
 * and a stop or teardown from the daemon's control loop would wait with
 * it. So records go into a bounded buffer that is written without
 * blocking after each pass; a record that finds the buffer full is
 * dropped and counted, as the relay drops an event its reader has not
 * made room for. Each CPU's records get their own sequence numbers in the
 * stream, so a stream drop is no "skip" to blkparse, as a relay drop is
 * none.
 *
 * The stream ends at stop, so that its reader sees end of file: what is
 * still buffered is handed to a short-lived thread that writes it while
 * the reader keeps taking it, and gives up (logging how many records were
 * lost) after BT_STREAM_STALL_MS without progress.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blktrace-priv.h"

#define BT_STREAM_MIN_BUF (64U << 10)
#define BT_STREAM_STALL_MS 5000

struct bt_stream {
	int fd;
	bool sock; /* send(MSG_DONTWAIT): the description stays blocking */
	bool dead; /* the reader went away: nothing more is written */
	char *buf;
	size_t off, len, cap; /* written up to @off, filled up to @len */
	uint64_t records; /* in the buffer, for the loss count at the end */
	uint32_t seq[BLK_MAX_CPUS];
	char name[32];
};

/*
 * A non-blocking descriptor of our own on @fd's file. A pipe or FIFO is
 * opened again through /proc, which gives a new open file description:
 * O_NONBLOCK on it leaves the sender's (blkctl's stdout) as it was. A
 * socket is written with MSG_DONTWAIT; a regular file never waits for a
 * reader and is written as it is.
 */
static int bt_stream_fd(int fd, bool *sock)
{
	char path[64];
	struct stat st;
	int nfd;

	if (fstat(fd, &st))
		return -errno;
	*sock = S_ISSOCK(st.st_mode);
	if (S_ISFIFO(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (nfd >= 0)
			return nfd;
	}
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0)
		return -errno;
	if (!*sock && !S_ISREG(st.st_mode))
		fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
	return nfd;
}

int bt_stream_open(const char *name, int fd, size_t bytes,
		   struct bt_stream **out)
{
	struct bt_stream *s = calloc(1, sizeof(*s));
	int nfd;

	if (!s)
		return blk_err(-ENOMEM, "blktrace: out of memory");
	s->cap = bytes > BT_STREAM_MIN_BUF ? bytes : BT_STREAM_MIN_BUF;
	s->buf = malloc(s->cap);
	nfd = bt_stream_fd(fd, &s->sock);
	if (!s->buf || nfd < 0) {
		if (nfd >= 0)
			close(nfd);
		free(s->buf);
		free(s);
		nfd = nfd < 0 ? nfd : -ENOMEM;
		return blk_err(nfd,
			       "blktrace: cannot use descriptor %d for the "
			       "stream: %s",
			       fd, strerror(-nfd));
	}
	s->fd = nfd;
	snprintf(s->name, sizeof(s->name), "%s", name);
	*out = s;
	return 0;
}

/* Write what the reader takes now. 0, or -errno once it went away. */
static int bt_stream_write(struct bt_stream *s)
{
	while (s->off < s->len && !s->dead) {
		size_t want = s->len - s->off;
		ssize_t n = s->sock ? send(s->fd, s->buf + s->off, want,
					   MSG_DONTWAIT | MSG_NOSIGNAL)
				    : write(s->fd, s->buf + s->off, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			/* "| head": the stream ends, the trace goes on */
			pr_info("blktrace %s: the stream's reader went away",
				s->name);
			s->dead = true;
			return n < 0 ? -errno : -EIO;
		}
		s->off += (size_t)n;
	}
	if (s->off == s->len) {
		s->off = s->len = 0;
		s->records = 0;
	}
	return 0;
}

void bt_stream_push(struct bt_stream *s)
{
	bt_stream_write(s);
}

/*
 * Append one record. Returns false if it was dropped because the reader
 * is behind (not when it went away: nothing is lost that was wanted).
 */
bool bt_stream_put(struct bt_stream *s, const struct blk_io_trace *t,
		   const void *pdu)
{
	size_t len = sizeof(*t) + t->pdu_len;
	struct blk_io_trace *copy;

	if (s->dead)
		return true;
	if (s->cap - s->len < len) {
		bt_stream_write(s);
		if (s->off) { /* make the written part room again */
			memmove(s->buf, s->buf + s->off, s->len - s->off);
			s->len -= s->off;
			s->off = 0;
		}
		if (s->cap - s->len < len)
			return s->dead;
	}
	copy = (struct blk_io_trace *)(s->buf + s->len);
	memcpy(copy, t, sizeof(*t));
	if (t->sequence) /* notes have none */
		copy->sequence = ++s->seq[t->cpu % BLK_MAX_CPUS];
	memcpy(s->buf + s->len + sizeof(*t), pdu, t->pdu_len);
	s->len += len;
	s->records++;
	return true;
}

static void bt_stream_free(struct bt_stream *s)
{
	close(s->fd);
	free(s->buf);
	free(s);
}

/* Write out the rest while the reader makes progress, then close. */
static void *bt_stream_closer(void *arg)
{
	struct bt_stream *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLOUT };
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	pthread_setname_np(pthread_self(), "blktrace-end");
	while (s->off < s->len && !s->dead) {
		if (poll(&p, 1, BT_STREAM_STALL_MS) <= 0 && errno != EINTR)
			break;
		bt_stream_write(s);
	}
	if (s->len && !s->dead)
		pr_warn("blktrace %s: the stream's reader stalled; up to "
			"%llu records at its end were lost",
			s->name, (unsigned long long)s->records);
	bt_stream_free(s);
	return NULL;
}

void bt_stream_end(struct bt_stream *s)
{
	pthread_attr_t attr;
	pthread_t th;
	bool started;

	if (!s)
		return;
	bt_stream_write(s);
	if (s->dead || s->off == s->len) {
		bt_stream_free(s);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	started = !pthread_create(&th, &attr, bt_stream_closer, s);
	pthread_attr_destroy(&attr);
	if (!started) {
		pr_warn("blktrace %s: no thread to finish the stream; %llu "
			"records at its end were lost",
			s->name, (unsigned long long)s->records);
		bt_stream_free(s);
	}
}
