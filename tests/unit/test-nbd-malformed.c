// SPDX-License-Identifier: MIT
/*
 * The NBD server against clients that misbehave, spoken to over raw unix
 * sockets: bad greetings and client flags, bad option magic, absurd and
 * oversized option lengths, unknown options (NBD_REP_ERR_UNSUP, the
 * connection lives), malformed NBD_OPT_GO, bad request magic, absurd
 * payload lengths, unknown commands (closed) and flags, out-of-range and
 * misaligned requests, truncated messages, disconnects in the middle of
 * a payload or with replies pending. Through all of it a libnbd client
 * on another connection keeps reading and writing, and every misbehaving
 * connection is cleaned up.
 *
 * Also a minimal client of our own for extended headers (Debian 12's
 * libnbd predates them): NBD_OPT_EXTENDED_HEADERS, 64-bit lengths,
 * extended replies, NBD_REPLY_TYPE_BLOCK_STATUS_EXT.
 */
#include <errno.h>
#include <libnbd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "export/nbd-internal.h"
#include "testlib.h"

#define MiB	(1024 * 1024ULL)
#define GiB	(1024 * MiB)

static char sockdir[64], sockpath[128];
static struct nbd_server *srv;
static struct nbd_handle *witness;
static uint8_t buf[2 * 1024 * 1024], buf2[2 * 1024 * 1024];

/* ---- raw socket helpers ---- */

