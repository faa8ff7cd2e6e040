// SPDX-License-Identifier: MIT
/*
 * The control socket: a unix stream socket; each connection carries one
 * command line and gets its output and a final status line back
 * (blkctl-proto.h). Served one at a time on the main thread, so commands
 * never race each other; a client that does not send its line within
 * CONTROL_READ_MS is dropped, so it cannot stall the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkstackd.h"
#include "blkctl-proto.h"
#include "lib/log.h"

#define CONTROL_READ_MS	10000

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

/* Read one line (up to '\n' or EOF); -errno, or -ETIMEDOUT. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t pos = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (pos + 1 < len) {
		ssize_t n;

		if (poll(&p, 1, CONTROL_READ_MS) == 0)
			return -ETIMEDOUT;
		n = read(fd, buf + pos, len - 1 - pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		pos += (size_t)n;
		if (memchr(buf + pos - (size_t)n, '\n', (size_t)n))
			break;
	}
	buf[pos] = '\0';
	if (pos + 1 >= len && !strchr(buf, '\n'))
		return -E2BIG;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
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

void control_serve(struct blkstackd *d, int fd)
{
	struct cmd_reply r = { 0 };
	struct timeval tv = { .tv_sec = CONTROL_READ_MS / 1000 };
	char *line = malloc(BLKCTL_MAX_LINE), *out = NULL;
	char cmd[256];
	size_t out_len = 0;
	int ret;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!line) {
		reply_status(fd, -ENOMEM, "out of memory");
		goto out;
	}
	ret = read_line(fd, line, BLKCTL_MAX_LINE);
	if (ret) {
		reply_status(fd, ret, ret == -E2BIG ? "command line too long" :
			     strerror(-ret));
		goto out;
	}
	pr_debug("control: %s", line);
	snprintf(cmd, sizeof(cmd), "%s", line);
	r.out = open_memstream(&out, &out_len);
	if (!r.out) {
		reply_status(fd, -ENOMEM, "out of memory");
		goto out;
	}
	ret = cmd_run_line(d, line, &r);
	fclose(r.out);
	/* a failed command's partial output is dropped: the error says it */
	if (!ret && out_len)
		write_all(fd, out, out_len);
	if (ret)
		pr_info("control: %s: %s", cmd, r.err);
	reply_status(fd, ret, r.err);
out:
	free(out);
	free(line);
	close(fd);
}
