// SPDX-License-Identifier: MIT
/*
 * The NBD client driver (drivers/nbd.c, docs/nbd-client.md) against real
 * servers on private unix sockets (and one loopback TCP port found at run
 * time): nbdkit memory (with its log filter, so the commands the server
 * saw are checked, not guessed), qemu-nbd on a raw file (checked through
 * the file itself), qemu-nbd -r, multi-conn with conns=2, bad parameters,
 * the fault test (the server killed with requests in flight, then
 * restarted on the same socket), a request time-out, and removal while
 * the server is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <libnbd.h>

#include "block/blk.h"
#include "testlib.h"

#define MiB (1024 * 1024)

static char dir[] = "/tmp/nbdcli-XXXXXX";
static char wbuf[4 * MiB], rbuf[4 * MiB];

/* ---- servers ---- */

#define MAX_SRV 8
static pid_t servers[MAX_SRV];

static void srv_forget(pid_t pid)
{
	for (int i = 0; i < MAX_SRV; i++)
		if (servers[i] == pid)
			servers[i] = 0;
}

static void srv_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	srv_forget(pid);
}

static void srv_kill_all(void)
{
	for (int i = 0; i < MAX_SRV; i++)
		srv_kill(servers[i]);
}

/*
 * Ready means serving: a whole handshake (within a second) and a clean
 * NBD_CMD_DISC through libnbd -- a bare connect would leave the server
 * complaining about a client that vanished mid-handshake.
 */
static bool srv_ready(const char *sock, unsigned int port)
{
	struct nbd_handle *h = nbd_create();
	char uri[300];
	bool ok = false;

	if (!h)
		return false;
	if (sock)
		snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", sock);
	else
		snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u/", port);
	if (nbd_aio_connect_uri(h, uri) == 0) {
		for (int i = 0; i < 10 && nbd_aio_is_connecting(h); i++)
			nbd_poll(h, 100);
		ok = nbd_aio_is_ready(h);
	}
	if (ok)
		nbd_shutdown(h, 0);
	nbd_close(h);
	return ok;
}

/* A unix socket is there (for a server whose one slot we must not take). */
static bool sock_exists(const char *sock)
{
	struct stat st;

	return !stat(sock, &st) && S_ISSOCK(st.st_mode);
}

/*
 * Start a server (argv, NULL-ended) that dies with us; wait until @sock
 * (or TCP @port) accepts. The pid, or 0 (and a failure).
 */
static pid_t __srv_start(const char *sock, unsigned int port, char **argv,
			 bool probe)
{
	pid_t pid;
	int slot = -1;

	for (int i = 0; i < MAX_SRV && slot < 0; i++)
		if (!servers[i])
			slot = i;
	if (!CHECK_MSG(slot >= 0, "too many servers"))
		return 0;
	if (sock)
		unlink(sock);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (!CHECK_MSG(pid > 0, "fork: %s", strerror(errno)))
		return 0;
	servers[slot] = pid;
	for (int i = 0; i < 1000; i++) {
		if (probe ? srv_ready(sock, port) : sock_exists(sock))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			srv_forget(pid);
			CHECK_MSG(0, "%s exited at start", argv[0]);
			return 0;
		}
		test_sleep_ms(10);
	}
	CHECK_MSG(0, "%s: not listening after 10 s", argv[0]);
	srv_kill(pid);
	return 0;
}

static pid_t srv_start(const char *sock, unsigned int port, char **argv)
{
	return __srv_start(sock, port, argv, true);
}

/* nbdkit memory 64M on @sock, with the log filter if @log, the delay
 * filter if @delay ("rdelay=1", "rdelay=100ms wdelay=100ms"). */
static pid_t nbdkit_memory(const char *sock, const char *log,
			   const char *delay)
{
	char logarg[300], dl[64], *save;
	char *argv[20] = { "nbdkit", "-f", "--exit-with-parent", "-U",
			   (char *)sock };
	int n = 5;

	if (log) {
		snprintf(logarg, sizeof(logarg), "logfile=%s", log);
		argv[n++] = "--filter=log";
	}
	if (delay)
		argv[n++] = "--filter=delay";
	argv[n++] = "memory";
	argv[n++] = "64M";
	if (log)
		argv[n++] = logarg;
	if (delay) {
		snprintf(dl, sizeof(dl), "%s", delay);
		for (char *tok = strtok_r(dl, " ", &save); tok && n < 19;
		     tok = strtok_r(NULL, " ", &save))
			argv[n++] = tok;
	}
	argv[n] = NULL;
	return srv_start(sock, 0, argv);
}

static void path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static struct gendisk *nbd_add(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct gendisk *nbd_add(const char *name, const char *fmt, ...)
{
	struct gendisk *disk = NULL;
	char params[512];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	ret = blkstack_dev_add("nbd", name, params, &disk);
	CHECK_MSG(ret == 0, "dev add nbd %s %s: %d %s", name, params, ret,
		  blkstack_errmsg());
	return ret ? NULL : disk;
}

/* Does the server's log hold a line with each of @words? */
static bool log_has(const char *log, const char *w1, const char *w2)
{
	char line[1024];
	FILE *f = fopen(log, "r");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, w1) && (!w2 || strstr(line, w2));
	fclose(f);
	return found;
}

/* ---- block status ---- */

struct ext_log {
	unsigned int nr;
	uint64_t off[64], len[64];
	bool hole[64];
};

/* Adjacent extents of one kind are merged: servers split as they like. */
static int ext_record(uint64_t off, uint64_t len, bool hole, void *arg)
{
	struct ext_log *l = arg;

	if (l->nr && l->hole[l->nr - 1] == hole &&
	    l->off[l->nr - 1] + l->len[l->nr - 1] == off) {
		l->len[l->nr - 1] += len;
		return 0;
	}
	if (l->nr == 64)
		return -E2BIG;
	l->off[l->nr] = off;
	l->len[l->nr] = len;
	l->hole[l->nr++] = hole;
	return 0;
}