static int raw_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 30 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (!CHECK(fd >= 0))
		return -1;
	strcpy(sun.sun_path, sockpath);
	/*
	 * a server that does not answer fails the test, never hangs it; 30 s
	 * as a 5 GiB write-zeroes takes seconds under TSan on a loaded host
	 */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!CHECK_MSG(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		       "connect: %s", strerror(errno))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool put(int fd, const void *p, size_t n)
{
	return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

static bool get(int fd, void *p, size_t n)
{
	uint8_t *q = p;

	while (n) {
		ssize_t r = recv(fd, q, n, 0);

		if (r <= 0)
			return false;
		q += r;
		n -= (size_t)r;
	}
	return true;
}

/* The server closed the connection (end of file, or a reset). */
static bool closed_by_server(int fd)
{
	uint8_t b;
	ssize_t r = recv(fd, &b, 1, 0);

	return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Read the greeting and answer with @cflags. */
static bool greet(int fd, uint32_t cflags)
{
	uint8_t g[18], c[4];

	if (!CHECK(get(fd, g, sizeof(g))))
		return false;
	CHECK(get_be64(g) == NBD_INIT_MAGIC && get_be64(g + 8) == NBD_OPTS_MAGIC);
	CHECK_EQ_INT(get_be16(g + 16),
		     NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	put_be32(c, cflags);
	return put(fd, c, 4);
}

static bool send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];

	put_be64(h, NBD_OPTS_MAGIC);
	put_be32(h + 8, opt);
	put_be32(h + 12, len);
	/* no @data: only the header (a client that lies about the length) */
	return put(fd, h, 16) && (!data || !len || put(fd, data, len));
}

struct opt_reply {
	uint32_t opt, type, len;
	uint8_t data[4200];
};

static bool get_opt_reply(int fd, struct opt_reply *r)
{
	uint8_t h[20];

	if (!get(fd, h, 20) || !CHECK(get_be64(h) == NBD_REP_MAGIC))
		return false;
	r->opt = get_be32(h + 8);
	r->type = get_be32(h + 12);
	r->len = get_be32(h + 16);
	return CHECK(r->len <= sizeof(r->data)) && get(fd, r->data, r->len);
}

/* One option with one reply of the type expected. */
static bool opt_expect(int fd, uint32_t opt, const void *data, uint32_t len,
		       uint32_t type)
{
	struct opt_reply r;

	if (!CHECK(send_opt(fd, opt, data, len)) ||
	    !CHECK_MSG(get_opt_reply(fd, &r), "option %u: no reply", opt))
		return false;
	return CHECK_MSG(r.opt == opt && r.type == type,
			 "option %u: reply type 0x%x, want 0x%x", opt, r.type,
			 type);
}

/* NBD_OPT_GO for @name: the export's size, or 0 on failure. */
static uint64_t opt_go(int fd, const char *name)
{
	uint8_t d[64];
	uint32_t n = (uint32_t)strlen(name);
	struct opt_reply r;
	uint64_t size = 0;

	put_be32(d, n);
	memcpy(d + 4, name, n);
	put_be16(d + 4 + n, 0);
	if (!CHECK(send_opt(fd, NBD_OPT_GO, d, n + 6)))
		return 0;
	while (get_opt_reply(fd, &r)) {
		if (r.type == NBD_REP_INFO && get_be16(r.data) == NBD_INFO_EXPORT)
			size = get_be64(r.data + 2);
		if (r.type != NBD_REP_INFO)
			break;
	}
	return CHECK_MSG(r.type == NBD_REP_ACK, "go: reply 0x%x", r.type) ?
	       size : 0;
}

/* A connection in transmission on @name with simple replies. */
static int raw_transmission(const char *name)
{
	int fd = raw_connect();

	if (fd < 0)
		return -1;
	if (!greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES) ||
	    !opt_go(fd, name)) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_req(int fd, bool ext, uint16_t flags, uint16_t type,
		     uint64_t cookie, uint64_t off, uint64_t len,
		     const void *payload, size_t plen)
{
	uint8_t h[32];

	put_be32(h, ext ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC);
	put_be16(h + 4, flags);
	put_be16(h + 6, type);
	put_be64(h + 8, cookie);
	put_be64(h + 16, off);
	if (ext)
		put_be64(h + 24, len);
	else
		put_be32(h + 24, (uint32_t)len);
	return put(fd, h, ext ? 32 : 28) && (!plen || put(fd, payload, plen));
}

/* A simple reply's error for @cookie; -1 if none came. */
static long simple_reply(int fd, uint64_t cookie)
{
	uint8_t h[16];

	if (!CHECK_MSG(get(fd, h, 16), "no reply"))
		return -1;
	CHECK_EQ_U64(get_be32(h), NBD_SIMPLE_REPLY_MAGIC);
	CHECK_EQ_U64(get_be64(h + 8), cookie);
	return get_be32(h + 4);
}

/* The libnbd client on its own connection still works. */
static void witness_check(const char *after)
{
	static unsigned int round;
	uint64_t off = (uint64_t)(round++ % 64) * 4096;

	test_fill(buf2, 4096, 1000 + round, off);
	CHECK_MSG(nbd_pwrite(witness, buf2, 4096, off, 0) == 0 &&
		  nbd_pread(witness, buf2 + 4096, 4096, off, 0) == 0 &&
		  test_verify(buf2 + 4096, 4096, 1000 + round, off) == -1,
		  "after %s: the other client failed: %s", after,
		  nbd_get_error());
}

/* ---- the handshake ---- */

static void test_bad_greeting(void)
{
	uint8_t junk[16] = "NOTIHAVEOPT12345";
	int fd;

	test_begin("handshake: bad flags, magic, lengths", 20);
	/* unknown client flag bits: the server must close */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | (1U << 20)))
		CHECK_MSG(closed_by_server(fd), "unknown client flags kept");
	close(fd);
	witness_check("bad client flags");

	/* bad option magic */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE) && put(fd, junk, 16))
		CHECK_MSG(closed_by_server(fd), "bad option magic kept");
	close(fd);

	/* an absurd option length */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE) &&
	    CHECK(send_opt(fd, NBD_OPT_GO, NULL, 0xffffffffU)))
		CHECK_MSG(closed_by_server(fd), "4 GiB option kept");
	close(fd);
	witness_check("absurd option length");

	/* options without fixed newstyle: only EXPORT_NAME */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, 0) && CHECK(send_opt(fd, NBD_OPT_LIST, NULL, 0)))
		CHECK_MSG(closed_by_server(fd), "LIST without fixed newstyle");
	close(fd);

	/* a truncated option, then gone */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE)) {
		CHECK(send_opt(fd, NBD_OPT_INFO, NULL, 100));
		CHECK(put(fd, junk, 10));
	}
	close(fd);
	/* and one that leaves in the middle of the greeting */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	CHECK(get(fd, buf, 10));
	close(fd);
	witness_check("truncated options");
}

