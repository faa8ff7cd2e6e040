// SPDX-License-Identifier: MIT
/*
 * The control socket: a unix stream socket; each connection carries one
 * command line (and maybe a descriptor, SCM_RIGHTS) and gets its output
 * and a final status line back (blkctl-proto.h). Lines are gathered from
 * up to CONTROL_MAX_CONNS clients at once on the main loop, beside the
 * signalfd, so a slow or idle client stalls nobody (it is dropped after
 * CONTROL_READ_MS); commands run one at a time on that loop, so they never
 * race each other or a reload. A command that waits (trace run -w) defers
 * its waiting half to a job thread (cmd_defer()), which answers its client
 * itself; the loop keeps serving and, at shutdown, cancels and waits for
 * the jobs before the devices go.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blkstackd.h"
#include "blkctl-proto.h"
#include "lib/log.h"

#define CONTROL_READ_MS		10000
#define CONTROL_MAX_CONNS	16
#define CONTROL_MAX_JOBS	16

/* A client whose line has not all arrived yet. */
struct control_conn {
	int fd;
	int passed_fd;			/* SCM_RIGHTS with the line; -1 none */
	size_t len;
	char *buf;			/* BLKCTL_MAX_LINE bytes */
	uint64_t deadline;		/* CLOCK_MONOTONIC ms */
};

/* A deferred command's second half, answering its client itself. */
struct control_job {
	pthread_t thread;
	struct cmd_job *job;
	int fd;				/* the client's connection */
	bool json;
	char cmd[256];			/* for the log */
	_Atomic bool done;
};

struct control {
	int nr;
	struct control_conn conns[CONTROL_MAX_CONNS];
	int nr_jobs;
	struct control_job *jobs[CONTROL_MAX_JOBS];
};

static int sun_fill(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/* Is a daemon answering on @path? Then it is not ours to replace. */
static bool socket_alive(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return alive;
}

/*
 * Bind to a temporary name and rename it into place once listening, so
 * that the path appears only when a connect() will be accepted.
 */
int control_listen(const char *path)
{
	struct sockaddr_un sun, tmp;
	char tmp_path[sizeof(sun.sun_path) + 32];
	int fd, ret;

	if (sun_fill(&sun, path))
		return -ENAMETOOLONG;
	if (socket_alive(&sun))
		return -EADDRINUSE;
	snprintf(tmp_path, sizeof(tmp_path), "%s.%d.tmp", path, getpid());
	if (sun_fill(&tmp, tmp_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) ||
	    listen(fd, 16) || rename(tmp_path, path)) {
		ret = -errno;
		unlink(tmp_path);
		close(fd);
		return ret;
	}
	return fd;
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* the client went away */
		s += n;
		len -= (size_t)n;
	}
}