static int block_status(struct gendisk *disk, uint64_t off, uint64_t len,
			struct ext_log *l)
{
	memset(l, 0, sizeof(*l));
	return disk->driver->block_status(disk, off, len, ext_record, l);
}

/* ---- data paths shared by the servers ---- */

/* Scattered segments (bounced) and contiguous ones (sent in place). */
static void check_vectors(struct gendisk *disk, sector_t sector)
{
	static char a[4096], b[8192], c[4096], big[16384];
	void *wv[3] = { a, b, c }, *rv[2] = { big, big + 8192 };
	unsigned int wl[3] = { 4096, 8192, 4096 }, rl[2] = { 8192, 8192 };
	uint64_t off = (uint64_t)sector << SECTOR_SHIFT;
	struct tio t;

	test_fill(a, sizeof(a), 7, off);
	test_fill(b, sizeof(b), 7, off + 4096);
	test_fill(c, sizeof(c), 7, off + 12288);
	tio_init(&t);
	tio_submit_vec(&t, disk, REQ_OP_WRITE, sector, wv, wl, 3);
	CHECK_MSG(tio_wait(&t, 1, 5000) && t.errors == 0,
		  "vector write: %d", t.last_err);
	memset(big, 0, sizeof(big));
	tio_submit_vec(&t, disk, REQ_OP_READ, sector, rv, rl, 2);
	CHECK_MSG(tio_wait(&t, 2, 5000) && t.errors == 0,
		  "vector read: %d", t.last_err);
	CHECK_MSG(test_verify(big, sizeof(big), 7, off) < 0,
		  "vector data mismatch");
	/* scattered read buffers too */
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(c, 0, sizeof(c));
	tio_submit_vec(&t, disk, REQ_OP_READ, sector, wv, wl, 3);
	CHECK_MSG(tio_wait(&t, 3, 5000) && t.errors == 0,
		  "scattered read: %d", t.last_err);
	CHECK_MSG(test_verify(a, sizeof(a), 7, off) < 0 &&
		  test_verify(b, sizeof(b), 7, off + 4096) < 0 &&
		  test_verify(c, sizeof(c), 7, off + 12288) < 0,
		  "scattered read data mismatch");
	tio_destroy(&t);
}

/* Scattered and larger than the bounce buffer a request keeps. */
static void check_big_scatter(struct gendisk *disk, sector_t sector)
{
	enum { SEG = 128 * 1024, NSEG = 3 };
	uint64_t off = (uint64_t)sector << SECTOR_SHIFT;
	void *wv[NSEG], *rv[NSEG];
	unsigned int len[NSEG];
	struct tio t;

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < NSEG; i++) {
			wv[i] = wbuf + (size_t)i * 2 * SEG;	/* gaps */
			rv[i] = rbuf + (size_t)i * 2 * SEG;
			len[i] = SEG;
			test_fill(wv[i], SEG, 120 + round, off + (uint64_t)i * SEG);
			memset(rv[i], 0, SEG);
		}
		tio_init(&t);
		tio_submit_vec(&t, disk, REQ_OP_WRITE, sector, wv, len, NSEG);
		CHECK_MSG(tio_wait(&t, 1, 5000) && !t.errors, "big scattered "
			  "write: %d", t.last_err);
		tio_submit_vec(&t, disk, REQ_OP_READ, sector, rv, len, NSEG);
		CHECK_MSG(tio_wait(&t, 2, 5000) && !t.errors, "big scattered "
			  "read: %d", t.last_err);
		for (int i = 0; i < NSEG; i++)
			CHECK_MSG(test_verify(rv[i], SEG, 120 + round,
					      off + (uint64_t)i * SEG) < 0,
				  "big scattered segment %d, round %d", i, round);
		tio_destroy(&t);
	}
}

/* Many I/Os at once: writes, then reads checked. */
static void check_parallel(struct gendisk *disk, unsigned int n,
			   uint64_t base)
{
	static char bufs[256][4096];
	struct tio t;

	tio_init(&t);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = base + (uint64_t)i * 3 * 4096;

		test_fill(bufs[i], 4096, 11, off);
		tio_submit(&t, disk, REQ_OP_WRITE, off >> SECTOR_SHIFT,
			   bufs[i], 4096);
	}
	CHECK_MSG(tio_wait(&t, n, 10000) && t.errors == 0,
		  "parallel writes: %u done, %u errors (%d)", tio_done(&t),
		  t.errors, t.last_err);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = base + (uint64_t)i * 3 * 4096;

		memset(bufs[i], 0, 4096);
		tio_submit(&t, disk, REQ_OP_READ, off >> SECTOR_SHIFT,
			   bufs[i], 4096);
	}
	CHECK_MSG(tio_wait(&t, 2 * n, 10000) && t.errors == 0,
		  "parallel reads: %u errors (%d)", t.errors, t.last_err);
	for (unsigned int i = 0; i < n; i++)
		if (!CHECK_MSG(test_verify(bufs[i], 4096, 11,
					   base + (uint64_t)i * 3 * 4096) < 0,
			       "parallel I/O %u: data mismatch", i))
			break;
	tio_destroy(&t);
}

static void check_fua(struct gendisk *disk, off_t off)
{
	struct tio t;
	struct tio_req r;

	tio_init(&t);
	test_fill(wbuf, 8192, 3, (uint64_t)off);
	CHECK(tio_blkdev_submit(&t, &r, disk, REQ_OP_WRITE | REQ_FUA, off,
				wbuf, 8192) == 0);
	CHECK_MSG(tio_wait_pending(&t, 0, 5000) && r.err == 0, "FUA write: %d",
		  r.err);
	tio_destroy(&t);
	CHECK(blkdev_pread(disk, rbuf, 8192, off) == 8192);
	CHECK(test_verify(rbuf, 8192, 3, (uint64_t)off) < 0);
}