static void test_options(void)
{
	uint8_t d[128] = { 0 };
	struct opt_reply r;
	uint8_t *big;
	int fd;

	test_begin("handshake: unknown and malformed options", 20);
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (!greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		close(fd);
		return;
	}
	/* unknown options are refused and the connection lives */
	opt_expect(fd, 999, d, 10, NBD_REP_ERR_UNSUP);
	opt_expect(fd, 0x7fffffff, NULL, 0, NBD_REP_ERR_UNSUP);
	opt_expect(fd, NBD_OPT_STARTTLS, NULL, 0, NBD_REP_ERR_UNSUP);
	opt_expect(fd, NBD_OPT_PEEK_EXPORT, NULL, 0, NBD_REP_ERR_UNSUP);
	/* too big to read, small enough to skip */
	big = calloc(1, 100000);
	if (CHECK(big)) {
		opt_expect(fd, NBD_OPT_GO, big, 100000, NBD_REP_ERR_TOO_BIG);
		free(big);
	}
	/* LIST takes no data */
	opt_expect(fd, NBD_OPT_LIST, d, 4, NBD_REP_ERR_INVALID);
	/* GO: name length beyond the data; count that does not add up */
	put_be32(d, 50);
	opt_expect(fd, NBD_OPT_GO, d, 8, NBD_REP_ERR_INVALID);
	put_be32(d, 3);
	memcpy(d + 4, "mem", 3);
	put_be16(d + 7, 5);
	opt_expect(fd, NBD_OPT_INFO, d, 9, NBD_REP_ERR_INVALID);
	/* a name with a NUL in it */
	put_be32(d, 3);
	memcpy(d + 4, "m\0m", 3);
	put_be16(d + 7, 0);
	opt_expect(fd, NBD_OPT_GO, d, 9, NBD_REP_ERR_INVALID);
	/* an unknown export */
	put_be32(d, 4);
	memcpy(d + 4, "nope", 4);
	put_be16(d + 8, 0);
	opt_expect(fd, NBD_OPT_GO, d, 10, NBD_REP_ERR_UNKNOWN);
	/* meta contexts need structured replies first */
	opt_expect(fd, NBD_OPT_SET_META_CONTEXT, NULL, 0, NBD_REP_ERR_INVALID);
	opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, d, 1, NBD_REP_ERR_INVALID);
	opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NBD_REP_ACK);
	opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NBD_REP_ERR_INVALID);
	/* a malformed meta context query */
	put_be32(d, 3);
	memcpy(d + 4, "mem", 3);
	put_be32(d + 7, 2);
	put_be32(d + 11, 200);
	opt_expect(fd, NBD_OPT_LIST_META_CONTEXT, d, 15, NBD_REP_ERR_INVALID);
	/* after all that, LIST and GO still work */
	if (CHECK(send_opt(fd, NBD_OPT_LIST, NULL, 0))) {
		unsigned int n = 0;

		while (get_opt_reply(fd, &r) && r.type == NBD_REP_SERVER)
			n++;
		CHECK_EQ_INT(n, 2);
		CHECK_EQ_INT(r.type, NBD_REP_ACK);
	}
	CHECK_EQ_U64(opt_go(fd, "mem"), 64 * MiB);
	close(fd);

	/* ABORT: an ACK, then the server closes */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE)) {
		opt_expect(fd, NBD_OPT_ABORT, NULL, 0, NBD_REP_ACK);
		CHECK(closed_by_server(fd));
	}
	close(fd);
	/* EXPORT_NAME of an unknown export cannot be answered: close */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE) &&
	    CHECK(send_opt(fd, NBD_OPT_EXPORT_NAME, "nope", 4)))
		CHECK(closed_by_server(fd));
	close(fd);
	/* old-style EXPORT_NAME: size, flags and 124 zeroes */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, 0) && CHECK(send_opt(fd, NBD_OPT_EXPORT_NAME, "mem", 3)) &&
	    CHECK(get(fd, buf, 134))) {
		CHECK_EQ_U64(get_be64(buf), 64 * MiB);
		CHECK(test_is_zero(buf + 10, 124));
		CHECK(send_req(fd, false, 0, NBD_CMD_READ, 1, 0, 4096, NULL,
			       0));
		if (CHECK_EQ_INT(simple_reply(fd, 1), 0))
			CHECK(get(fd, buf, 4096));
	}
	close(fd);
	witness_check("options");
}

