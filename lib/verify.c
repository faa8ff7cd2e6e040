// SPDX-License-Identifier: MIT
/*
 * Verify blocks: fill and check the crc32c format, parse, fill and check
 * a pattern. The messages name the first thing that differs, with the
 * expected and the found value, for a report that points at the bug.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crc32c.h"
#include "prandom.h"
#include "verify.h"

void verify_fill(void *buf, size_t len, uint64_t off, uint64_t seed)
{
	struct verify_hdr *h = buf;
	uint64_t *p = (uint64_t *)(h + 1);
	uint64_t s = splitmix64(seed ^ off) | 1;
	size_t n = (len - sizeof(*h)) / 8;

	for (size_t i = 0; i < n; i++)
		p[i] = prandom_u64(&s);
	h->magic = VERIFY_MAGIC;
	h->len = (uint32_t)len;
	h->offset = off;
	h->seed = seed;
	h->pad = 0;
	h->crc32c = crc32c(0, h + 1, len - sizeof(*h));
}

int verify_check(const void *buf, size_t len, uint64_t off, uint64_t seed,
		 char *why, size_t why_len)
{
	const struct verify_hdr *h = buf;
	uint32_t crc;

	if (h->magic != VERIFY_MAGIC) {
		snprintf(why, why_len, "header magic: expected 0x%08x, got 0x%08x",
			 VERIFY_MAGIC, h->magic);
	} else if (h->offset != off) {
		snprintf(why, why_len, "header offset: expected %" PRIu64 ", got %" PRIu64,
			 off, h->offset);
	} else if (h->len != len) {
		snprintf(why, why_len, "header length: expected %" PRIu64 ", got %u",
			 (uint64_t)len, h->len);
	} else if (h->seed != seed) {
		snprintf(why, why_len, "header seed: expected 0x%" PRIx64 ", got 0x%" PRIx64,
			 seed, h->seed);
	} else {
		crc = crc32c(0, h + 1, len - sizeof(*h));
		if (crc == h->crc32c)
			return 0;
		snprintf(why, why_len, "crc32c: expected 0x%08x, got 0x%08x",
			 h->crc32c, crc);
	}
	return -EILSEQ;
}

static int verify_hexval(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int verify_pattern_hex(const char *s, size_t n, uint8_t *pat,
			      unsigned int *pat_len)
{
	size_t odd = n & 1;

	for (size_t i = 0; i < n; i++)
		if (verify_hexval((unsigned char)s[i]) < 0)
			return -EINVAL;
	*pat_len = (unsigned int)((n + 1) / 2);
	for (size_t i = 0; i < *pat_len; i++) {
		size_t hi = 2 * i - odd;	/* wraps for a leading half byte */
		int h = i || !odd ? verify_hexval((unsigned char)s[hi]) : 0;

		pat[i] = (uint8_t)(h << 4 | verify_hexval((unsigned char)s[hi + 1]));
	}
	return 0;
}

int verify_pattern_parse(const char *s, uint8_t *pat, unsigned int *pat_len)
{
	size_t n = strlen(s);
	unsigned long v;
	char *end;

	if (!strncasecmp(s, "0x", 2) && n > 2 &&
	    n - 2 <= 2 * VERIFY_MAX_PATTERN)
		return verify_pattern_hex(s + 2, n - 2, pat, pat_len);
	if (n > 2 && n - 2 <= VERIFY_MAX_PATTERN && (*s == '"' || *s == '\'') &&
	    s[n - 1] == *s) {
		*pat_len = (unsigned int)(n - 2);
		memcpy(pat, s + 1, n - 2);
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)*s) || errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*pat_len = 4;
	for (int i = 0; i < 4; i++)
		pat[i] = (uint8_t)(v >> (8 * i));
	return 0;
}

void verify_pattern_fill(void *buf, size_t len, const uint8_t *pat,
			 unsigned int pat_len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = pat[i % pat_len];
}

int verify_pattern_check(const void *buf, const void *expect, size_t len,
			 uint64_t off, char *why, size_t why_len)
{
	const uint8_t *got = buf, *want = expect;

	if (!memcmp(got, want, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (got[i] == want[i])
			continue;
		snprintf(why, why_len, "byte %zu (offset %" PRIu64 "): expected 0x%02x, got 0x%02x",
			 i, off + i, want[i], got[i]);
		break;
	}
	return -EILSEQ;
}
