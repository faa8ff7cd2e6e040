// SPDX-License-Identifier: MIT
/*
 * The NBD server (export/nbd-server.c) driven by the real libnbd client
 * over a unix socket in a private directory: handshake, export list and
 * info, read/write/flush/trim/zero with FUA, NO_HOLE and FAST_ZERO,
 * structured and simple replies, base:allocation block status after
 * writes and trims, read-only exports, out-of-range and misaligned
 * requests, many connections at once, multi-conn flush, hundreds of
 * pipelined requests answered out of order, replies held for a deep
 * queue and never for a lone request, the connection's io context
 * on each bio, export removal and server stop with I/O in flight.
 */
#include <errno.h>
#include <libnbd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blkstack/nbd-server.h>

#include "lib/compiler.h"
#include "testlib.h"

#define MiB	(1024 * 1024)

static char sockdir[64], sockpath[128];
static struct nbd_server *srv;
static struct gendisk *mem_disk;
static char wbuf[4 * MiB], rbuf[4 * MiB];

/* ---- clients ---- */

struct copts {
	bool simple;		/* no structured replies */
	bool meta;		/* ask for base:allocation */
	bool strict;		/* keep libnbd's own checks */
};

static struct nbd_handle *client_at(const char *path, const char *export,
				    const struct copts *o)
{
	struct nbd_handle *h = nbd_create();

	if (!CHECK_MSG(h, "nbd_create: %s", nbd_get_error()))
		return NULL;
	nbd_set_export_name(h, export);
	if (o && o->simple)
		nbd_set_request_structured_replies(h, false);
	if (o && o->meta)
		nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
	/* let bad requests reach the server: it is what we test */
	if (!o || !o->strict)
		nbd_set_strict_mode(h, 0);
	if (!CHECK_MSG(nbd_connect_unix(h, path) == 0, "connect to %s: %s",
		       export, nbd_get_error())) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

static struct nbd_handle *client(const char *export, const struct copts *o)
{
	return client_at(sockpath, export, o);
}

/* The errno of a failed call, or 0 if it worked. */
#define NBD_ERR(call) ((call) == -1 ? (nbd_get_errno() ?: -1) : 0)

static int count_export(const struct nbd_export_info *info, void *arg)
{
	unsigned int *n = arg;

	(*n)++;
	return 0;
}

static unsigned int nr_exports(void)
{
	unsigned int n = 0;

	nbd_export_for_each(srv, count_export, &n);
	return n;
}

struct find_export {
	const char *name;
	unsigned int nr_conns;
	bool found;
};

static int find_export_cb(const struct nbd_export_info *info, void *arg)
{
	struct find_export *f = arg;

	if (strcmp(info->name, f->name))
		return 0;
	f->found = true;
	f->nr_conns = info->nr_conns;
	return 1;
}

static struct find_export export_state(const char *name)
{
	struct find_export f = { .name = name };

	nbd_export_for_each(srv, find_export_cb, &f);
	return f;
}

static bool wait_in_flight(struct gendisk *disk, uint64_t n, unsigned int ms)
{
	uint64_t end = test_now_ns() + (uint64_t)ms * 1000000;
	struct blk_disk_stats st;

	do {
		blk_disk_get_stats(disk, &st);
		if (st.in_flight >= n)
			return true;
		test_sleep_ms(1);
	} while (test_now_ns() < end);
	return false;
}

/* ---- handshake, list, info ---- */

static int list_cb(void *arg, const char *name, const char *desc)
{
	char *names = arg;

	strcat(names, name);
	strcat(names, " ");
	return 0;
}

static void test_handshake(void)
{
	char names[256] = "";
	struct nbd_handle *h;

	test_begin("handshake, list, info", 20);
	h = nbd_create();
	REQUIRE(h);
	nbd_set_opt_mode(h, true);
	nbd_set_export_name(h, "mem");
	if (CHECK_MSG(nbd_connect_unix(h, sockpath) == 0, "connect: %s",
		      nbd_get_error())) {
		CHECK(nbd_opt_list(h, (nbd_list_callback){ .callback = list_cb,
				   .user_data = names }) == 3);
		CHECK_MSG(!strcmp(names, "mem ro nozero "), "list: %s", names);
		CHECK(nbd_opt_info(h) == 0);
		CHECK_EQ_U64(nbd_get_size(h), 64 * MiB);
		nbd_set_export_name(h, "nosuch");
		CHECK_MSG(nbd_opt_info(h) == -1, "info of an unknown export");
		nbd_set_export_name(h, "ro");
		CHECK(nbd_opt_info(h) == 0 && nbd_is_read_only(h) == 1);
		nbd_set_export_name(h, "mem");
		CHECK_MSG(nbd_opt_go(h) == 0, "go: %s", nbd_get_error());
		CHECK(nbd_get_structured_replies_negotiated(h) == 1);
		CHECK_EQ_INT(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 4096);
		CHECK_EQ_INT(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), 4096);
		CHECK_EQ_INT(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM),
			     32 * MiB);
		CHECK(nbd_can_flush(h) == 1 && nbd_can_fua(h) == 1);
		CHECK(nbd_can_trim(h) == 1 && nbd_can_zero(h) == 1);
		CHECK(nbd_can_fast_zero(h) == 1 && nbd_can_cache(h) == 1);
		CHECK(nbd_can_multi_conn(h) == 1 && nbd_can_df(h) == 1);
		CHECK(nbd_is_read_only(h) == 0);
		CHECK(nbd_shutdown(h, 0) == 0);
	}
	nbd_close(h);

	/* "" is the default export: the first one */
	h = client("", NULL);
	if (h) {
		CHECK_EQ_U64(nbd_get_size(h), 64 * MiB);
		nbd_close(h);
	}
	/* an unknown name fails the connection, the server goes on */
	h = nbd_create();
	REQUIRE(h);
	nbd_set_export_name(h, "nosuch");
	CHECK(nbd_connect_unix(h, sockpath) == -1);
	nbd_close(h);
	CHECK_EQ_INT(nr_exports(), 3);
}