static void reply_status(int fd, int ret, const char *err)
{
	char line[1200];
	int n;

	if (!ret)
		n = snprintf(line, sizeof(line), "ok\n");
	else
		n = snprintf(line, sizeof(line), "error: %s\n", err);
	/* the message is one line whatever the command wrote into it */
	for (int i = 0; i < n - 1; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	write_all(fd, line, (size_t)(n < (int)sizeof(line) ? n :
				     (int)sizeof(line) - 1));
}

/* The answer: output first (unless the command failed), status last. */
static void reply_all(int fd, int ret, const char *out, size_t out_len,
		      const char *cmd, const char *err)
{
	/* a failed command's partial output is dropped: the error says it */
	if (!ret && out_len) {
		write_all(fd, out, out_len);
		/* the status must start a line of its own */
		if (out[out_len - 1] != '\n')
			write_all(fd, "\n", 1);
	}
	if (ret)
		pr_info("control: %s: %s", cmd, err);
	reply_status(fd, ret, err);
}

static void *job_thread(void *arg)
{
	struct control_job *j = arg;
	struct cmd_reply r = { .json = j->json };
	char *out = NULL;
	size_t out_len = 0;
	int ret;

	r.out = open_memstream(&out, &out_len);
	if (!r.out) {
		ret = cmd_err(&r, -ENOMEM, "out of memory");
	} else {
		if (r.json)
			json_init(&r.json_w, r.out);
		ret = j->job->run(j->job, &r);
		fclose(r.out);
	}
	reply_all(j->fd, ret, out, out_len, j->cmd, r.err);
	free(out);
	close(j->fd);
	atomic_store(&j->done, true);
	return NULL;
}

/* The command deferred @job: the connection @fd is the job's now. */
static int job_start(struct control *c, struct cmd_job *job, int fd,
		     bool json, const char *cmd)
{
	struct control_job *j;

	if (c->nr_jobs == CONTROL_MAX_JOBS)
		return -EAGAIN;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->job = job;
	j->fd = fd;
	j->json = json;
	snprintf(j->cmd, sizeof(j->cmd), "%s", cmd);
	if (pthread_create(&j->thread, NULL, job_thread, j)) {
		free(j);
		return -EAGAIN;
	}
	c->jobs[c->nr_jobs++] = j;
	return 0;
}

/* Join the jobs that answered (all of them if @wait, cancelled first). */
static void jobs_reap(struct control *c, bool wait)
{
	for (int i = 0; wait && i < c->nr_jobs; i++)
		c->jobs[i]->job->cancel(c->jobs[i]->job);
	for (int i = c->nr_jobs - 1; i >= 0; i--) {
		struct control_job *j = c->jobs[i];

		if (!wait && !atomic_load(&j->done))
			continue;
		pthread_join(j->thread, NULL);
		j->job->free(j->job);
		free(j);
		c->jobs[i] = c->jobs[--c->nr_jobs];
	}
}

/*
 * Run a complete line and answer it; output first, the status line last.
 * Returns true if a job took the connection.
 */
static bool control_run(struct blkstackd *d, struct control *c,
			struct control_conn *conn)
{
	struct cmd_reply r = { .has_fd = conn->passed_fd >= 0,
			       .fd = conn->passed_fd,
			       .can_defer = true };
	char *out = NULL, cmd[256];
	size_t out_len = 0;
	int ret;

	pr_debug("control: %s", conn->buf);
	snprintf(cmd, sizeof(cmd), "%s", conn->buf);
	r.out = open_memstream(&out, &out_len);
	if (!r.out) {
		reply_status(conn->fd, -ENOMEM, "out of memory");
		return false;
	}
	ret = cmd_run_line(d, conn->buf, &r);
	fclose(r.out);
	if (!ret && r.job) {
		ret = job_start(c, r.job, conn->fd, r.json, cmd);
		if (!ret) {
			free(out);
			return true;
		}
		r.job->free(r.job);
		cmd_err(&r, ret, "%d commands are running already; try later",
			c->nr_jobs);
	}
	reply_all(conn->fd, ret, out, out_len, cmd, r.err);
	free(out);
	return false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_close(struct control *c, int i)
{
	if (c->conns[i].fd >= 0)
		close(c->conns[i].fd);
	if (c->conns[i].passed_fd >= 0)
		close(c->conns[i].passed_fd);
	free(c->conns[i].buf);
	c->conns[i] = c->conns[--c->nr];
}

static void conn_accept(struct control *c, int lfd)
{
	struct control_conn *conn = &c->conns[c->nr];
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	conn->buf = malloc(BLKCTL_MAX_LINE);
	if (!conn->buf) {
		close(fd);
		return;
	}
	conn->fd = fd;
	conn->passed_fd = -1;
	conn->len = 0;
	conn->deadline = now_ms() + CONTROL_READ_MS;
	c->nr++;
}

/* Keep the first descriptor the client passed; close any others. */
static void conn_take_fds(struct control_conn *conn, struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm;
	     cm = CMSG_NXTHDR(msg, cm)) {
		size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[BLKCTL_MAX_FDS];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		for (size_t k = 0; k < nfds; k++) {
			if (conn->passed_fd < 0)
				conn->passed_fd = fds[k];
			else
				close(fds[k]);
		}
	}
}

/* Take what the client sent: 1 with a whole line, 0 for more, <0 error. */
static int conn_read(struct control_conn *conn)
{
	union {
		char buf[CMSG_SPACE(BLKCTL_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { conn->buf + conn->len,
			     BLKCTL_MAX_LINE - 1 - conn->len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(conn->fd, &msg, MSG_CMSG_CLOEXEC);
	char *nl;

	if (n >= 0)
		conn_take_fds(conn, &msg);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	conn->len += (size_t)n;
	conn->buf[conn->len] = '\0';
	nl = memchr(conn->buf, '\n', conn->len);
	if (nl) {
		*nl = '\0';
		return 1;
	}
	if (n == 0)
		return 1;	/* a last line without '\n' */
	return conn->len + 1 >= BLKCTL_MAX_LINE ? -E2BIG : 0;
}

/*
 * The line is complete (or bad): answer it in blocking mode and close
 * (unless a job took the connection to answer later).
 */
static void conn_serve(struct blkstackd *d, struct control *c, int i,
		       int ret)
{
	struct control_conn *conn = &c->conns[i];
	struct timeval tv = { .tv_sec = CONTROL_READ_MS / 1000 };

	fcntl(conn->fd, F_SETFL, fcntl(conn->fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (ret == 1) {
		if (control_run(d, c, conn))
			conn->fd = -1;
	} else
		reply_status(conn->fd, ret, ret == -E2BIG ?
			     "command line too long" : ret == -ETIMEDOUT ?
			     "no command line within 10 s" : strerror(-ret));
	conn_close(c, i);
}

/* Poll timeout: until the first connection's deadline, or forever. */
static int fill_pollfds(struct control *c, struct pollfd *p, int sfd, int lfd)
{
	uint64_t now = now_ms(), first = UINT64_MAX;

	p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	/* a full table leaves new clients in the listen backlog */
	p[1] = (struct pollfd){ .fd = c->nr < CONTROL_MAX_CONNS ? lfd : -1,
				.events = POLLIN };
	for (int i = 0; i < c->nr; i++) {
		p[2 + i] = (struct pollfd){ .fd = c->conns[i].fd,
					    .events = POLLIN };
		if (c->conns[i].deadline < first)
			first = c->conns[i].deadline;
	}
	/* a finished job is joined within a second */
	if (c->nr_jobs && first > now + 1000)
		first = now + 1000;
	if (first == UINT64_MAX)
		return -1;
	return first > now ? (int)(first - now) : 0;
}

void control_loop(struct blkstackd *d, int sfd, int lfd,
		  bool (*on_signal)(struct blkstackd *d, int sfd))
{
	struct control c = { .nr = 0 };
	struct pollfd p[2 + CONTROL_MAX_CONNS];

	for (;;) {
		jobs_reap(&c, false);
		int timeout = fill_pollfds(&c, p, sfd, lfd);
		int nfds = 2 + c.nr;

		if (poll(p, (nfds_t)nfds, timeout) < 0 && errno != EINTR) {
			pr_err("poll: %s", strerror(errno));
			break;
		}
		if ((p[0].revents & POLLIN) && on_signal(d, sfd))
			break;
		/* backwards: conn_close() moves the last one into the hole */
		for (int i = nfds - 3; i >= 0; i--) {
			int ret = 0;

			if (p[2 + i].revents)
				ret = conn_read(&c.conns[i]);
			if (!ret && now_ms() >= c.conns[i].deadline)
				ret = -ETIMEDOUT;
			if (ret)
				conn_serve(d, &c, i, ret);
		}
		if (p[1].revents & POLLIN)
			conn_accept(&c, lfd);
	}
	while (c.nr > 0) {
		reply_status(c.conns[0].fd, -ESHUTDOWN, "blkstackd is shutting "
			     "down");
		conn_close(&c, 0);
	}
	jobs_reap(&c, true);	/* before the devices go */
}
