// SPDX-License-Identifier: MIT
/*
 * lib/workqueue.c, the kblockd pool:
 *  - the workers do not take the policy of the thread that starts the
 *    pool: one started from a SCHED_BATCH thread (an NBD reader) or a
 *    SCHED_IDLE one runs its work as SCHED_OTHER; without the right to
 *    leave SCHED_IDLE (no CAP_SYS_NICE, RLIMIT_NICE 0) the pool still
 *    starts and its work still runs. Each case runs in a process of its
 *    own (fork and exec), where the pool starts afresh;
 *  - a pending item is queued once; delayed work runs no earlier than its
 *    delay, mod_delayed_work moves it, cancel_work_sync takes it off the
 *    queue; flush_work waits for a due item to have run.
 */
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/workqueue.h"
#include "testlib.h"

/* ---- the workers' policy ---- */

static _Atomic int work_policy = -1;

static void record_policy(struct work_struct *w)
{
	atomic_store(&work_policy, sched_getscheduler(0));
}

/* Give up CAP_SYS_NICE and any RLIMIT_NICE: SCHED_IDLE is then for good. */
static void drop_nice_rights(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	struct rlimit rl = { 0, 0 };

	if (!syscall(SYS_capget, &hdr, data)) {
		data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &=
			~CAP_TO_MASK(CAP_SYS_NICE);
		data[CAP_TO_INDEX(CAP_SYS_NICE)].permitted &=
			~CAP_TO_MASK(CAP_SYS_NICE);
		syscall(SYS_capset, &hdr, data);
	}
	setrlimit(RLIMIT_NICE, &rl);
}

struct starter {
	int policy;
	bool drop_rights;
};

/* Child: a thread of @policy queues the pool's first work. */
static void *starter_fn(void *arg)
{
	const struct starter *s = arg;
	struct sched_param sp = { 0 };
	struct work_struct w;

	if (s->drop_rights)
		drop_nice_rights();
	if (sched_setscheduler(0, s->policy, &sp))
		_exit(100);
	INIT_WORK(&w, record_policy);
	kblockd_schedule_work(&w);
	flush_work(&w);
	return NULL;
}

/*
 * The child, a fresh process (exec'd, so that no thread of the test's
 * runs there and the pool has not started): a thread of @policy queues
 * the pool's first work; the exit code is the policy the work ran with.
 */
static int child_main(int policy, bool drop_rights)
{
	struct starter s = { policy, drop_rights };
	pthread_t t;

	alarm(10); /* a pool that never ran the work: killed */
	if (pthread_create(&t, NULL, starter_fn, &s))
		return 101;
	pthread_join(t, NULL);
	return atomic_load(&work_policy);
}

/* The policy the pool's work ran with, started from @policy; -1 on error. */
static int pool_policy_from(int policy, bool drop_rights)
{
	char p[16], d[4];
	int status;
	pid_t pid;

	snprintf(p, sizeof(p), "%d", policy);
	snprintf(d, sizeof(d), "%d", drop_rights);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		execl("/proc/self/exe", "test-workqueue", "--child", p, d,
		      (char *)NULL);
		_exit(102);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

static void test_policy(void)
{
	int p;

	test_begin("workers started from SCHED_BATCH run SCHED_OTHER", 20);
	p = pool_policy_from(SCHED_BATCH, false);
	CHECK_MSG(p == SCHED_OTHER, "work ran with policy %d", p);

	test_begin("workers started from SCHED_IDLE run SCHED_OTHER", 20);
	p = pool_policy_from(SCHED_IDLE, false);
	if (geteuid() == 0)
		CHECK_MSG(p == SCHED_OTHER, "work ran with policy %d", p);
	else	/* may not leave SCHED_IDLE: it still has to run */
		CHECK_MSG(p == SCHED_OTHER || p == SCHED_IDLE,
			  "work ran with policy %d", p);

	test_begin("SCHED_IDLE starter without the right to leave it", 20);
	p = pool_policy_from(SCHED_IDLE, true);
	CHECK_MSG(p == SCHED_IDLE, "work ran with policy %d (want SCHED_IDLE "
				   "kept, the work run)", p);
}

/* ---- queueing rules ---- */

static _Atomic int runs;
static _Atomic uint64_t ran_at;

static void count_run(struct work_struct *w)
{
	atomic_store(&ran_at, test_now_ns());
	atomic_fetch_add(&runs, 1);
}

static void wait_runs(int n)
{
	while (atomic_load(&runs) < n)
		test_sleep_ms(1);
}

static void test_queueing(void)
{
	struct delayed_work dw;
	struct work_struct w;
	uint64_t t0;

	test_begin("a pending item is queued once", 10);
	INIT_DELAYED_WORK(&dw, count_run);
	CHECK(kblockd_schedule_delayed_work(&dw, 200));
	CHECK(!kblockd_schedule_delayed_work(&dw, 1));
	CHECK(work_pending(&dw.work));
	cancel_delayed_work_sync(&dw);
	CHECK(!work_pending(&dw.work));
	test_sleep_ms(300);
	CHECK_MSG(atomic_load(&runs) == 0, "a cancelled item ran %d times",
		  atomic_load(&runs));

	test_begin("delayed work waits out its delay", 10);
	t0 = test_now_ns();
	kblockd_schedule_delayed_work(&dw, 50);
	wait_runs(1);
	CHECK_MSG(atomic_load(&ran_at) - t0 >= 50 * 1000000ULL,
		  "ran after %llu us of 50 ms",
		  (unsigned long long)(atomic_load(&ran_at) - t0) / 1000);

	test_begin("mod_delayed_work moves a pending item", 10);
	t0 = test_now_ns();
	kblockd_schedule_delayed_work(&dw, 5000);
	kblockd_mod_delayed_work(&dw, 20);
	wait_runs(2);
	CHECK_MSG(atomic_load(&ran_at) - t0 < 4000 * 1000000ULL,
		  "ran after %llu ms: the new time was not taken",
		  (unsigned long long)(atomic_load(&ran_at) - t0) / 1000000);

	test_begin("flush_work waits for a due item", 10);
	INIT_WORK(&w, count_run);
	kblockd_schedule_work(&w);
	flush_work(&w);
	CHECK_MSG(atomic_load(&runs) == 3, "%d runs after the flush, want 3",
		  atomic_load(&runs));
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child_main(atoi(argv[2]), atoi(argv[3]));
	test_init(0);
	test_policy();
	test_queueing();
	return test_report();
}