static void test_handshake_timeout(void)
{
	uint64_t t0;
	int fd;

	test_begin("handshake: a silent client is dropped", 20);
	CHECK_EQ_INT(nbd_server_set_handshake_timeout(srv, 0), -EINVAL);
	CHECK_EQ_INT(nbd_server_set_handshake_timeout(srv, 3601), -EINVAL);
	REQUIRE(nbd_server_set_handshake_timeout(srv, 1) == 0);
	fd = raw_connect();
	REQUIRE(fd >= 0);
	t0 = test_now_ns();
	/* greeted, then silent: no client flags */
	if (CHECK(get(fd, buf, 18)))
		CHECK_MSG(closed_by_server(fd), "a silent client was kept");
	CHECK_MSG(test_now_ns() - t0 < 4000000000ULL, "dropped after %llu ms",
		  (unsigned long long)(test_now_ns() - t0) / 1000000);
	close(fd);
	/* silent between options too */
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE)) {
		struct opt_reply r;

		opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NBD_REP_ACK);
		t0 = test_now_ns();
		CHECK_MSG(closed_by_server(fd), "a silent client was kept");
		CHECK(test_now_ns() - t0 < 4000000000ULL);
		CHECK(!get_opt_reply(fd, &r));
	}
	close(fd);
	nbd_server_set_handshake_timeout(srv, 30);
	witness_check("silent clients");
}

/* ---- transmission ---- */

static void test_bad_requests(void)
{
	int fd;

	test_begin("transmission: protocol errors answered", 20);
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	/* unknown flag, flag of another command */
	CHECK(send_req(fd, false, 1U << 10, NBD_CMD_READ, 2, 0, 4096, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 2), NBD_EINVAL);
	CHECK(send_req(fd, false, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_READ, 3, 0,
		       4096, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 3), NBD_EINVAL);
	/* PAYLOAD_LEN exists only with extended headers */
	CHECK(send_req(fd, false, NBD_CMD_FLAG_PAYLOAD_LEN, NBD_CMD_FLUSH, 4,
		       0, 0, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 4), NBD_EINVAL);
	/* out of range: read EINVAL, write ENOSPC (its payload consumed) */
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 5, 64 * MiB, 4096, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 5), NBD_EINVAL);
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 6, UINT64_MAX - 511, 4096,
		       NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 6), NBD_EINVAL);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 7, 64 * MiB - 4096, 8192,
		       buf, 8192));
	CHECK_EQ_INT(simple_reply(fd, 7), NBD_ENOSPC);
	/* misaligned to 4096 */
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 8, 512, 4096, buf, 4096));
	CHECK_EQ_INT(simple_reply(fd, 8), NBD_EINVAL);
	CHECK(send_req(fd, false, 0, NBD_CMD_TRIM, 9, 0, 1000, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 9), NBD_EINVAL);
	/* read-only export "ro" is another connection; here a good write */
	test_fill(buf, 4096, 9, 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 10, 0, 4096, buf, 4096));
	CHECK_EQ_INT(simple_reply(fd, 10), 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 11, 0, 4096, NULL, 0));
	if (CHECK_EQ_INT(simple_reply(fd, 11), 0) &&
	    CHECK(get(fd, buf2, 4096)))
		CHECK(test_verify(buf2, 4096, 9, 0) == -1);
	/* block status without a negotiated context */
	CHECK(send_req(fd, false, 0, NBD_CMD_BLOCK_STATUS, 12, 0, 4096, NULL,
		       0));
	CHECK_EQ_INT(simple_reply(fd, 12), NBD_EINVAL);
	/* DISC: the server closes */
	CHECK(send_req(fd, false, 0, NBD_CMD_DISC, 13, 0, 0, NULL, 0));
	CHECK(closed_by_server(fd));
	close(fd);

	fd = raw_transmission("ro");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 1, 0, 4096, buf, 4096));
	CHECK_EQ_INT(simple_reply(fd, 1), NBD_EPERM);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE_ZEROES, 2, 0, 4096, NULL,
		       0));
	CHECK_EQ_INT(simple_reply(fd, 2), NBD_EPERM);
	close(fd);
	witness_check("answered errors");
}