/* ---- data commands ---- */

static void test_data(void)
{
	const struct copts o = { .meta = true };
	struct nbd_handle *h = client("mem", &o);

	test_begin("read, write, flush, trim, zero, cache", 20);
	REQUIRE(h);
	test_fill(wbuf, MiB, 1, 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, MiB, 0, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, MiB, 0, 0)), 0);
	CHECK(test_verify(rbuf, MiB, 1, 0) == -1);
	/* what the client wrote is on the device */
	CHECK(blkdev_pread(mem_disk, rbuf, MiB, 0) == MiB);
	CHECK(test_verify(rbuf, MiB, 1, 0) == -1);

	test_fill(wbuf, 64 * 1024, 2, MiB);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 64 * 1024, MiB,
					LIBNBD_CMD_FLAG_FUA)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_flush(h, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 64 * 1024, MiB,
				       LIBNBD_CMD_FLAG_DF)), 0);
	CHECK(test_verify(rbuf, 64 * 1024, 2, MiB) == -1);

	/* trim reads back as zeroes */
	CHECK_EQ_INT(NBD_ERR(nbd_trim(h, 256 * 1024, 0, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, MiB, 0, 0)), 0);
	CHECK(test_is_zero(rbuf, 256 * 1024));
	CHECK(test_verify(rbuf + 256 * 1024, 768 * 1024, 1, 256 * 1024) == -1);

	/* zero, fast zero, no hole, FUA */
	CHECK_EQ_INT(NBD_ERR(nbd_zero(h, 128 * 1024, 512 * 1024,
				      LIBNBD_CMD_FLAG_NO_HOLE |
				      LIBNBD_CMD_FLAG_FAST_ZERO)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_zero(h, 64 * 1024, 768 * 1024,
				      LIBNBD_CMD_FLAG_FUA)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_trim(h, 4096, 1020 * 1024,
				      LIBNBD_CMD_FLAG_FUA)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, MiB, 0, 0)), 0);
	CHECK(test_verify(rbuf + 256 * 1024, 256 * 1024, 1, 256 * 1024) == -1);
	CHECK(test_is_zero(rbuf + 512 * 1024, 128 * 1024));
	CHECK(test_verify(rbuf + 640 * 1024, 128 * 1024, 1, 640 * 1024) == -1);
	CHECK(test_is_zero(rbuf + 768 * 1024, 64 * 1024));
	CHECK(test_is_zero(rbuf + 1020 * 1024, 4096));
	CHECK_EQ_INT(NBD_ERR(nbd_cache(h, 8 * MiB, 0, 0)), 0);
	/* zero-length requests are harmless */
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 0, 0, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 0, 4096, 0)), 0);
	nbd_close(h);
}

/* ---- block status ---- */

struct extents {
	uint32_t e[64];
	size_t n;
};

static int extent_cb(void *arg, const char *ctx, uint64_t off,
		     uint32_t *entries, size_t nr, int *error)
{
	struct extents *x = arg;

	if (strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION))
		return 0;
	x->n = min(nr, ARRAY_SIZE(x->e));
	memcpy(x->e, entries, x->n * sizeof(*entries));
	return 0;
}

static bool status_of(struct nbd_handle *h, uint64_t off, uint64_t len,
		      struct extents *x, uint32_t flags)
{
	memset(x, 0, sizeof(*x));
	return CHECK_MSG(nbd_block_status(h, len, off,
					  (nbd_extent_callback){
						  .callback = extent_cb,
						  .user_data = x },
					  flags) == 0,
			 "block status: %s", nbd_get_error());
}

