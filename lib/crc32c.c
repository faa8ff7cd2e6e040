// SPDX-License-Identifier: MIT
/*
 * CRC-32C: the SSE4.2 crc32 instruction when the CPU has it, else
 * slicing-by-8 (eight 256-entry tables, one 64-bit word per step).
 *
 * The tables and the choice are made by a constructor, before main() and
 * any thread, so crc32c() needs no lock and no "initialised?" test.
 */
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82f63b78u	/* 0x1EDC6F41, bit-reversed */

static uint32_t crc32c_table[8][256];
static uint32_t (*crc32c_fn)(uint32_t crc, const void *buf, size_t len);

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	for (; len && ((uintptr_t)p & 7); len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	for (; len >= 8; len -= 8, p += 8) {	/* little-endian words */
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^
		      crc32c_table[6][(w >> 8) & 0xff] ^
		      crc32c_table[5][(w >> 16) & 0xff] ^
		      crc32c_table[4][(w >> 24) & 0xff] ^
		      crc32c_table[3][(w >> 32) & 0xff] ^
		      crc32c_table[2][(w >> 40) & 0xff] ^
		      crc32c_table[1][(w >> 48) & 0xff] ^
		      crc32c_table[0][w >> 56];
	}
	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_fn(crc, buf, len);
}

const char *crc32c_impl(void)
{
	return crc32c_fn == crc32c_sw ? "slicing-by-8" : "sse4.2";
}

__attribute__((constructor))
static void crc32c_init(void)
{
	for (unsigned int i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][i] = c;
	}
	/* table k: the byte's effect after k more zero bytes */
	for (unsigned int i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc32c_table[k][i] = (crc32c_table[k - 1][i] >> 8) ^
				crc32c_table[0][crc32c_table[k - 1][i] & 0xff];
	crc32c_fn = crc32c_sw;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		crc32c_fn = crc32c_hw;
#endif
}

/* The CRC catalogue's check value and RFC 3720's iSCSI vectors (B.4). */
static int crc32c_check(uint32_t (*fn)(uint32_t, const void *, size_t))
{
	uint8_t buf[32];

	if (fn(0, "123456789", 9) != 0xe3069283u)
		return -1;
	memset(buf, 0, sizeof(buf));
	if (fn(0, buf, sizeof(buf)) != 0x8a9136aau)
		return -1;
	memset(buf, 0xff, sizeof(buf));
	if (fn(0, buf, sizeof(buf)) != 0x62a8ab43u)
		return -1;
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	if (fn(0, buf, sizeof(buf)) != 0x46dd794eu)
		return -1;
	/* unaligned start and a tail: every loop of both versions runs */
	return fn(fn(0, buf, 3), buf + 3, 26) == fn(0, buf, 29) ? 0 : -1;
}

int crc32c_selftest(void)
{
	if (crc32c_check(crc32c_sw))
		return -1;
	return crc32c_fn == crc32c_sw ? 0 : crc32c_check(crc32c_fn);
}
