/* SPDX-License-Identifier: MIT */
/*
 * What blkstackd and blkctl agree on: where the control socket is and the
 * shape of the conversation (docs/blkctl.md has the full description).
 *
 * One command per connection. The client sends one line: the command's
 * words, shell-quoted where a word holds blanks or quotes, optionally
 * preceded by "--json". The server answers with zero or more output lines
 * and ends with one status line, "ok" or "error: <message>", then closes
 * the connection: the status is always the last line.
 *
 * A descriptor may travel with the line: an SCM_RIGHTS control message on
 * the sendmsg() that carries the line's first byte (at most
 * BLKCTL_MAX_FDS; the server keeps the first and closes the rest). A
 * command that names the stream "-" uses it: "trace NAME run|setup ...
 * -o -" (or out=-) writes the binary trace to it, which blkctl makes its
 * own stdout; blkctl then writes the answer's lines to stderr. The server
 * keeps its own duplicate, so the stream lives on after the connection
 * (it ends at the trace's stop or teardown). A command given no descriptor
 * and told "-o -" fails with a message.
 */
#ifndef BLKSTACK_DAEMON_BLKCTL_PROTO_H
#define BLKSTACK_DAEMON_BLKCTL_PROTO_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLKCTL_MAX_LINE		65536
#define BLKCTL_SOCKET_NAME	"blkstackd.sock"
#define BLKCTL_ROOT_RUNDIR	"/run/blkstack"
#define BLKCTL_MAX_FDS		4	/* passed with one line */

/*
 * The default socket: $BLKSTACK_SOCKET, else /run/blkstack/ for root,
 * else $XDG_RUNTIME_DIR/blkstack/ (the system one when that is unset).
 */
static inline void blkctl_default_socket(char *buf, size_t len)
{
	const char *env = getenv("BLKSTACK_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (geteuid() != 0 && xdg && *xdg)
		snprintf(buf, len, "%s/blkstack/%s", xdg, BLKCTL_SOCKET_NAME);
	else
		snprintf(buf, len, "%s/%s", BLKCTL_ROOT_RUNDIR,
			 BLKCTL_SOCKET_NAME);
}

static inline bool blkctl_needs_quotes(const char *s)
{
	return !*s || strpbrk(s, " \t\n\r'\"\\#") != NULL;
}

/*
 * Join words into one line that the daemon splits back into the same
 * words: a word with blanks, quotes, a backslash or '#' goes in single
 * quotes (a single quote in it as '\''). -ENOSPC if @buf is too small.
 */
static inline int blkctl_join(int argc, char *const *argv, char *buf,
			      size_t len)
{
	size_t pos = 0;

#define BLKCTL_PUT(c)							\
	do {								\
		if (pos + 1 >= len)					\
			return -ENOSPC;					\
		buf[pos++] = (c);					\
	} while (0)
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		bool quote = blkctl_needs_quotes(s);

		if (i)
			BLKCTL_PUT(' ');
		if (quote)
			BLKCTL_PUT('\'');
		for (; *s; s++) {
			if (*s == '\'' && quote) {
				/* close, an escaped quote, reopen */
				BLKCTL_PUT('\'');
				BLKCTL_PUT('\\');
				BLKCTL_PUT('\'');
			}
			BLKCTL_PUT(*s);
		}
		if (quote)
			BLKCTL_PUT('\'');
	}
#undef BLKCTL_PUT
	buf[pos] = '\0';
	return 0;
}

#endif