static void test_block_status(void)
{
	const struct copts o = { .meta = true };
	struct nbd_handle *h = client("mem", &o), *h2;
	struct extents x;

	test_begin("block status", 20);
	REQUIRE(h);
	CHECK(nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1);
	test_fill(wbuf, 3 * MiB, 3, 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 3 * MiB, 8 * MiB, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_trim(h, MiB, 9 * MiB, 0)), 0);
	/* hole 7-8, data 8-9, hole 9-10, data 10-11, hole after */
	if (status_of(h, 7 * MiB, 5 * MiB, &x, 0)) {
		uint32_t want[] = { MiB, 3, MiB, 0, MiB, 3, MiB, 0, MiB, 3 };

		CHECK_EQ_U64(x.n, ARRAY_SIZE(want));
		CHECK(!memcmp(x.e, want, sizeof(want)));
	}
	if (status_of(h, 8 * MiB, 3 * MiB, &x, LIBNBD_CMD_FLAG_REQ_ONE)) {
		CHECK_EQ_U64(x.n, 2);
		CHECK(x.e[0] == MiB && x.e[1] == 0);
	}
	/* zeroing with NO_HOLE keeps the pages: still data */
	CHECK_EQ_INT(NBD_ERR(nbd_zero(h, MiB, 8 * MiB,
				      LIBNBD_CMD_FLAG_NO_HOLE)), 0);
	if (status_of(h, 8 * MiB, MiB, &x, 0))
		CHECK(x.n == 2 && x.e[0] == MiB && x.e[1] == 0);
	/* past the end, or length 0: EINVAL */
	CHECK_EQ_INT(NBD_ERR(nbd_block_status(h, MiB, 64 * MiB,
		     (nbd_extent_callback){ .callback = extent_cb,
					    .user_data = &x }, 0)), EINVAL);
	nbd_close(h);

	/* without the context negotiated the command is refused */
	h2 = client("mem", NULL);
	REQUIRE(h2);
	CHECK_EQ_INT(NBD_ERR(nbd_block_status(h2, MiB, 0,
		     (nbd_extent_callback){ .callback = extent_cb,
					    .user_data = &x }, 0)), EINVAL);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h2, rbuf, 4096, 0, 0)), 0);
	nbd_close(h2);
}

/* ---- errors ---- */

static void test_errors(bool simple)
{
	const struct copts o = { .simple = simple };
	struct nbd_handle *h = client("mem", &o), *ro, *nz;
	char *big;

	test_begin(simple ? "errors, simple replies" :
			    "errors, structured replies", 20);
	REQUIRE(h);
	CHECK_EQ_INT(nbd_get_structured_replies_negotiated(h), !simple);
	/* beyond the end: reads EINVAL, writes ENOSPC */
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 8192, 64 * MiB - 4096, 0)),
		     EINVAL);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 4096, 64 * MiB, 0)), ENOSPC);
	CHECK_EQ_INT(NBD_ERR(nbd_zero(h, 8192, 64 * MiB - 4096, 0)), ENOSPC);
	CHECK_EQ_INT(NBD_ERR(nbd_trim(h, 8192, 64 * MiB, 0)), EINVAL);
	/* misaligned to the 4096-byte minimum block size */
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 4096, 512, 0)), EINVAL);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 1000, 0, 0)), EINVAL);
	/* larger than the maximum payload: EINVAL, EOVERFLOW with DF */
	big = malloc(33 * MiB);
	if (CHECK(big)) {
		CHECK_EQ_INT(NBD_ERR(nbd_pread(h, big, 33 * MiB, 0, 0)),
			     EINVAL);
		if (!simple)
			CHECK_EQ_INT(NBD_ERR(nbd_pread(h, big, 33 * MiB, 0,
						       LIBNBD_CMD_FLAG_DF)),
				     EOVERFLOW);
		free(big);
	}
	/* the connection lives on */
	test_fill(wbuf, 8192, 4, 16 * MiB);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 8192, 16 * MiB, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 8192, 16 * MiB, 0)), 0);
	CHECK(test_verify(rbuf, 8192, 4, 16 * MiB) == -1);
	nbd_close(h);

	/* read-only: writes, trims and zeroes get EPERM, reads work */
	ro = client("ro", &o);
	REQUIRE(ro);
	CHECK(nbd_is_read_only(ro) == 1);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(ro, wbuf, 4096, 0, 0)), EPERM);
	CHECK_EQ_INT(NBD_ERR(nbd_trim(ro, 4096, 0, 0)), EPERM);
	CHECK_EQ_INT(NBD_ERR(nbd_zero(ro, 4096, 0, 0)), EPERM);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(ro, rbuf, 4096, 16 * MiB, 0)), 0);
	CHECK(test_verify(rbuf, 4096, 4, 16 * MiB) == -1);
	nbd_close(ro);

	/* no native zeroing: FAST_ZERO is ENOTSUP, plain zero emulated */
	nz = client("nozero", &o);
	REQUIRE(nz);
	CHECK(nbd_can_fast_zero(nz) == 0 && nbd_can_trim(nz) == 0);
	CHECK_EQ_INT(NBD_ERR(nbd_zero(nz, 4096, 0, LIBNBD_CMD_FLAG_FAST_ZERO)),
		     ENOTSUP);
	CHECK_EQ_INT(NBD_ERR(nbd_zero(nz, 3 * MiB, 0, 0)), 0);
	CHECK_EQ_INT(NBD_ERR(nbd_trim(nz, 4096, 0, 0)), EINVAL);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(nz, rbuf, 4096, 0, 0)), 0);
	nbd_close(nz);
}