/* Discard and write-zeroes both read back as zeroes here. */
static void check_trim_zero(struct gendisk *disk, off_t off)
{
	test_write_verify(disk, off, 256 * 1024, 5, wbuf, rbuf);
	CHECK_MSG(blkdev_discard(disk, off, 128 * 1024) == 0, "discard: %s",
		  blkstack_errmsg());
	CHECK_MSG(blkdev_write_zeroes(disk, off + 128 * 1024, 128 * 1024) == 0,
		  "write zeroes: %s", blkstack_errmsg());
	CHECK(blkdev_pread(disk, rbuf, 256 * 1024, off) == 256 * 1024);
	CHECK_MSG(test_is_zero(rbuf, 256 * 1024),
		  "not zero after discard + write zeroes");
}

/* ---- the tests ---- */

static void test_nbdkit_memory(void)
{
	char sock[256], log[256];
	struct ext_log el;
	struct gendisk *disk;
	char attr[64];
	pid_t srv;

	test_begin("nbdkit memory", 30);
	path_in_dir(sock, sizeof(sock), "mem.sock");
	path_in_dir(log, sizeof(log), "mem.log");
	srv = nbdkit_memory(sock, log, NULL);
	if (!srv)
		return;
	disk = nbd_add("nbdmem", "uri=nbd+unix:///?socket=%s,conns=1", sock);
	if (!disk)
		goto out;
	CHECK_EQ_U64(get_capacity(disk), 64 * MiB / 512);
	CHECK(!bdev_read_only(disk));
	CHECK_EQ_INT(strcmp(test_attr_show(disk, "write_cache", attr,
					   sizeof(attr)), "write back"), 0);
	CHECK_EQ_INT(strcmp(test_attr_show(disk, "fua", attr, sizeof(attr)),
			    "1"), 0);
	CHECK_EQ_U64(atoi(test_attr_show(disk, "nr_hw_queues", attr,
					 sizeof(attr))), 1);
	CHECK(atoi(test_attr_show(disk, "discard_max_hw_bytes", attr,
				  sizeof(attr))) > 0);

	test_write_verify(disk, 0, 64 * 1024, 1, wbuf, rbuf);
	test_write_verify(disk, 8 * MiB + 512, 3 * 512, 2, wbuf, rbuf);
	test_write_verify(disk, 16 * MiB, 4 * MiB, 3, wbuf, rbuf);
	test_write_verify(disk, 64 * MiB - 4096, 4096, 4, wbuf, rbuf);
	check_vectors(disk, 40 * MiB / 512);
	check_big_scatter(disk, 42 * MiB / 512);
	check_parallel(disk, 128, 44 * MiB);
	CHECK_MSG(blkdev_flush(disk) == 0, "flush: %s", blkstack_errmsg());
	check_fua(disk, 50 * MiB);
	check_trim_zero(disk, 52 * MiB);
	/* beyond the end: the block layer refuses, nothing is sent */
	CHECK(blkdev_pread(disk, rbuf, 4096, 64 * MiB) < 0);

	/* block status: data at [0, 64K) (written above), a hole after */
	if (CHECK_EQ_INT(block_status(disk, 0, 4 * MiB, &el), 0)) {
		CHECK_MSG(el.nr >= 2 && !el.hole[0] && el.off[0] == 0 &&
			  el.len[0] >= 64 * 1024 && el.len[0] < MiB &&
			  el.hole[1], "block status [0, 4M): %u extents, "
			  "first %s %llu", el.nr, el.hole[0] ? "hole" : "data",
			  (unsigned long long)el.len[0]);
		CHECK_EQ_U64(el.off[el.nr - 1] + el.len[el.nr - 1], 4 * MiB);
	}
	if (CHECK_EQ_INT(block_status(disk, 30 * MiB, 2 * MiB, &el), 0))
		CHECK_MSG(el.nr == 1 && el.hole[0] && el.len[0] == 2 * MiB,
			  "never written: %u extents", el.nr);
	CHECK_EQ_INT(block_status(disk, 63 * MiB, 2 * MiB, &el), -EINVAL);
	CHECK_MSG(strstr(blkstack_errmsg(), "beyond the end"), "%s",
		  blkstack_errmsg());

	/* what the server saw (nbdkit's log filter) */
	CHECK_MSG(log_has(log, "Flush", NULL), "no flush reached the server");
	CHECK_MSG(log_has(log, "Write", "fua=1"), "no FUA write on the server");
	CHECK_MSG(log_has(log, "Trim", NULL), "no trim on the server");
	CHECK_MSG(log_has(log, "Zero", NULL), "no zero on the server");
	CHECK_MSG(log_has(log, "Extents", NULL), "no block status on the server");
	CHECK_MSG(!log_has(log, "Write", "count=0x400000"),
		  "a 4 MiB write reached the server unsplit");
	test_dev_del(disk);
out:
	srv_kill(srv);
}

/*
 * What the handshake says shapes the device: block sizes (nbdkit's
 * blocksize-policy filter, unaligned requests refused by the server),
 * no write-zeroes, no block
 * status (everything is data). (nbdkit 1.32's fua filter cannot hide
 * FUA; null_blk's fua=0 tests the core's emulation.)
 */
