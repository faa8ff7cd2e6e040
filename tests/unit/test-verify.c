// SPDX-License-Identifier: MIT
/*
 * lib/verify.c: a filled block checks; each kind of damage (payload,
 * header magic, offset, length, seed) fails with a message naming it;
 * the payload depends only on (seed, offset); fio's verify_pattern forms
 * parse, and a pattern mismatch names the byte.
 */
#include <errno.h>
#include <string.h>

#include "lib/compiler.h"
#include "lib/verify.h"
#include "testlib.h"

static uint8_t a[4096], b[4096];

/* verify_check() of @buf fails, and its message starts with @why. */
static void check_bad(const void *buf, size_t len, uint64_t off,
		      uint64_t seed, const char *why)
{
	char msg[160] = "";

	CHECK_MSG(verify_check(buf, len, off, seed, msg, sizeof(msg)) == -EILSEQ &&
		  !strncmp(msg, why, strlen(why)), "'%s', wanted '%s...'", msg, why);
}

static void test_crc(void)
{
	char msg[160];

	test_begin("crc32c blocks", 10);
	verify_fill(a, sizeof(a), 1 << 20, 0x89);
	CHECK_EQ_INT(verify_check(a, sizeof(a), 1 << 20, 0x89, msg, sizeof(msg)), 0);
	verify_fill(b, sizeof(b), 1 << 20, 0x89);
	CHECK(!memcmp(a, b, sizeof(a)));	/* only (seed, offset) matter */
	verify_fill(b, sizeof(b), 2 << 20, 0x89);
	CHECK(memcmp(a + 64, b + 64, sizeof(a) - 64));
	check_bad(b, sizeof(b), 1 << 20, 0x89,
		  "header offset: expected 1048576, got 2097152");
	check_bad(a, sizeof(a), 1 << 20, 0x8a,
		  "header seed: expected 0x8a, got 0x89");
	check_bad(a, 512, 1 << 20, 0x89, "header length: expected 512, got 4096");
	memcpy(b, a, sizeof(a));
	b[3000] ^= 4;
	check_bad(b, sizeof(b), 1 << 20, 0x89, "crc32c: expected 0x");
	memset(b, 0, sizeof(struct verify_hdr));
	check_bad(b, sizeof(b), 1 << 20, 0x89,
		  "header magic: expected 0x76626b62, got 0x00000000");
	verify_fill(a, 512, 0, 1);	/* the smallest block */
	CHECK_EQ_INT(verify_check(a, 512, 0, 1, msg, sizeof(msg)), 0);
}

static void test_pattern_parse(void)
{
	static const struct {
		const char *s;
		unsigned int len;
		uint8_t pat[4];
	} good[] = {
		{ "0xabcd", 2, { 0xab, 0xcd } },
		{ "0X5aa5f00f", 4, { 0x5a, 0xa5, 0xf0, 0x0f } },
		{ "0x123", 2, { 0x01, 0x23 } },	/* odd: a leading half byte */
		{ "0xf", 1, { 0x0f } },
		{ "'ab'", 2, { 'a', 'b' } },
		{ "\"xyz\"", 3, { 'x', 'y', 'z' } },
		{ "305419896", 4, { 0x78, 0x56, 0x34, 0x12 } },	/* 0x12345678 */
		{ "0", 4, { 0, 0, 0, 0 } },
	};
	static const char *const bad[] = { "0x", "0xzz", "4294967296", "abc",
					   "'a", "''", "\"a'", "-1", "" };
	uint8_t pat[VERIFY_MAX_PATTERN];
	char hex[2 * VERIFY_MAX_PATTERN + 4] = "0x";
	unsigned int len;

	test_begin("verify_pattern", 10);
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		CHECK_MSG(!verify_pattern_parse(good[i].s, pat, &len) &&
			  len == good[i].len && !memcmp(pat, good[i].pat, len),
			  "%s", good[i].s);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_MSG(verify_pattern_parse(bad[i], pat, &len) == -EINVAL,
			  "%s", bad[i]);
	memset(hex + 2, 'e', 2 * VERIFY_MAX_PATTERN);	/* the longest */
	CHECK(!verify_pattern_parse(hex, pat, &len) && len == VERIFY_MAX_PATTERN);
	hex[2 * VERIFY_MAX_PATTERN + 2] = 'e';
	CHECK_EQ_INT(verify_pattern_parse(hex, pat, &len), -EINVAL);
}

static void test_pattern_blocks(void)
{
	static const uint8_t pat[3] = { 1, 2, 3 };
	char msg[160];

	test_begin("pattern blocks", 10);
	verify_pattern_fill(a, sizeof(a), pat, 3);
	CHECK(a[0] == 1 && a[1] == 2 && a[2] == 3 && a[4095] == 4095 % 3 + 1);
	memcpy(b, a, sizeof(a));
	CHECK_EQ_INT(verify_pattern_check(b, a, sizeof(a), 8192, msg, sizeof(msg)), 0);
	b[1000] = 0xff;
	CHECK_EQ_INT(verify_pattern_check(b, a, sizeof(a), 8192, msg, sizeof(msg)),
		     -EILSEQ);
	CHECK_MSG(!strcmp(msg, "byte 1000 (offset 9192): expected 0x02, got 0xff"),
		  "%s", msg);
}

int main(void)
{
	test_init(2);
	test_crc();
	test_pattern_parse();
	test_pattern_blocks();
	return test_report();
}