static void test_violations(void)
{
	uint8_t junk[28];
	int fd;

	test_begin("transmission: violations close cleanly", 30);
	/* bad request magic */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	memset(junk, 0xa5, sizeof(junk));
	CHECK(put(fd, junk, sizeof(junk)));
	CHECK_MSG(closed_by_server(fd), "bad request magic kept");
	close(fd);
	/* an extended header on a connection that did not negotiate it */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, true, 0, NBD_CMD_READ, 1, 0, 4096, NULL, 0));
	CHECK(closed_by_server(fd));
	close(fd);
	/* an absurd write length */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 1, 0, 0xfffffe00U, NULL,
		       0));
	/* the server may close before this arrives */
	put(fd, buf, 4096);
	CHECK_MSG(closed_by_server(fd), "4 GiB write kept");
	close(fd);
	/*
	 * an unknown command, behind a good read on a slow device: the read
	 * is still answered (a clean close), then the connection goes
	 */
	fd = raw_transmission("slow");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 1, 0, 4096, NULL, 0));
	CHECK(send_req(fd, false, 0, 42, 2, 0, 4096, NULL, 0));
	if (CHECK_EQ_INT(simple_reply(fd, 1), 0))
		CHECK(get(fd, buf2, 4096));
	CHECK_MSG(closed_by_server(fd), "unknown command kept");
	close(fd);
	/* a command number far past the known ones */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, 0xffff, 1, 0, 0, NULL, 0));
	CHECK_MSG(closed_by_server(fd), "command 0xffff kept");
	close(fd);
	witness_check("violations");

	/* a truncated header, then gone */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 1, 0, 4096, NULL, 0));
	put_be32(junk, NBD_REQUEST_MAGIC);
	CHECK(put(fd, junk, 10));
	close(fd);
	/* gone in the middle of a 1 MiB payload */
	fd = raw_transmission("mem");
	REQUIRE(fd >= 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 1, 0, MiB, buf,
		       100 * 1024));
	close(fd);
	/* gone with many replies pending (slow device), never reading */
	fd = raw_transmission("slow");
	REQUIRE(fd >= 0);
	for (unsigned int i = 0; i < 200; i++)
		send_req(fd, false, 0, NBD_CMD_READ, i, (uint64_t)i * 8192,
			 8192, NULL, 0);
	close(fd);
	witness_check("abrupt disconnects");
}

/* ---- structured replies: which replies are chunks ---- */

/* A structured chunk header for @cookie of @type; its length, or -1. */
static long chunk_hdr(int fd, uint64_t cookie, uint16_t type)
{
	uint8_t h[20];

	if (!CHECK_MSG(get(fd, h, 20), "no chunk"))
		return -1;
	if (!CHECK_EQ_U64(get_be32(h), NBD_STRUCTURED_REPLY_MAGIC) ||
	    !CHECK_EQ_INT(get_be16(h + 6), type))
		return -1;
	CHECK(get_be16(h + 4) & NBD_REPLY_FLAG_DONE);
	CHECK_EQ_U64(get_be64(h + 8), cookie);
	return get_be32(h + 16);
}