static void test_export_limits(void)
{
	char sock[256], log[256], logarg[300];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", sock,
			 "--filter=log", "--filter=blocksize-policy",
			 "--filter=nozero", "--filter=noextents", "memory",
			 "64M",
			 "blocksize-minimum=4096", "blocksize-preferred=64K",
			 "blocksize-maximum=1M", "blocksize-error-policy=error",
			 "zeromode=none", logarg, NULL };
	struct gendisk *disk;
	struct ext_log el;
	char attr[64];
	pid_t srv;

	test_begin("export limits", 20);
	path_in_dir(sock, sizeof(sock), "lim.sock");
	path_in_dir(log, sizeof(log), "lim.log");
	snprintf(logarg, sizeof(logarg), "logfile=%s", log);
	srv = srv_start(sock, 0, argv);
	if (!srv)
		return;
	disk = nbd_add("nbdlim", "uri=nbd+unix:///?socket=%s,conns=1", sock);
	if (!disk)
		goto out;
	CHECK_EQ_U64(bdev_logical_block_size(disk), 4096);
	CHECK_EQ_U64(bdev_physical_block_size(disk), 65536);
	CHECK_EQ_U64(atoi(test_attr_show(disk, "optimal_io_size", attr,
					 sizeof(attr))), 65536);
	CHECK_EQ_U64(atoi(test_attr_show(disk, "max_hw_sectors_kb", attr,
					 sizeof(attr))), 1024);
	CHECK_EQ_U64(atoi(test_attr_show(disk, "write_zeroes_max_bytes", attr,
					 sizeof(attr))), 0);
	/* 4 MiB in 1 MiB commands, all 4K-aligned (the server refuses less) */
	test_write_verify(disk, 8 * MiB, 4 * MiB, 110, wbuf, rbuf);
	check_vectors(disk, 20 * MiB / 512);
	CHECK_MSG(blkdev_pread(disk, rbuf, 512, 0) < 0,
		  "a 512-byte read on a 4K device was accepted");
	CHECK(blkdev_write_zeroes(disk, 0, 4096) < 0);
	if (CHECK_EQ_INT(block_status(disk, 0, 16 * MiB, &el), 0))
		CHECK_MSG(el.nr == 1 && !el.hole[0] && el.len[0] == 16 * MiB,
			  "no block status: want one data extent, got %u",
			  el.nr);
	test_dev_del(disk);
	CHECK_MSG(log_has(log, "Write", "count=0x100000"),
		  "no 1 MiB writes on the server");
	CHECK_MSG(!log_has(log, "Write", "count=0x200000") &&
		  !log_has(log, "Write", "count=0x400000"),
		  "a write above blocksize-maximum reached the server");
	CHECK_MSG(!log_has(log, "Zero", NULL), "a zero command was sent");
	CHECK_MSG(!log_has(log, "Extents", NULL), "block status was sent");
out:
	srv_kill(srv);
}

static void test_qemu_nbd_file(void)
{
	char sock[256], img[256];
	char *argv[] = { "qemu-nbd", "-t", "-k", sock, "-f", "raw",
			 "--cache=writeback", "--discard=unmap", img, NULL };
	struct gendisk *disk;
	struct ext_log el;
	pid_t srv;
	int fd;

	test_begin("qemu-nbd raw file", 30);
	path_in_dir(sock, sizeof(sock), "qemu.sock");
	path_in_dir(img, sizeof(img), "disk.img");
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!CHECK(fd >= 0) || !CHECK(ftruncate(fd, 16 * MiB) == 0))
		return;
	srv = srv_start(sock, 0, argv);
	if (!srv)
		goto out_fd;
	disk = nbd_add("nbdqemu", "uri=nbd+unix:///?socket=%s", sock);
	if (!disk)
		goto out;
	CHECK_EQ_U64(get_capacity(disk), 16 * MiB / 512);
	test_write_verify(disk, 0, 64 * 1024, 21, wbuf, rbuf);
	test_write_verify(disk, 5 * MiB + 4096, 1 * MiB, 22, wbuf, rbuf);
	check_vectors(disk, 7 * MiB / 512);
	check_parallel(disk, 64, 8 * MiB);
	check_fua(disk, 12 * MiB);
	CHECK_MSG(blkdev_flush(disk) == 0, "flush: %s", blkstack_errmsg());
	/* after the flush the data is in the file itself */
	CHECK(pread(fd, rbuf, MiB, 5 * MiB + 4096) == MiB);
	CHECK_MSG(test_verify(rbuf, MiB, 22, 5 * MiB + 4096) < 0,
		  "the file does not hold what was written");
	check_trim_zero(disk, 13 * MiB);
	CHECK(blkdev_flush(disk) == 0);
	CHECK(pread(fd, rbuf, 256 * 1024, 13 * MiB) == 256 * 1024);
	CHECK_MSG(test_is_zero(rbuf, 256 * 1024), "file not zeroed");
	if (CHECK_EQ_INT(block_status(disk, 0, 4 * MiB, &el), 0)) {
		CHECK_MSG(el.nr >= 1 && !el.hole[0] && el.off[0] == 0 &&
			  el.len[0] >= 64 * 1024,
			  "qemu-nbd: [0, 64K) not reported as data");
		CHECK_EQ_U64(el.off[el.nr - 1] + el.len[el.nr - 1], 4 * MiB);
	}
	test_dev_del(disk);
out:
	srv_kill(srv);
out_fd:
	close(fd);
}