/* ---- many connections, multi-conn ---- */

static bool wait_conns(const char *export, unsigned int n, unsigned int ms)
{
	uint64_t end = test_now_ns() + (uint64_t)ms * 1000000;

	while (export_state(export).nr_conns != n) {
		if (test_now_ns() > end)
			return false;
		test_sleep_ms(2);
	}
	return true;
}

static void test_many_conns(void)
{
	unsigned int n = test_scale(64), i;
	struct nbd_handle **h = calloc(n, sizeof(*h));

	test_begin("many connections at once", 60);
	REQUIRE(h);
	for (i = 0; i < n; i++)
		if (!(h[i] = client("mem", NULL)))
			break;
	CHECK_EQ_U64(export_state("mem").nr_conns, i);
	for (unsigned int j = 0; j < i; j++) {
		test_fill(wbuf, 4096, 100 + j, 32 * MiB + j * 4096);
		CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h[j], wbuf, 4096,
						32 * MiB + j * 4096, 0)), 0);
	}
	/* each connection sees what the others wrote */
	for (unsigned int j = 0; j < i; j++) {
		unsigned int k = (j + 1) % i;

		CHECK_EQ_INT(NBD_ERR(nbd_pread(h[j], rbuf, 4096,
					       32 * MiB + k * 4096, 0)), 0);
		CHECK_MSG(test_verify(rbuf, 4096, 100 + k,
				      32 * MiB + k * 4096) == -1,
			  "connection %u reading %u's block", j, k);
	}
	for (unsigned int j = 0; j < i; j++)
		nbd_close(h[j]);
	CHECK_MSG(wait_conns("mem", 0, 10000), "connections left: %u",
		  export_state("mem").nr_conns);
	free(h);
}

static void test_multi_conn_flush(struct gendisk *cache_disk)
{
	struct nbd_handle *w = client("cache", NULL), *f = client("cache", NULL);
	struct nbd_handle *r = client("cache", NULL);
	struct blk_disk_stats before, after;

	test_begin("multi-conn flush", 20);
	if (!w || !f || !r)
		goto out;
	CHECK(nbd_can_multi_conn(w) == 1 && nbd_can_flush(w) == 1);
	test_fill(wbuf, 256 * 1024, 5, 0);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(w, wbuf, 256 * 1024, 0, 0)), 0);
	blk_disk_get_stats(cache_disk, &before);
	/* a flush on another connection covers the first one's write */
	CHECK_EQ_INT(NBD_ERR(nbd_flush(f, 0)), 0);
	blk_disk_get_stats(cache_disk, &after);
	CHECK_MSG(after.ios[STAT_FLUSH] > before.ios[STAT_FLUSH],
		  "flush did not reach the device: %llu -> %llu",
		  (unsigned long long)before.ios[STAT_FLUSH],
		  (unsigned long long)after.ios[STAT_FLUSH]);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(r, rbuf, 256 * 1024, 0, 0)), 0);
	CHECK(test_verify(rbuf, 256 * 1024, 5, 0) == -1);
out:
	nbd_close(w);
	nbd_close(f);
	nbd_close(r);
}

/* ---- pipelining: replies as completions arrive ---- */

#define PIPE_NR	400

struct pio {
	_Atomic unsigned int *seq;
	unsigned int done_seq;
	int err;
	bool finished;
};

static int pio_done(void *arg, int *error)
{
	struct pio *p = arg;

	p->err = *error;
	p->done_seq = atomic_fetch_add(p->seq, 1) + 1;
	p->finished = true;
	return 1;
}

