// SPDX-License-Identifier: MIT
/*
 * The BUG_ON/WARN_ON family: a BUG prints file:line, function, condition,
 * a backtrace and the dump of the queue involved, then aborts; WARN_ON
 * prints and goes on, WARN_ON_ONCE fires once, WARN_RATELIMIT at most ten
 * times a second.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/blk.h"

static int failures;

#define CHECK(c)							\
	do {								\
		if (!(c)) {						\
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",	\
				__FILE__, __LINE__, #c);		\
			failures++;					\
		}							\
	} while (0)

/* Run @fn in a child with stderr captured; returns its wait status. */
static int run_child(void (*fn)(void), char *out, size_t len)
{
	int pfd[2], status;
	ssize_t n, total = 0;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + total, len - 1 - (size_t)total)) > 0)
		total += n;
	out[total] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return status;
}

/* An unbalanced unfreeze is a bug of the caller: BUG with a queue dump. */
static void unbalanced_unfreeze(void)
{
	struct gendisk *disk;

	if (blkstack_dev_add("null", "bugdisk", "size=8,irqmode=0", &disk))
		_exit(3);
	blk_mq_unfreeze_queue(disk_queue(disk));
	_exit(4);	/* not reached */
}

static void test_bug_dumps_queue(void)
{
	static char out[1 << 16];
	int status = run_child(unbalanced_unfreeze, out, sizeof(out));

	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(out, "kernel BUG at block/blk-core.c") != NULL);
	CHECK(strstr(out, "blk_mq_unfreeze_queue") != NULL);
	CHECK(strstr(out, "mq_freeze_depth <= 0") != NULL);
	CHECK(strstr(out, "Call Trace:") != NULL);
	CHECK(strstr(out, "queue bugdisk: blk-mq") != NULL);
	CHECK(strstr(out, "hctx0:") != NULL);
	CHECK(strstr(out, "---[ end trace ]---") != NULL);
}

static int warn_once_site(int v)
{
	return WARN_ON_ONCE(v > 0);
}

static void test_warns(void)
{
	unsigned long base = bug_warn_count();
	int fired = 0;

	/* WARN_ON returns the condition and counts every time */
	CHECK(!WARN_ON(0));
	CHECK(bug_warn_count() == base);
	CHECK(WARN_ON(1 + 1 == 2));
	CHECK(bug_warn_count() == base + 1);

	/* WARN_ON_ONCE: the condition every time, the report once */
	for (int i = 0; i < 5; i++)
		fired += warn_once_site(1);
	CHECK(fired == 5);
	CHECK(bug_warn_count() == base + 2);

	/* WARN_RATELIMIT: at most ten reports in a burst */
	for (int i = 0; i < 100; i++)
		(void)WARN_RATELIMIT(1);
	CHECK(bug_warn_count() <= base + 2 + 10);
	CHECK(bug_warn_count() >= base + 2 + 1);
}

int main(void)
{
	test_bug_dumps_queue();
	test_warns();
	if (failures) {
		fprintf(stderr, "test-bug: %d failures\n", failures);
		return 1;
	}
	printf("test-bug: ok\n");
	return 0;
}