static void test_read_only(void)
{
	char sock[256], img[256];
	char *argv[] = { "qemu-nbd", "-t", "-r", "-k", sock, "-f", "raw", img, NULL };
	struct gendisk *disk;
	pid_t srv;
	int fd;

	test_begin("qemu-nbd -r", 20);
	path_in_dir(sock, sizeof(sock), "ro.sock");
	path_in_dir(img, sizeof(img), "ro.img");
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!CHECK(fd >= 0))
		return;
	test_fill(wbuf, MiB, 31, 0);
	CHECK(pwrite(fd, wbuf, MiB, 0) == MiB);
	close(fd);
	srv = srv_start(sock, 0, argv);
	if (!srv)
		return;
	disk = nbd_add("nbdro", "uri=nbd+unix:///?socket=%s", sock);
	if (disk) {
		CHECK(bdev_read_only(disk));
		CHECK(blkdev_pread(disk, rbuf, MiB, 0) == MiB);
		CHECK(test_verify(rbuf, MiB, 31, 0) < 0);
		CHECK_MSG(blkdev_pwrite(disk, wbuf, 4096, 0) < 0,
			  "a write to a read-only export succeeded");
		CHECK(blkdev_pread(disk, rbuf, MiB, 0) == MiB);
		CHECK(test_verify(rbuf, MiB, 31, 0) < 0);
		test_dev_del(disk);
	}
	srv_kill(srv);
}

static unsigned int free_tcp_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned int port = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void test_multi_conn(void)
{
	char sock[256], img[256], portarg[16];
	char *qargv[] = { "qemu-nbd", "-t", "--shared=4", "-k", sock, "-f", "raw",
			  img, NULL };
	char *kargv[] = { "nbdkit", "-f", "--exit-with-parent", "-i",
			  "127.0.0.1", "-p", portarg, "memory", "64M", NULL };
	struct gendisk *disk;
	char attr[64];
	unsigned int port;
	pid_t srv;
	int fd;

	test_begin("multi-conn", 30);
	path_in_dir(sock, sizeof(sock), "mc.sock");
	path_in_dir(img, sizeof(img), "mc.img");
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!CHECK(fd >= 0) || !CHECK(ftruncate(fd, 16 * MiB) == 0))
		return;
	close(fd);
	srv = srv_start(sock, 0, qargv);
	if (!srv)
		return;
	disk = nbd_add("nbdmc", "uri=nbd+unix:///?socket=%s,conns=2,depth=16",
		       sock);
	if (disk) {
		CHECK_EQ_U64(atoi(test_attr_show(disk, "nr_hw_queues", attr,
						 sizeof(attr))), 2);
		CHECK_EQ_U64(atoi(test_attr_show(disk, "nr_requests", attr,
						 sizeof(attr))), 16);
		/* from both "CPUs", so both connections carry I/O */
		for (int cpu = 0; cpu < 2; cpu++) {
			blk_set_current_cpu(cpu);
			check_parallel(disk, 64, (uint64_t)cpu * 4 * MiB);
			test_write_verify(disk, 10 * MiB + cpu * MiB, MiB,
					  40 + cpu, wbuf, rbuf);
		}
		blk_set_current_cpu(0);
		CHECK(blkdev_flush(disk) == 0);
		test_dev_del(disk);
	}
	srv_kill(srv);

	/* over loopback TCP, conns left to the default (multi-conn: CPUs) */
	port = free_tcp_port();
	if (!CHECK(port))
		return;
	snprintf(portarg, sizeof(portarg), "%u", port);
	srv = srv_start(NULL, port, kargv);
	if (!srv)
		return;
	disk = nbd_add("nbdtcp", "uri=nbd://127.0.0.1:%u/", port);
	if (disk) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		CHECK_EQ_U64(atoi(test_attr_show(disk, "nr_hw_queues", attr,
						 sizeof(attr))),
			     cpus > 64 ? 64 : cpus);
		test_write_verify(disk, MiB, MiB, 50, wbuf, rbuf);
		check_parallel(disk, 64, 8 * MiB);
		test_dev_del(disk);
	}
	srv_kill(srv);
}

/* Refused with a message that names the problem; nothing is created. */
static void bad_params(const char *params, const char *want)
{
	struct gendisk *disk = NULL;
	int ret = blkstack_dev_add("nbd", "nbdbad", params, &disk);

	CHECK_MSG(ret < 0, "'%s' was accepted", params);
	CHECK_MSG(strstr(blkstack_errmsg(), want), "'%s': message '%s' does "
		  "not say '%s'", params, blkstack_errmsg(), want);
	CHECK_MSG(!disk, "'%s': a disk came back", params);
	if (disk)
		test_dev_del(disk);
	disk = blk_get_disk("nbdbad");
	CHECK_MSG(!disk, "'%s': a device was left behind", params);
	if (disk)
		blk_put_disk(disk);
}

static void test_bad_params(void)
{
	char sock[256], sock1[256], img[256], params[512];
	char *argv[] = { "qemu-nbd", "-t", "-k", sock1, "-f", "raw", "-r", img,
			 NULL };
	pid_t srv, srv1 = 0;
	int fd;

	test_begin("bad parameters", 30);
	path_in_dir(sock, sizeof(sock), "bad.sock");
	path_in_dir(sock1, sizeof(sock1), "single.sock");
	path_in_dir(img, sizeof(img), "single.img");
	bad_params("", "uri= is required");
	bad_params("conns=2", "uri= is required");
	bad_params("uri=nbd+unix:///?socket=/x,colour=blue",
		   "unknown parameter 'colour'; valid: uri, conns");
	bad_params("uri=nbd+unix:///?socket=/x,conns=0", "conns=0: valid "
		   "values are 1..64");
	bad_params("uri=nbd+unix:///?socket=/x,depth=lots", "depth=lots");
	bad_params("uri=nbd+unix:///?socket=/x,timeout=0", "timeout=0");
	bad_params("uri=nbd+unix:///?socket=/x,reconnect_delay_ms=500,"
		   "max_reconnect_delay_ms=100", "must be >= reconnect_delay_ms");
	bad_params("uri=nbd+unix:///?socket=/x,conns", "parameters are "
		   "key=value");
	bad_params("uri=", "uri=: empty");
	snprintf(params, sizeof(params), "uri=nbd+unix:///?socket=%s/none",
		 dir);
	bad_params(params, "nbd+unix:///?socket=");
	bad_params("uri=http://example.com/", "http://example.com/");

	srv = nbdkit_memory(sock, NULL, NULL);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (CHECK(fd >= 0) && CHECK(ftruncate(fd, MiB) == 0))
		srv1 = srv_start(sock1, 0, argv);
	if (fd >= 0)
		close(fd);
	if (srv1) {
		/* conns=2 without multi-conn: refused; conns=1 works */
		struct gendisk *disk;

		snprintf(params, sizeof(params), "uri=nbd+unix:///?socket=%s,"
			 "conns=2", sock1);
		bad_params(params, "does not advertise multi-conn");
		disk = nbd_add("nbdone", "uri=nbd+unix:///?socket=%s,conns=1",
			       sock1);
		if (disk) {
			CHECK(bdev_read_only(disk));
			test_dev_del(disk);
		}
	}
	if (srv) {
		/* a valid device still works after all that */
		struct gendisk *disk = nbd_add("nbdgood", "uri=nbd+unix:///"
					       "?socket=%s", sock);

		if (disk) {
			test_write_verify(disk, 0, 4096, 60, wbuf, rbuf);
			test_dev_del(disk);
		}
	}
	srv_kill(srv1);
	srv_kill(srv);
}