static bool poll_until_idle(struct nbd_handle *h, unsigned int ms)
{
	uint64_t end = test_now_ns() + (uint64_t)ms * 1000000;

	while (nbd_aio_in_flight(h) > 0) {
		if (test_now_ns() > end || nbd_poll(h, 100) == -1)
			return false;
	}
	return true;
}

static void test_pipeline(struct gendisk *slow)
{
	static struct pio p[PIPE_NR];
	_Atomic unsigned int seq = 0;
	struct nbd_handle *h;
	bool reordered = false;
	unsigned int max_seq = 0;

	test_begin("pipelined requests, out-of-order replies", 60);
	test_fill(wbuf, 2 * MiB, 6, 0);
	REQUIRE(blkdev_pwrite(slow, wbuf, 2 * MiB, 0) == 2 * MiB);
	h = client("slow", NULL);
	REQUIRE(h);
	for (unsigned int i = 0; i < PIPE_NR; i++) {
		nbd_completion_callback cb = { .callback = pio_done,
					       .user_data = &p[i] };
		uint64_t off = (uint64_t)(i * 4096) % (2 * MiB);

		p[i] = (struct pio){ .seq = &seq };
		/* every fifth is refused at once, overtaking slow reads */
		if (i % 5 == 4)
			off = 64 * MiB;
		CHECK(nbd_aio_pread(h, rbuf + i * 4096, 4096, off, cb, 0) > 0);
	}
	CHECK_MSG(poll_until_idle(h, 30000), "pipelined requests stuck: %d",
		  nbd_aio_in_flight(h));
	for (unsigned int i = 0; i < PIPE_NR; i++) {
		uint64_t off = (uint64_t)(i * 4096) % (2 * MiB);

		if (!CHECK_MSG(p[i].finished, "request %u never completed", i))
			break;
		if (i % 5 == 4) {
			CHECK_EQ_INT(p[i].err, EINVAL);
		} else {
			CHECK_EQ_INT(p[i].err, 0);
			CHECK(test_verify(rbuf + i * 4096, 4096, 6, off) == -1);
		}
		if (p[i].done_seq < max_seq)
			reordered = true;
		max_seq = max(max_seq, p[i].done_seq);
	}
	CHECK_MSG(reordered, "every reply came in request order");
	nbd_close(h);
}

/*
 * Replies held while the reader polls (nbd-conn.c): a deep queue gets
 * every reply, right, also when the client stops sending; one request
 * at a time (nothing else unread, nothing else to come) is answered at
 * once, never left waiting for company.
 */
#define HOLD_NR		1024	/* 4 KiB requests: 4 MiB, wbuf's size */
#define HOLD_DEPTH	32

/* @write ? write : read blocks 0..HOLD_NR-1 keeping HOLD_DEPTH in flight */
static bool hold_pass(struct nbd_handle *h, bool write, struct pio *p,
		      _Atomic unsigned int *seq)
{
	uint64_t end = test_now_ns() + 30ULL * 1000000000;
	unsigned int next = 0;

	while (next < HOLD_NR || nbd_aio_in_flight(h) > 0) {
		while (next < HOLD_NR && nbd_aio_in_flight(h) < HOLD_DEPTH) {
			nbd_completion_callback cb = { .callback = pio_done,
						       .user_data = &p[next] };
			uint64_t off = (uint64_t)next * 4096;

			p[next] = (struct pio){ .seq = seq };
			if (!CHECK((write ?
				    nbd_aio_pwrite(h, wbuf + off, 4096, off,
						   cb, 0) :
				    nbd_aio_pread(h, rbuf + off, 4096, off,
						  cb, 0)) > 0))
				return false;
			next++;
		}
		if (!CHECK_MSG(test_now_ns() < end && nbd_poll(h, 1000) != -1,
			       "%s stuck: %d in flight",
			       write ? "writes" : "reads",
			       nbd_aio_in_flight(h)))
			return false;
	}
	for (unsigned int i = 0; i < HOLD_NR; i++) {
		if (!CHECK_MSG(p[i].finished && !p[i].err,
			       "request %u: finished %d, error %d", i,
			       p[i].finished, p[i].err))
			return false;
	}
	return true;
}

/*
 * Replies held while the reader polls (nbd-conn.c): a client keeping
 * its queue full, as fio does, gets every reply, right, also the last
 * ones after it stops sending; one request at a time (nothing else
 * unread, nothing else to come) is answered at once, never left waiting
 * for company.
 */
