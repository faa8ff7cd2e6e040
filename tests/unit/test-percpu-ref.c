// SPDX-License-Identifier: MIT
/*
 * The queue usage counter: tryget_live/put from many threads while
 * another kills, drains and resurrects it. The drain must never finish
 * while a successful getter still holds its reference (the property the
 * membarrier scheme exists for), with the fast path and with the atomic
 * fallback (BLKSTACK_NO_MEMBARRIER=1 in a re-executed child).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/percpu-ref.h"
#include "lib/time.h"

#define NR_THREADS	6

static struct percpu_ref ref;
static _Atomic int holders;		/* getters inside their section */
static _Atomic int stop;
static _Atomic long got, refused, violations;

static void *getter(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (!percpu_ref_tryget_live(&ref)) {
			atomic_fetch_add(&refused, 1);
			continue;
		}
		atomic_fetch_add(&holders, 1);
		atomic_fetch_add(&got, 1);
		for (volatile int i = 0; i < 50; i++)
			;
		atomic_fetch_sub(&holders, 1);
		percpu_ref_put(&ref);
	}
	return NULL;
}

static int run(unsigned int seconds)
{
	pthread_t t[NR_THREADS];
	uint64_t end = ktime_get_ns() + seconds * NSEC_PER_SEC;
	unsigned long drains = 0;

	percpu_ref_init(&ref);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_create(&t[i], NULL, getter, NULL);
	while (ktime_get_ns() < end) {
		percpu_ref_kill(&ref);
		percpu_ref_wait_zero(&ref);
		/* drained: no getter may be inside its section */
		if (atomic_load(&holders) != 0)
			atomic_fetch_add(&violations, 1);
		usleep(50);
		if (atomic_load(&holders) != 0)
			atomic_fetch_add(&violations, 1);
		drains++;
		percpu_ref_resurrect(&ref);
		usleep(100);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);
	printf("%s path: %lu drains, %ld gets, %ld refused, %ld violations, "
	       "final sum %ld\n", percpu_ref_fast_path() ? "membarrier" :
	       "atomic", drains, atomic_load(&got), atomic_load(&refused),
	       atomic_load(&violations), percpu_ref_sum(&ref));
	if (atomic_load(&violations) || percpu_ref_sum(&ref) != 0 ||
	    !drains || !atomic_load(&got) || !atomic_load(&refused))
		return 1;
	percpu_ref_exit(&ref);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int seconds = 2;
	int status;
	pid_t pid;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	seconds = 1;
#endif
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return run(seconds);
	if (run(seconds))
		return 1;
	/* the same with the atomic fallback, in a fresh process */
	pid = fork();
	if (pid == 0) {
		setenv("BLKSTACK_NO_MEMBARRIER", "1", 1);
		execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