/*
 * The fault test: requests in flight (the delay filter holds reads for
 * 3 s), the server killed; all end with -ENOLINK, not a hang; new
 * ones fail fast while it is gone; after it returns on the same socket,
 * I/O works again once the back-off lets the thread reconnect.
 */
static void test_server_killed(void)
{
	enum { NR = 8 };
	static char bufs[NR][4096];
	char sock[256];
	struct gendisk *disk;
	struct tio t;
	uint64_t t0, t1;
	pid_t srv;
	int ret;
	bool ok = false;

	test_begin("server killed mid-I/O", 30);
	path_in_dir(sock, sizeof(sock), "fault.sock");
	srv = nbdkit_memory(sock, NULL, "rdelay=3");
	if (!srv)
		return;
	disk = nbd_add("nbdfault", "uri=nbd+unix:///?socket=%s,"
		       "reconnect_delay_ms=50,max_reconnect_delay_ms=200",
		       sock);
	if (!disk) {
		srv_kill(srv);
		return;
	}
	tio_init(&t);
	for (int i = 0; i < NR; i++)
		tio_submit(&t, disk, REQ_OP_READ, (sector_t)i * 8, bufs[i],
			   4096);
	test_sleep_ms(200);
	CHECK_MSG(tio_pending(&t) == NR, "only %u of %d reads in flight",
		  tio_pending(&t), NR);
	t0 = test_now_ns();
	srv_kill(srv);
	CHECK_MSG(tio_wait(&t, NR, 5000), "in-flight reads hang after the "
		  "server died: %u of %d done", tio_done(&t), NR);
	t1 = test_now_ns();
	CHECK_MSG(t.errors == NR && t.last_err == -ENOLINK,
		  "in-flight reads: %u errors, last %d (want -ENOLINK)",
		  t.errors, t.last_err);
	for (int i = 0; i < NR; i++)
		CHECK_EQ_INT(t.req[i].err, -ENOLINK);
	CHECK_MSG(t1 - t0 < 2000000000ULL, "failing took %llu ms",
		  (unsigned long long)((t1 - t0) / 1000000));
	pr_info("test: %d in-flight reads failed %llu us after the kill", NR,
		(unsigned long long)((t1 - t0) / 1000));
	tio_destroy(&t);

	/* while the server is gone: a quick -ENOLINK, not a wait */
	t0 = test_now_ns();
	ret = (int)blkdev_pread(disk, rbuf, 4096, 0);
	CHECK_EQ_INT(ret, -ENOLINK);
	CHECK_MSG(test_now_ns() - t0 < 1000000000ULL, "fail-fast took %llu ms",
		  (unsigned long long)((test_now_ns() - t0) / 1000000));

	/* the server returns (without the delay) on the same socket */
	t0 = test_now_ns();
	srv = nbdkit_memory(sock, NULL, NULL);
	for (int i = 0; srv && i < 200 && !ok; i++) {
		ok = blkdev_pwrite(disk, wbuf, 4096, 0) == 4096;
		if (!ok)
			test_sleep_ms(25);
	}
	CHECK_MSG(ok, "no I/O 5 s after the server came back: %s",
		  blkstack_errmsg());
	if (ok) {
		pr_info("test: I/O again %llu ms after starting the server",
			(unsigned long long)((test_now_ns() - t0) / 1000000));
		test_write_verify(disk, MiB, 256 * 1024, 70, wbuf, rbuf);
		check_parallel(disk, 32, 4 * MiB);
	}
	test_dev_del(disk);
	srv_kill(srv);
}

/*
 * Killed under load: reads and writes in flight on both connections
 * (each held 3 s by the server) and the submitter blocked waiting
 * for tags. Every I/O ends -- done, or -ENOLINK -- within a bound.
 */
enum { LOAD_NR = 256 };

struct load {
	struct gendisk *disk;
	struct tio t;
	char bufs[LOAD_NR][4096];
};

static void *load_submit(void *arg)
{
	struct load *l = arg;

	for (int i = 0; i < LOAD_NR; i++) {
		blk_set_current_cpu(i & 1);
		tio_submit(&l->t, l->disk, i % 3 ? REQ_OP_WRITE : REQ_OP_READ,
			   (sector_t)i * 8, l->bufs[i], 4096);
	}
	return NULL;
}