static void test_held_replies(void)
{
	static struct pio p[HOLD_NR];
	_Atomic unsigned int seq = 0;
	struct nbd_handle *h = client("mem", NULL);
	uint64_t t, worst = 0;
	unsigned int i;

	test_begin("held replies: full queue, lone requests", 60);
	REQUIRE(h);
	test_fill(wbuf, HOLD_NR * 4096, 7, 0);
	memset(rbuf, 0, HOLD_NR * 4096);
	if (hold_pass(h, true, p, &seq) && hold_pass(h, false, p, &seq))
		CHECK(test_verify(rbuf, HOLD_NR * 4096, 7, 0) == -1);

	/* one at a time: a held reply would stall each of these */
	for (i = 0; i < test_scale(2000); i++) {
		t = test_now_ns();
		if (!CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 4096,
						    (i % HOLD_NR) * 4096, 0)),
				  0))
			break;
		worst = max(worst, test_now_ns() - t);
	}
	CHECK(test_verify(rbuf, 4096, 7, ((i - 1) % HOLD_NR) * 4096) == -1);
	/* a hold is bounded by 100 us; this allows for a loaded machine */
	CHECK_MSG(worst < 1000000000ULL, "a lone read took %llu us",
		  (unsigned long long)(worst / 1000));
	nbd_close(h);
}

/* ---- the connection's io context ---- */

static struct {
	pthread_mutex_t lock;
	pid_t pid;
	uint16_t ioprio, weight;
	char comm[16];
	unsigned int bios;
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A bio-based device that records who issued each bio. */
static void rec_submit_bio(struct bio *bio)
{
	pthread_mutex_lock(&seen.lock);
	if (bio->bi_ioc) {
		seen.pid = bio->bi_ioc->pid;
		seen.ioprio = bio->bi_ioc->ioprio;
		seen.weight = bio->bi_ioc->weight;
		memcpy(seen.comm, bio->bi_ioc->comm, sizeof(seen.comm));
	}
	seen.bios++;
	pthread_mutex_unlock(&seen.lock);
	if (bio_has_data(bio) && bio_op(bio) == REQ_OP_READ)
		bio_copy_from_buf(bio, wbuf);
	bio_endio(bio);
}

static const struct block_device_operations rec_fops = {
	.submit_bio = rec_submit_bio,
};

static int find_conn(const struct nbd_conn_info *info, void *arg)
{
	struct nbd_conn_info *out = arg;

	if (!info->export_name || strcmp(info->export_name, "who"))
		return 0;
	*out = *info;
	return 1;
}

static void test_ioc(void)
{
	struct gendisk *disk = blk_alloc_disk(&rec_fops, NULL, NULL);
	struct nbd_conn_info ci = { 0 };
	struct nbd_handle *h = NULL;
	char comm[16];

	test_begin("io context per connection", 20);
	REQUIRE(disk);
	if (!CHECK_MSG(add_disk(disk, "nbd-who", 8192) == 0, "%s",
		       blkstack_errmsg())) {
		put_disk(disk);
		return;
	}
	CHECK(nbd_export_add(srv, "who", disk, false) == 0);
	CHECK_EQ_INT(nbd_export_set_ioprio(srv, "who", IOPRIO_CLASS_BE, 6, 0),
		     0);
	CHECK_EQ_INT(nbd_export_set_ioprio(srv, "who", 9, 0, 0), -EINVAL);
	CHECK_EQ_INT(nbd_export_set_ioprio(srv, "nosuch", 2, 0, 0), -ENOENT);
	h = client("who", NULL);
	if (!h)
		goto out;
	CHECK(nbd_conn_for_each(srv, find_conn, &ci) == 1);
	CHECK_EQ_INT(NBD_ERR(nbd_pwrite(h, wbuf, 4096, 0, 0)), 0);
	snprintf(comm, sizeof(comm), "nbd-conn-%u", ci.id);
	pthread_mutex_lock(&seen.lock);
	CHECK_EQ_INT(seen.pid, ci.id);
	CHECK_MSG(!strcmp(seen.comm, comm), "comm %s, want %s", seen.comm,
		  comm);
	CHECK_EQ_INT(seen.ioprio, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 6));
	pthread_mutex_unlock(&seen.lock);

	/* changed while connected: the next bios carry it */
	CHECK_EQ_INT(nbd_conn_set_ioprio(srv, ci.id, IOPRIO_CLASS_RT, 2, 300),
		     0);
	CHECK_EQ_INT(nbd_conn_set_ioprio(srv, ci.id, 1, 8, 0), -EINVAL);
	CHECK_EQ_INT(nbd_conn_set_ioprio(srv, ci.id, 1, 0, 1001), -EINVAL);
	CHECK_EQ_INT(nbd_conn_set_ioprio(srv, 999999, 1, 0, 0), -ENOENT);
	CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 4096, 4096, 0)), 0);
	pthread_mutex_lock(&seen.lock);
	CHECK_EQ_INT(seen.ioprio, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 2));
	CHECK_EQ_INT(seen.weight, 300);
	pthread_mutex_unlock(&seen.lock);
	nbd_close(h);
