// SPDX-License-Identifier: MIT
/*
 * blkctl: the command line of blkstackd (docs/blkctl.md). Sends one
 * command over the control socket and prints the answer; the daemon does
 * all the checking, so a new command family needs nothing here.
 *
 * Exit status: 0 the command succeeded, 1 it failed (the daemon's message
 * on stderr), 2 usage error or the daemon could not be reached.
 *
 * "trace ... -o -" (or out=-) streams the binary trace to our stdout: the
 * descriptor goes to the daemon with the line (blkctl-proto.h), which
 * writes to it directly, and the answer's lines go to stderr instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/blkctl-proto.h"

/* A command may drain a device's I/O: give it time, but not forever. */
#define BLKCTL_REPLY_MS	300000

static void usage(FILE *f)
{
	fprintf(f,
"usage: blkctl [--socket PATH] [--json] COMMAND [ARG]...\n"
"commands:\n"
"  dev add DRIVER NAME [KEY=VALUE]...   dev del NAME   dev ls\n"
"  queue NAME [ATTR [VALUE]]            (/sys/block/NAME/queue/ names)\n"
"  export nbd NAME [name=EXPORT] [readonly]   export ls   unexport EXPORT\n"
"  stat [NAME]                          debug NAME\n"
"The socket is --socket, else $BLKSTACK_SOCKET, else %s/%s\n"
"(root) or $XDG_RUNTIME_DIR/blkstack/%s. See docs/blkctl.md.\n",
		BLKCTL_ROOT_RUNDIR, BLKCTL_SOCKET_NAME, BLKCTL_SOCKET_NAME);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Does the command stream the trace to stdout ("-o -", "out=-")? */
static bool wants_stdout(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "trace"))
		return false;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "out=-") ||
		    (!strcmp(argv[i], "-o") && i + 1 < argc &&
		     !strcmp(argv[i + 1], "-")))
			return true;
	return false;
}

/* The line's first byte carries @pass_fd (if >= 0) as SCM_RIGHTS. */
static int send_first(int fd, const char *s, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)s, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (pass_fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static int send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until the daemon closes; the answer in a malloc'd string. */
static char *read_all(int fd, size_t *lenp)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *more = realloc(buf, cap * 2);

			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
		if (poll(&p, 1, BLKCTL_REPLY_MS) == 0) {
			errno = ETIMEDOUT;
			break;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0) {
				buf[len] = '\0';
				*lenp = len;
				return buf;
			}
			break;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

/* Print the output and turn the final status line into the exit code. */
static int finish(const char *sock, char *ans, size_t len, FILE *out)
{
	char *status;

	if (len && ans[len - 1] == '\n')
		ans[--len] = '\0';
	status = strrchr(ans, '\n');
	if (status) {
		*status++ = '\0';
		fprintf(out, "%s\n", ans);
	} else {
		status = ans;
	}
	if (!strcmp(status, "ok"))
		return 0;
	if (!strncmp(status, "error: ", 7)) {
		fprintf(stderr, "blkctl: %s\n", status + 7);
		return 1;
	}
	fprintf(stderr, "blkctl: no status from blkstackd at %s (did it "
		"stop?)\n", sock);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char sock[4096], *line, *ans;
	bool json = false, to_stdout;
	size_t len;
	int c, fd;

	blkctl_default_socket(sock, sizeof(sock));
	/* "+": options end at the command, whose words may start with '-' */
	while ((c = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': snprintf(sock, sizeof(sock), "%s", optarg); break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	line = malloc(BLKCTL_MAX_LINE);
	if (!line)
		return 2;
	len = (size_t)snprintf(line, BLKCTL_MAX_LINE, "%s", json ? "--json " : "");
	if (blkctl_join(argc - optind, argv + optind, line + len,
			BLKCTL_MAX_LINE - len - 1)) {
		fprintf(stderr, "blkctl: the command is longer than %d bytes\n",
			BLKCTL_MAX_LINE);
		free(line);
		return 2;
	}
	strcat(line, "\n");
	to_stdout = wants_stdout(argc - optind, argv + optind);
	if (to_stdout && (fcntl(1, F_GETFD) < 0 || isatty(1))) {
		fprintf(stderr, "blkctl: -o - writes the binary trace to "
			"stdout, which is %s: pipe it (| blkparse -i -) or "
			"redirect it\n", isatty(1) ? "a terminal" : "closed");
		free(line);
		return 2;
	}
	fd = connect_to(sock);
	if (fd < 0) {
		fprintf(stderr, "blkctl: cannot reach blkstackd at %s: %s\n",
			sock, strerror(errno));
		free(line);
		return 2;
	}
	ans = send_first(fd, line, to_stdout ? 1 : -1) ||
			      send_all(fd, line + 1, strlen(line) - 1)
		      ? NULL
		      : read_all(fd, &len);
	if (!ans)
		fprintf(stderr, "blkctl: talking to blkstackd at %s: %s\n",
			sock, strerror(errno));
	close(fd);
	free(line);
	if (!ans)
		return 2;
	c = finish(sock, ans, len, to_stdout ? stderr : stdout);
	free(ans);
	return c;
}