static void test_killed_under_load(void)
{
	static struct load l;
	unsigned int ok = 0, transport = 0;
	char sock[256];
	pthread_t thr;
	pid_t srv;

	test_begin("server killed under load", 30);
	path_in_dir(sock, sizeof(sock), "load.sock");
	srv = nbdkit_memory(sock, NULL, "rdelay=3 wdelay=3");
	if (!srv)
		return;
	l.disk = nbd_add("nbdload", "uri=nbd+unix:///?socket=%s,conns=2,"
			 "depth=32,reconnect_delay_ms=50", sock);
	if (!l.disk) {
		srv_kill(srv);
		return;
	}
	tio_init(&l.t);
	if (!CHECK(!pthread_create(&thr, NULL, load_submit, &l)))
		goto out;
	test_sleep_ms(300);
	CHECK_MSG(tio_pending(&l.t) >= 32, "only %u I/Os in flight",
		  tio_pending(&l.t));
	srv_kill(srv);
	srv = 0;
	pthread_join(thr, NULL);
	CHECK_MSG(tio_wait(&l.t, LOAD_NR, 5000), "I/O hangs after the server "
		  "died: %u of %d done", tio_done(&l.t), LOAD_NR);
	for (int i = 0; i < LOAD_NR; i++) {
		ok += l.t.req[i].err == 0;
		transport += l.t.req[i].err == -ENOLINK;
		CHECK_MSG(l.t.req[i].calls <= 1, "I/O %d ended %u times", i,
			  l.t.req[i].calls);
	}
	CHECK_MSG(ok + transport == LOAD_NR, "%u ok + %u -ENOLINK of %d (last "
		  "error %d)", ok, transport, LOAD_NR, l.t.last_err);
	CHECK_MSG(transport == LOAD_NR, "%u of %d ended well with the server "
		  "holding each for 3 s and killed after 0.3 s", ok, LOAD_NR);
	CHECK_EQ_U64(test_wait_idle(l.disk, 2000), 0);
out:
	tio_destroy(&l.t);
	test_dev_del(l.disk);
	srv_kill(srv);
}

/* Does the debug dump of @disk contain @what? */
static bool dump_has(struct gendisk *disk, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool found;

	if (!f)
		return false;
	blk_mq_debug_dump(disk, f);
	fclose(f);
	found = buf && strstr(buf, what);
	free(buf);
	return found;
}

/*
 * A connection that cannot come back: its hardware queue's requests go
 * out on the live one (the kernel's find_fallback). The server returns
 * as qemu-nbd --shared=1, which serves one connection of the two.
 */
static void test_fallback(void)
{
	char sock[256], img[256];
	char *qargv[] = { "qemu-nbd", "-t", "--shared=1", "-k", sock, "-f",
			  "raw", img, NULL };
	struct gendisk *disk;
	pid_t srv;
	bool ok = false;
	int fd;

	test_begin("fallback to a live connection", 30);
	path_in_dir(sock, sizeof(sock), "fb.sock");
	path_in_dir(img, sizeof(img), "fb.img");
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!CHECK(fd >= 0) || !CHECK(ftruncate(fd, 64 * MiB) == 0))
		return;
	close(fd);
	srv = nbdkit_memory(sock, NULL, NULL);
	if (!srv)
		return;
	disk = nbd_add("nbdfb", "uri=nbd+unix:///?socket=%s,conns=2,"
		       "timeout=2,reconnect_delay_ms=50", sock);
	if (!disk) {
		srv_kill(srv);
		return;
	}
	srv_kill(srv);
	/* no handshake probe: it could take the one slot and wait forever */
	srv = __srv_start(sock, 0, qargv, false);
	for (int i = 0; srv && i < 200 && !ok; i++) {
		ok = blkdev_pwrite(disk, wbuf, 4096, 0) == 4096;
		if (!ok)
			test_sleep_ms(25);
	}
	CHECK_MSG(ok, "no I/O after the server came back");
	for (int cpu = 0; ok && cpu < 2; cpu++) {
		blk_set_current_cpu(cpu);
		test_write_verify(disk, (off_t)cpu * MiB, 64 * 1024, 100 + cpu,
				  wbuf, rbuf);
		check_parallel(disk, 32, 8 * MiB + (uint64_t)cpu * MiB);
	}
	blk_set_current_cpu(0);
	CHECK_MSG(dump_has(disk, "connected=0"), "both connections are up: "
		  "qemu-nbd --shared=1 served two");
	CHECK_MSG(dump_has(disk, "connected=1"), "no connection is up");
	test_dev_del(disk);
	srv_kill(srv);
}

/* A server that comes back with another export is not reconnected to. */
static void test_changed_export(void)
{
	char sock[256];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", sock,
			 "memory", "32M", NULL };
	struct gendisk *disk;
	pid_t srv;
	bool ok = false;

	test_begin("a changed export is refused", 20);
	path_in_dir(sock, sizeof(sock), "chg.sock");
	srv = nbdkit_memory(sock, NULL, NULL);
	if (!srv)
		return;
	disk = nbd_add("nbdchg", "uri=nbd+unix:///?socket=%s,conns=1,"
		       "reconnect_delay_ms=20,max_reconnect_delay_ms=50", sock);
	if (!disk) {
		srv_kill(srv);
		return;
	}
	srv_kill(srv);
	srv = srv_start(sock, 0, argv);		/* 32M, not 64M */
	test_sleep_ms(500);
	CHECK_EQ_INT(blkdev_pread(disk, rbuf, 4096, 0), -ENOLINK);
	CHECK_EQ_U64(get_capacity(disk), 64 * MiB / 512);
	srv_kill(srv);
	srv = nbdkit_memory(sock, NULL, NULL);	/* the same again */
	for (int i = 0; srv && i < 200 && !ok; i++) {
		ok = blkdev_pread(disk, rbuf, 4096, 0) == 4096;
		if (!ok)
			test_sleep_ms(25);
	}
	CHECK_MSG(ok, "no I/O after the right export came back");
	test_dev_del(disk);
	srv_kill(srv);
}