out:
	CHECK_EQ_INT(nbd_export_del_disk(srv, disk), 1);
	del_gendisk(disk);
	put_disk(disk);
}

/* ---- removal and stop with I/O in flight ---- */

static unsigned int start_reads(struct nbd_handle *h, struct pio *p,
				unsigned int n, _Atomic unsigned int *seq)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		nbd_completion_callback cb = { .callback = pio_done,
					       .user_data = &p[i] };

		p[i] = (struct pio){ .seq = seq };
		/* spaced out so that no two merge into one request */
		if (nbd_aio_pread(h, rbuf + i * 4096, 4096, i * 8192, cb,
				  0) <= 0)
			break;
	}
	return i;
}

static void check_reads(struct pio *p, unsigned int n, const char *what)
{
	for (unsigned int i = 0; i < n; i++) {
		CHECK_MSG(p[i].finished && !p[i].err, "%s: read %u: %s %d",
			  what, i, p[i].finished ? "error" : "unfinished",
			  p[i].err);
		CHECK(test_verify(rbuf + i * 4096, 4096, 7, i * 8192) == -1);
	}
}

static void test_export_removal(void)
{
	struct gendisk *disk = test_null_add("nbd-rm", "size=16,bs=4096,"
					     "memory_backed=1,irqmode=2,"
					     "completion_nsec=100000000");
	struct nbd_handle *idle = NULL, *busy = NULL, *late;
	static struct pio p[16];
	_Atomic unsigned int seq = 0;
	unsigned int n = 0;

	test_begin("export removal with connections open", 30);
	REQUIRE(disk);
	test_fill(wbuf, 256 * 1024, 7, 0);
	CHECK(blkdev_pwrite(disk, wbuf, 256 * 1024, 0) == 256 * 1024);
	CHECK(nbd_export_add(srv, "rm", disk, false) == 0);
	CHECK_EQ_INT(nbd_export_add(srv, "rm", disk, false), -EEXIST);
	idle = client("rm", NULL);
	busy = client("rm", NULL);
	if (busy) {
		n = start_reads(busy, p, 16, &seq);
		/* the requests must have reached the device */
		while (nbd_aio_in_flight(busy) > 0 &&
		       !wait_in_flight(disk, n, 10))
			nbd_poll(busy, 10);
		CHECK_MSG(wait_in_flight(disk, n, 5000), "reads not in flight");
	}
	CHECK_EQ_INT(nbd_export_del(srv, "rm"), 0);
	CHECK_EQ_INT(nbd_export_del(srv, "rm"), -ENOENT);
	CHECK(!export_state("rm").found);
	/* in-flight requests were answered before the close */
	if (busy) {
		poll_until_idle(busy, 10000);
		check_reads(p, n, "export removal");
		CHECK(NBD_ERR(nbd_pread(busy, rbuf, 4096, 0, 0)) != 0);
	}
	if (idle)
		CHECK(NBD_ERR(nbd_pread(idle, rbuf, 4096, 0, 0)) != 0);
	late = nbd_create();
	if (late) {
		nbd_set_export_name(late, "rm");
		CHECK(nbd_connect_unix(late, sockpath) == -1);
		nbd_close(late);
	}
	nbd_close(idle);
	nbd_close(busy);
	test_dev_del(disk);
}

static void test_stop_in_flight(void)
{
	struct gendisk *disk = test_null_add("nbd-stop", "size=16,bs=4096,"
					     "memory_backed=1,irqmode=2,"
					     "completion_nsec=100000000");
	struct nbd_server *s2 = NULL;
	struct nbd_handle *h = NULL;
	static struct pio p[32];
	_Atomic unsigned int seq = 0;
	char path[160], listen[170];
	unsigned int n = 0;

	test_begin("server stop with I/O in flight", 30);
	REQUIRE(disk);
	test_fill(wbuf, 256 * 1024, 7, 0);
	CHECK(blkdev_pwrite(disk, wbuf, 256 * 1024, 0) == 256 * 1024);
	snprintf(path, sizeof(path), "%s/stop.sock", sockdir);
	snprintf(listen, sizeof(listen), "unix:%s", path);
	if (!CHECK_MSG(nbd_server_start(listen, &s2) == 0, "%s",
		       blkstack_errmsg()))
		goto out;
	CHECK(nbd_export_add(s2, "s", disk, false) == 0);
	h = client_at(path, "s", NULL);
	if (h) {
		n = start_reads(h, p, 32, &seq);
		while (nbd_aio_in_flight(h) > 0 &&
		       !wait_in_flight(disk, n, 10))
			nbd_poll(h, 10);
		CHECK_MSG(wait_in_flight(disk, n, 5000), "reads not in flight");
	}
	nbd_server_stop(s2);
	CHECK_MSG(access(path, F_OK) == -1, "socket %s left behind", path);
	if (h) {
		poll_until_idle(h, 10000);
		check_reads(p, n, "server stop");
		CHECK(NBD_ERR(nbd_pread(h, rbuf, 4096, 0, 0)) != 0);
	}
out:
	nbd_close(h);
	test_dev_del(disk);
}

