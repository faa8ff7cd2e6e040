/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
 * checksum of iSCSI, ext4 metadata, btrfs and fio's verify=crc32c.
 *
 * Unlike the kernel's crc32c(), the pre- and post-inversion are inside:
 * start from 0, and crc32c(crc32c(0, a, n), b, m) is the CRC of a then b.
 * The SSE4.2 instruction is used when the CPU has it (checked at run time),
 * else slicing-by-8 tables.
 */
#ifndef BLKSTACK_LIB_CRC32C_H
#define BLKSTACK_LIB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of @len bytes at @buf, continuing @crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table version, whatever the CPU has; for tests. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* "sse4.2" or "slicing-by-8": what crc32c() runs. */
const char *crc32c_impl(void);

/* Check both versions against known vectors: 0, or -1 if one is wrong. */
int crc32c_selftest(void);

#endif