/*
 * Successes without data are simple replies (one recv for libnbd),
 * errors and reads are chunks: what the protocol allows, as nbdkit.
 */
static void test_structured(void)
{
	long len;
	int fd;

	test_begin("structured replies: data-less successes are simple", 20);
	fd = raw_connect();
	REQUIRE(fd >= 0);
	if (!CHECK(greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE |
			 NBD_FLAG_C_NO_ZEROES)) ||
	    !opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NBD_REP_ACK) ||
	    !CHECK(opt_go(fd, "mem"))) {
		close(fd);
		return;
	}
	test_fill(buf, 4096, 21, 8192);
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 1, 8192, 4096, buf, 4096));
	CHECK_EQ_INT(simple_reply(fd, 1), 0);
	CHECK(send_req(fd, false, 0, NBD_CMD_FLUSH, 2, 0, 0, NULL, 0));
	CHECK_EQ_INT(simple_reply(fd, 2), 0);
	/* an error: a chunk with the error and a message */
	CHECK(send_req(fd, false, 0, NBD_CMD_WRITE, 3, 64 * MiB, 4096, buf,
		       4096));
	len = chunk_hdr(fd, 3, NBD_REPLY_TYPE_ERROR);
	if (CHECK(len >= 6 && len < 4096) && CHECK(get(fd, buf2, len)))
		CHECK_EQ_INT(get_be32(buf2), NBD_ENOSPC);
	/* a read: one OFFSET_DATA chunk */
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 4, 8192, 4096, NULL, 0));
	len = chunk_hdr(fd, 4, NBD_REPLY_TYPE_OFFSET_DATA);
	if (CHECK_EQ_INT(len, 8 + 4096) && CHECK(get(fd, buf2, 8 + 4096))) {
		CHECK_EQ_U64(get_be64(buf2), 8192);
		CHECK(test_verify(buf2 + 8, 4096, 21, 8192) == -1);
	}
	close(fd);
	witness_check("structured replies");
}

/* ---- extended headers, with a client of our own ---- */

struct ext_reply {
	uint16_t flags, type;
	uint64_t cookie, offset, len;
};

static bool ext_get_reply(int fd, struct ext_reply *r)
{
	uint8_t h[32];

	if (!CHECK_MSG(get(fd, h, 32), "no extended reply"))
		return false;
	if (!CHECK_EQ_U64(get_be32(h), NBD_EXTENDED_REPLY_MAGIC))
		return false;
	r->flags = get_be16(h + 4);
	r->type = get_be16(h + 6);
	r->cookie = get_be64(h + 8);
	r->offset = get_be64(h + 16);
	r->len = get_be64(h + 24);
	return true;
}

/* A data-less command's reply: 0, or the error of an ERROR chunk. */
static long ext_status(int fd, uint64_t cookie)
{
	struct ext_reply r;

	if (!ext_get_reply(fd, &r))
		return -1;
	CHECK_EQ_U64(r.cookie, cookie);
	CHECK(r.flags & NBD_REPLY_FLAG_DONE);
	if (r.type == NBD_REPLY_TYPE_NONE)
		return CHECK_EQ_U64(r.len, 0) ? 0 : -1;
	if (!CHECK_EQ_INT(r.type, NBD_REPLY_TYPE_ERROR) ||
	    !CHECK(r.len >= 6 && r.len < sizeof(buf2)) ||
	    !get(fd, buf2, r.len))
		return -1;
	return get_be32(buf2);
}

