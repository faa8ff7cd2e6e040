/* SPDX-License-Identifier: MIT */
/*
 * Compiler helpers shared by the whole tree: branch hints, the kernel's
 * READ_ONCE/WRITE_ONCE spelled as C11 relaxed atomics, container_of and
 * cache-line alignment.
 */
#ifndef BLKSTACK_LIB_COMPILER_H
#define BLKSTACK_LIB_COMPILER_H

#include <stddef.h>
#include <stdatomic.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define SMP_CACHE_BYTES	64
#define ____cacheline_aligned __attribute__((aligned(SMP_CACHE_BYTES)))
#define __maybe_unused	__attribute__((unused))
#define __cold		__attribute__((cold))
#define noinline	__attribute__((noinline))
/* for a hot helper the compiler would outline (and spill its state) */
#ifndef __always_inline	/* glibc's <sys/cdefs.h> has the same */
#define __always_inline	inline __attribute__((always_inline))
#endif
#define __noreturn	__attribute__((noreturn))

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define min(a, b)	((a) < (b) ? (a) : (b))
#define max(a, b)	((a) > (b) ? (a) : (b))
#define min_t(t, a, b)	((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)	((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define clamp(v, lo, hi) min(max(v, lo), hi)

/* Plain loads/stores of shared words that need no ordering. */
#define READ_ONCE(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/*
 * ThreadSanitizer does not model fences (and gcc refuses them under
 * -fsanitize=thread): there, a full barrier is a seq_cst read-modify-write
 * of one shared word, which orders every smp_mb() against every other.
 */
#if defined(__SANITIZE_THREAD__)
extern _Atomic unsigned long __smp_mb_word;
#define smp_mb()	((void)atomic_fetch_add(&__smp_mb_word, 0))
#else
#define smp_mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#define BUILD_BUG_ON(cond) _Static_assert(!(cond), #cond)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
