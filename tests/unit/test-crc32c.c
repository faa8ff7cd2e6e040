// SPDX-License-Identifier: MIT
/*
 * lib/crc32c.c: known vectors (the CRC catalogue's check value, RFC 3720's
 * iSCSI vectors), both implementations against a bit-at-a-time reference
 * at every length and alignment that reaches each loop, chaining, and the
 * choice of implementation.
 */
#include <string.h>

#include "lib/crc32c.h"
#include "testlib.h"

/* The definition, one bit at a time: slow, obviously right. */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
	}
	return ~crc;
}

typedef uint32_t (*crc_fn)(uint32_t crc, const void *buf, size_t len);

/* RFC 3720 B.4: a SCSI read command PDU. */
static const uint8_t iscsi_read_pdu[48] = {
	0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
	0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
	0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void test_vectors(const char *name, crc_fn fn)
{
	uint8_t buf[32];

	test_begin(name, 10);
	CHECK_EQ_U64(fn(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ_U64(fn(0, "", 0), 0);
	CHECK_EQ_U64(fn(0x12345678, "", 0), 0x12345678);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ_U64(fn(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ_U64(fn(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK_EQ_U64(fn(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK_EQ_U64(fn(0, buf, 32), 0x113fdb5cu);
	CHECK_EQ_U64(fn(0, iscsi_read_pdu, 48), 0xd9963a56u);
}

/* Lengths 0..300 at offsets 0..15: head, 8-byte body and tail loops. */
static void test_against_ref(const char *name, crc_fn fn)
{
	static uint8_t buf[512];
	uint32_t s = 1;

	test_begin(name, 30);
	for (size_t i = 0; i < sizeof(buf); i++) {
		s = s * 1103515245u + 12345u;
		buf[i] = (uint8_t)(s >> 16);
	}
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len <= 300; len++)
			if (!CHECK_MSG(fn(7, buf + off, len) ==
				       crc32c_ref(7, buf + off, len),
				       "off %zu len %zu", off, len))
				return;
}

/* The inversions are inside: crc(a ++ b) == crc(crc(a), b) at any cut. */
static void test_chaining(void)
{
	static const char text[] = "The quick brown fox jumps over the lazy dog, "
				   "twice: the quick brown fox jumps over the lazy dog.";
	size_t len = sizeof(text) - 1;
	uint32_t whole = crc32c(0, text, len);

	test_begin("chaining", 10);
	CHECK_EQ_U64(whole, crc32c_ref(0, (const uint8_t *)text, len));
	for (size_t cut = 0; cut <= len; cut++)
		CHECK_MSG(crc32c(crc32c(0, text, cut), text + cut, len - cut) ==
			  whole, "cut at %zu", cut);
	for (size_t cut = 0; cut <= len; cut += 7)
		CHECK(crc32c_sw(crc32c(0, text, cut), text + cut, len - cut) ==
		      whole);
}

static void test_impl(void)
{
	test_begin("implementation", 10);
	CHECK_EQ_INT(crc32c_selftest(), 0);
#if defined(__x86_64__)
	CHECK(!strcmp(crc32c_impl(), __builtin_cpu_supports("sse4.2") ?
				     "sse4.2" : "slicing-by-8"));
#else
	CHECK(!strcmp(crc32c_impl(), "slicing-by-8"));
#endif
	fprintf(stderr, "crc32c() runs %s\n", crc32c_impl());
}

int main(void)
{
	test_init(2);
	test_vectors("vectors: crc32c", crc32c);
	test_vectors("vectors: crc32c_sw", crc32c_sw);
	test_against_ref("reference: crc32c", crc32c);
	test_against_ref("reference: crc32c_sw", crc32c_sw);
	test_chaining();
	test_impl();
	return test_report();
}