/* ---- the API's bad input, TCP ---- */

static void test_api(void)
{
	struct nbd_server *s2 = NULL;
	struct nbd_handle *h;
	char listen[160], port[8];
	const char *bad[] = { "localhost", "127.0.0.1:", ":80",
			      "127.0.0.1:99999", "127.0.0.1:x", "[::1]80",
			      "unix:" };

	test_begin("API bad input, TCP", 20);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_MSG(nbd_server_start(bad[i], &s2) == -EINVAL,
			  "listen \"%s\" accepted", bad[i]);
		CHECK_MSG(strstr(blkstack_errmsg(), "nbd"), "message: %s",
			  blkstack_errmsg());
	}
	CHECK_EQ_INT(nbd_server_start(NULL, NULL), -EINVAL);
	CHECK_EQ_INT(nbd_export_add(srv, "x", NULL, false), -EINVAL);
	CHECK_EQ_INT(nbd_export_del(srv, "nosuch"), -ENOENT);
	snprintf(listen, sizeof(listen), "unix:%s", sockpath);
	CHECK_EQ_INT(nbd_server_start(listen, &s2), -EADDRINUSE);

	REQUIRE(nbd_server_start("127.0.0.1:0", &s2) == 0);
	CHECK(nbd_server_port(s2) != 0);
	CHECK(nbd_export_add(s2, "", mem_disk, true) == 0);
	snprintf(port, sizeof(port), "%u", nbd_server_port(s2));
	h = nbd_create();
	if (h) {
		nbd_set_export_name(h, "nbd-mem");
		if (CHECK_MSG(nbd_connect_tcp(h, "127.0.0.1", port) == 0,
			      "TCP connect: %s", nbd_get_error())) {
			CHECK(nbd_is_read_only(h) == 1);
			CHECK_EQ_INT(NBD_ERR(nbd_pread(h, rbuf, 4096,
						       16 * MiB, 0)), 0);
			CHECK(test_verify(rbuf, 4096, 4, 16 * MiB) == -1);
		}
		nbd_close(h);
	}
	nbd_server_stop(s2);
}

int main(void)
{
	struct gendisk *nozero, *cache, *slow;
	char listen[160];

	test_init(0);
	snprintf(sockdir, sizeof(sockdir), "/tmp/nbdsrv-XXXXXX");
	if (!mkdtemp(sockdir))
		test_skip("mkdtemp: %s", strerror(errno));
	snprintf(sockpath, sizeof(sockpath), "%s/nbd.sock", sockdir);
	snprintf(listen, sizeof(listen), "unix:%s", sockpath);
	if (!CHECK_MSG(nbd_server_start(listen, &srv) == 0, "%s",
		       blkstack_errmsg()))
		return test_report();
	mem_disk = test_null_add("nbd-mem", "size=64,bs=4096,memory_backed=1");
	nozero = test_null_add("nbd-nz", "size=64,bs=4096");
	cache = test_null_add("nbd-cache", "size=16,memory_backed=1,"
			      "cache_size=4");
	slow = test_null_add("nbd-slow", "size=64,bs=4096,memory_backed=1,"
			     "irqmode=2,completion_nsec=2000000");
	if (!mem_disk || !nozero || !cache || !slow)
		return test_report();
	CHECK(nbd_export_add(srv, "mem", mem_disk, false) == 0);
	CHECK(nbd_export_add(srv, "ro", mem_disk, true) == 0);
	CHECK(nbd_export_add(srv, "nozero", nozero, false) == 0);

	test_handshake();
	CHECK(nbd_export_add(srv, "cache", cache, false) == 0);
	CHECK(nbd_export_add(srv, "slow", slow, false) == 0);
	test_data();
	test_block_status();
	test_errors(false);
	test_errors(true);
	test_many_conns();
	test_multi_conn_flush(cache);
	test_pipeline(slow);
	test_held_replies();
	test_ioc();
	test_export_removal();
	test_stop_in_flight();
	test_api();

	nbd_server_stop(srv);
	CHECK_MSG(access(sockpath, F_OK) == -1, "socket left behind");
	rmdir(sockdir);
	test_dev_del(mem_disk);
	test_dev_del(nozero);
	test_dev_del(cache);
	test_dev_del(slow);
	return test_report();
}
