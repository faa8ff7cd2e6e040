/* SPDX-License-Identifier: MIT */
/*
 * BUG_ON/WARN_ON family. These are for broken internal invariants only,
 * never for bad input: input gets an error code and a message.
 *
 * BUG prints file:line, function, the condition and a backtrace, runs the
 * registered state dumper (the queue involved, if a caller set one) and
 * aborts. WARN prints the same and returns the condition so it can be used
 * in an if (). WARN_ON_ONCE fires once per call site; WARN_RATELIMIT at most
 * ten times a second per call site.
 */
#ifndef BLKSTACK_LIB_BUG_H
#define BLKSTACK_LIB_BUG_H

#include <stdbool.h>
#include "compiler.h"

__cold __noreturn void __bug(const char *file, int line, const char *func,
			     const char *cond);
__cold void __warn(const char *file, int line, const char *func,
		   const char *cond);
bool __warn_ratelimit_ok(long long *last_ns, int *count);

/*
 * A thread may name the object a BUG should dump (typically the request
 * queue it is working on). The dumper writes to stderr.
 */
typedef void (*bug_dump_fn)(void *arg);
void bug_set_dumper(bug_dump_fn fn, void *arg);

#define BUG() __bug(__FILE__, __LINE__, __func__, "BUG()")

#define BUG_ON(cond)							\
	do {								\
		if (unlikely(cond))					\
			__bug(__FILE__, __LINE__, __func__, #cond);	\
	} while (0)

#define WARN_ON(cond)							\
	({								\
		bool __c = !!(cond);					\
		if (unlikely(__c))					\
			__warn(__FILE__, __LINE__, __func__, #cond);	\
		unlikely(__c);						\
	})

#define WARN_ON_ONCE(cond)						\
	({								\
		static _Atomic bool __warned;				\
		bool __c = !!(cond);					\
		if (unlikely(__c) && !atomic_exchange(&__warned, true))	\
			__warn(__FILE__, __LINE__, __func__, #cond);	\
		unlikely(__c);						\
	})

#define WARN_RATELIMIT(cond)						\
	({								\
		static long long __last;				\
		static int __count;					\
		bool __c = !!(cond);					\
		if (unlikely(__c) && __warn_ratelimit_ok(&__last, &__count)) \
			__warn(__FILE__, __LINE__, __func__, #cond);	\
		unlikely(__c);						\
	})

/* Number of WARNs fired so far; tests assert on it. */
unsigned long bug_warn_count(void);

#endif
