/* SPDX-License-Identifier: MIT */
/*
 * Block contents that can be checked after a round trip through a device,
 * like fio's verify=crc32c and verify=pattern.
 *
 * crc32c: a header (magic, length, device offset, the run's seed, CRC-32C
 * of the rest) then pseudo-random bytes that depend only on (seed, offset).
 * Two writes of one block in flight at once carry the same bytes, so their
 * order cannot make a correct device fail; data from another offset or
 * another run fails on the header.
 *
 * pattern: the block is a short pattern repeated (fio's verify_pattern).
 */
#ifndef BLKSTACK_LIB_VERIFY_H
#define BLKSTACK_LIB_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define VERIFY_MAGIC		0x76626b62u	/* "bkbv" */
#define VERIFY_MAX_PATTERN	512

struct verify_hdr {
	uint32_t magic;
	uint32_t len;
	uint64_t offset;	/* byte offset on the device */
	uint64_t seed;		/* the run's seed: stale data fails */
	uint32_t crc32c;	/* of the bytes after the header */
	uint32_t pad;
};

/* Fill @len (> the header, a multiple of 8) bytes for device offset @off. */
void verify_fill(void *buf, size_t len, uint64_t off, uint64_t seed);
/*
 * 0 if @buf holds what verify_fill() wrote for (@off, @seed); else -EILSEQ
 * with the first difference (field, expected, got) in @why.
 */
int verify_check(const void *buf, size_t len, uint64_t off, uint64_t seed,
		 char *why, size_t why_len);

/*
 * fio's verify_pattern: "0xHEX" bytes (an odd digit count starts with a
 * half byte), a 'quoted' or "quoted" string, or a decimal 32-bit number,
 * little-endian. 0 and the pattern in @pat (VERIFY_MAX_PATTERN bytes),
 * or -EINVAL.
 */
int verify_pattern_parse(const char *s, uint8_t *pat, unsigned int *pat_len);
void verify_pattern_fill(void *buf, size_t len, const uint8_t *pat,
			 unsigned int pat_len);
/* 0 if @buf equals @expect; else -EILSEQ with the first bad byte in @why. */
int verify_pattern_check(const void *buf, const void *expect, size_t len,
			 uint64_t off, char *why, size_t why_len);

#endif