/*
 * Errors the server returns end the request with their status and keep
 * the connection (nbdkit's error filter, switched on by a file):
 * ENOSPC -> -ENOSPC, EIO -> -EIO, ESHUTDOWN (the server going away)
 * -> -ENOLINK.
 */
static void test_server_errors(void)
{
	char sock[256], errfile[256], p1[300], p2[300], p3[300];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", sock,
			 "--filter=error", "memory", "64M",
			 "error-pwrite=ENOSPC", "error-pwrite-rate=1", p1,
			 "error-pread=EIO", "error-pread-rate=1", p2,
			 "error-trim=ESHUTDOWN", "error-trim-rate=1", p3, NULL };
	struct gendisk *disk;
	pid_t srv;
	int fd;

	test_begin("server errors", 20);
	path_in_dir(sock, sizeof(sock), "err.sock");
	path_in_dir(errfile, sizeof(errfile), "inject");
	snprintf(p1, sizeof(p1), "error-pwrite-file=%s", errfile);
	snprintf(p2, sizeof(p2), "error-pread-file=%s", errfile);
	snprintf(p3, sizeof(p3), "error-trim-file=%s", errfile);
	srv = srv_start(sock, 0, argv);
	if (!srv)
		return;
	disk = nbd_add("nbderr", "uri=nbd+unix:///?socket=%s,conns=1", sock);
	if (disk) {
		test_write_verify(disk, 0, 8192, 90, wbuf, rbuf);
		fd = open(errfile, O_WRONLY | O_CREAT, 0600);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
		CHECK_EQ_INT(blkdev_pwrite(disk, wbuf, 4096, 0), -ENOSPC);
		CHECK_EQ_INT(blkdev_pread(disk, rbuf, 4096, 0), -EIO);
		CHECK_EQ_INT(blkdev_discard(disk, 0, 4096), -ENOLINK);
		CHECK_EQ_INT(blkdev_flush(disk), 0);
		unlink(errfile);
		CHECK(blkdev_pread(disk, rbuf, 8192, 0) == 8192);
		CHECK_MSG(test_verify(rbuf, 8192, 90, 0) < 0,
			  "a refused write changed the data");
		test_write_verify(disk, 4096, 4096, 91, wbuf, rbuf);
		CHECK_MSG(dump_has(disk, "connected=1 reconnects=0"),
			  "a server error dropped the connection");
		test_dev_del(disk);
	}
	srv_kill(srv);
}

/* A request the server sits on past timeout= ends with -ETIMEDOUT. */
static void test_timeout(void)
{
	char sock[256];
	struct gendisk *disk;
	uint64_t t0, ms;
	bool ok = false;
	ssize_t ret;
	pid_t srv;

	test_begin("request time-out", 30);
	path_in_dir(sock, sizeof(sock), "slow.sock");
	srv = nbdkit_memory(sock, NULL, "rdelay=4");
	if (!srv)
		return;
	disk = nbd_add("nbdslow", "uri=nbd+unix:///?socket=%s,timeout=1,"
		       "reconnect_delay_ms=50", sock);
	if (disk) {
		t0 = test_now_ns();
		ret = blkdev_pread(disk, rbuf, 4096, 0);
		ms = (test_now_ns() - t0) / 1000000;
		CHECK_EQ_INT(ret, -ETIMEDOUT);
		CHECK_MSG(ms >= 900 && ms < 3500, "timed out after %llu ms "
			  "(timeout=1)", (unsigned long long)ms);
		/* writes are not delayed: the link comes back and works */
		for (int i = 0; i < 100 && !ok; i++) {
			ok = blkdev_pwrite(disk, wbuf, 4096, 0) == 4096;
			if (!ok)
				test_sleep_ms(25);
		}
		CHECK_MSG(ok, "no I/O after the time-out reset: %s",
			  blkstack_errmsg());
		test_dev_del(disk);
	}
	srv_kill(srv);
}

/* Removal never waits for a server that is gone. */
static void test_remove_while_down(void)
{
	char sock[256];
	struct gendisk *disk;
	uint64_t t0;
	pid_t srv;

	test_begin("removal while disconnected", 20);
	path_in_dir(sock, sizeof(sock), "gone.sock");
	srv = nbdkit_memory(sock, NULL, NULL);
	if (!srv)
		return;
	disk = nbd_add("nbdgone", "uri=nbd+unix:///?socket=%s,"
		       "reconnect_delay_ms=1000,max_reconnect_delay_ms=60000",
		       sock);
	if (disk)
		test_write_verify(disk, 0, 4096, 80, wbuf, rbuf);
	srv_kill(srv);
	test_sleep_ms(100);
	t0 = test_now_ns();
	test_dev_del(disk);
	CHECK_MSG(test_now_ns() - t0 < 2000000000ULL, "removal took %llu ms",
		  (unsigned long long)((test_now_ns() - t0) / 1000000));
}

static void cleanup(void)
{
	char cmd[128];

	srv_kill_all();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

static bool have(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

int main(void)
{
	if (!have("nbdkit") || !have("qemu-nbd"))
		test_skip("needs nbdkit and qemu-nbd (scripts/install-deps.sh)");
	if (!mkdtemp(dir))
		test_skip("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	test_init(2);
	test_nbdkit_memory();
	test_export_limits();
	test_qemu_nbd_file();
	test_read_only();
	test_multi_conn();
	test_bad_params();
	test_server_killed();
	test_killed_under_load();
	test_server_errors();
	test_fallback();
	test_changed_export();
	test_timeout();
	test_remove_while_down();
	return test_report();
}