static int ext_connect(void)
{
	uint8_t d[64];
	struct opt_reply r;
	int fd = raw_connect();
	uint32_t n = sizeof(NBD_META_BASE_ALLOCATION) - 1;

	if (fd < 0)
		return -1;
	if (!greet(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES) ||
	    !opt_expect(fd, NBD_OPT_EXTENDED_HEADERS, NULL, 0, NBD_REP_ACK))
		goto fail;
	opt_expect(fd, NBD_OPT_EXTENDED_HEADERS, NULL, 0, NBD_REP_ERR_INVALID);
	opt_expect(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NBD_REP_ERR_INVALID);
	put_be32(d, 3);
	memcpy(d + 4, "big", 3);
	put_be32(d + 7, 1);
	put_be32(d + 11, n);
	memcpy(d + 15, NBD_META_BASE_ALLOCATION, n);
	if (!CHECK(send_opt(fd, NBD_OPT_SET_META_CONTEXT, d, 15 + n)) ||
	    !CHECK(get_opt_reply(fd, &r)) ||
	    !CHECK_EQ_INT(r.type, NBD_REP_META_CONTEXT) ||
	    !CHECK(get_opt_reply(fd, &r)) || !CHECK_EQ_INT(r.type, NBD_REP_ACK))
		goto fail;
	if (!CHECK_EQ_U64(opt_go(fd, "big"), 8 * GiB))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static void test_extended(void)
{
	struct ext_reply r;
	int fd;

	test_begin("extended headers", 30);
	fd = ext_connect();
	REQUIRE(fd >= 0);
	/* write and read back; the read reply is one OFFSET_DATA chunk */
	test_fill(buf, 8192, 11, 4 * GiB + 8192);
	CHECK(send_req(fd, true, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1,
		       4 * GiB + 8192, 8192, buf, 8192));
	CHECK_EQ_INT(ext_status(fd, 1), 0);
	CHECK(send_req(fd, true, 0, NBD_CMD_READ, 2, 4 * GiB + 8192, 8192,
		       NULL, 0));
	if (ext_get_reply(fd, &r)) {
		CHECK(r.cookie == 2 && r.type == NBD_REPLY_TYPE_OFFSET_DATA);
		CHECK(r.flags & NBD_REPLY_FLAG_DONE);
		CHECK_EQ_U64(r.len, 8 + 8192);
		if (CHECK(get(fd, buf2, 8 + 8192))) {
			CHECK_EQ_U64(get_be64(buf2), 4 * GiB + 8192);
			CHECK(test_verify(buf2 + 8, 8192, 11,
					  4 * GiB + 8192) == -1);
		}
	}
	/* 64-bit lengths: zero and trim 5 GiB in one command each */
	CHECK(send_req(fd, true, 0, NBD_CMD_WRITE_ZEROES, 3, 0, 5 * GiB, NULL,
		       0));
	CHECK_EQ_INT(ext_status(fd, 3), 0);
	test_fill(buf, 8192, 12, 6 * GiB);
	CHECK(send_req(fd, true, 0, NBD_CMD_WRITE, 4, 6 * GiB, 8192, buf,
		       8192));
	CHECK_EQ_INT(ext_status(fd, 4), 0);
	CHECK(send_req(fd, true, 0, NBD_CMD_TRIM, 5, 0, 5 * GiB, NULL, 0));
	CHECK_EQ_INT(ext_status(fd, 5), 0);
	/* block status over 6 GiB + 8 KiB: one hole of 6 GiB, 64-bit */
	CHECK(send_req(fd, true, 0, NBD_CMD_BLOCK_STATUS, 6, 0,
		       6 * GiB + 8192, NULL, 0));
	if (ext_get_reply(fd, &r)) {
		CHECK(r.cookie == 6 && r.type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT);
		if (CHECK_EQ_U64(r.len, 8 + 2 * 16) && CHECK(get(fd, buf2, r.len))) {
			CHECK_EQ_U64(get_be32(buf2), NBD_META_ALLOC_ID);
			CHECK_EQ_U64(get_be32(buf2 + 4), 2);
			CHECK_EQ_U64(get_be64(buf2 + 8), 6 * GiB);
			CHECK_EQ_U64(get_be64(buf2 + 16),
				     NBD_STATE_HOLE | NBD_STATE_ZERO);
			CHECK_EQ_U64(get_be64(buf2 + 24), 8192);
			CHECK_EQ_U64(get_be64(buf2 + 32), 0);
		}
	}
	/* errors come as ERROR chunks; the connection lives */
	CHECK(send_req(fd, true, 0, NBD_CMD_READ, 7, 8 * GiB, 4096, NULL, 0));
	CHECK_EQ_INT(ext_status(fd, 7), NBD_EINVAL);
	CHECK(send_req(fd, true, 0, NBD_CMD_WRITE, 8, 8 * GiB, 4096, buf,
		       4096));
	CHECK_EQ_INT(ext_status(fd, 8), NBD_ENOSPC);
	/* a payload on a command that takes none, announced: skipped */
	CHECK(send_req(fd, true, NBD_CMD_FLAG_PAYLOAD_LEN,
		       NBD_CMD_BLOCK_STATUS, 9, 0, 16, buf, 16));
	CHECK_EQ_INT(ext_status(fd, 9), NBD_EINVAL);
	CHECK(send_req(fd, true, 0, NBD_CMD_FLUSH, 10, 0, 0, NULL, 0));
	CHECK_EQ_INT(ext_status(fd, 10), 0);
	/* a compact header on an extended connection: violation */
	CHECK(send_req(fd, false, 0, NBD_CMD_READ, 11, 0, 4096, NULL, 0));
	CHECK(closed_by_server(fd));
	close(fd);
	witness_check("extended headers");
}

/* ---- main ---- */

static int count_conns(const struct nbd_conn_info *info, void *arg)
{
	(*(unsigned int *)arg)++;
	return 0;
}

static unsigned int nr_conns(void)
{
	unsigned int n = 0;

	nbd_conn_for_each(srv, count_conns, &n);
	return n;
}

int main(void)
{
	struct gendisk *mem, *slow, *big;
	char listen[160];
	uint64_t end;

	test_init(0);
	snprintf(sockdir, sizeof(sockdir), "/tmp/nbdmal-XXXXXX");
	if (!mkdtemp(sockdir))
		test_skip("mkdtemp: %s", strerror(errno));
	snprintf(sockpath, sizeof(sockpath), "%s/nbd.sock", sockdir);
	snprintf(listen, sizeof(listen), "unix:%s", sockpath);
	if (!CHECK_MSG(nbd_server_start(listen, &srv) == 0, "%s",
		       blkstack_errmsg()))
		return test_report();
	mem = test_null_add("mal-mem", "size=64,bs=4096,memory_backed=1");
	slow = test_null_add("mal-slow", "size=64,bs=4096,memory_backed=1,"
			     "irqmode=2,completion_nsec=20000000");
	big = test_null_add("mal-big", "size=8G,bs=4096,memory_backed=1");
	if (!mem || !slow || !big)
		return test_report();
	CHECK(nbd_export_add(srv, "mem", mem, false) == 0);
	CHECK(nbd_export_add(srv, "ro", mem, true) == 0);
	witness = nbd_create();
	if (!CHECK_MSG(witness, "nbd_create: %s", nbd_get_error()))
		return test_report();
	nbd_set_export_name(witness, "mem");
	if (!CHECK_MSG(nbd_connect_unix(witness, sockpath) == 0, "witness: %s",
		       nbd_get_error()))
		return test_report();

	test_bad_greeting();
	test_options();
	test_handshake_timeout();
	CHECK(nbd_export_add(srv, "slow", slow, false) == 0);
	CHECK(nbd_export_add(srv, "big", big, false) == 0);
	test_bad_requests();
	test_violations();
	test_structured();
	test_extended();

	/* every misbehaving connection is gone; the witness remains */
	end = test_now_ns() + 10000000000ULL;
	while (nr_conns() != 1 && test_now_ns() < end)
		test_sleep_ms(5);
	CHECK_EQ_INT(nr_conns(), 1);
	witness_check("everything");
	nbd_close(witness);
	nbd_server_stop(srv);
	rmdir(sockdir);
	test_dev_del(mem);
	test_dev_del(slow);
	test_dev_del(big);
	return test_report();
}
