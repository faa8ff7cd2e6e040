/* SPDX-License-Identifier: MIT */
/*
 * A streaming JSON writer laid out like fio's output: two spaces of indent
 * per level, one member per line, "key" : value, doubles as "%f".
 *
 * Members of an object take a key, elements of an array pass NULL. The
 * top-level value starts where the stream is and ends with a newline when
 * it closes. It writes to a FILE *; for a buffer, open_memstream() or
 * fmemopen() one.
 *
 *	struct json_writer w;
 *
 *	json_init(&w, stdout);
 *	json_open_object(&w, NULL);
 *	json_string(&w, "name", "nullb0");
 *	json_open_array(&w, "iops");
 *	json_u64(&w, NULL, 1000);
 *	json_close_array(&w);
 *	json_close_object(&w);
 */
#ifndef BLKSTACK_LIB_JSON_H
#define BLKSTACK_LIB_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH	64

struct json_writer {
	FILE *f;
	unsigned int depth;
	bool comma;		/* the current container has a member */
	uint64_t arrays;	/* bit d: the container at depth d+1 is [] */
};

void json_init(struct json_writer *w, FILE *f);

void json_open_object(struct json_writer *w, const char *key);
void json_close_object(struct json_writer *w);
void json_open_array(struct json_writer *w, const char *key);
void json_close_array(struct json_writer *w);

/* "s" with '"', '\\' and control characters escaped; bytes >= 0x80 as is. */
void json_string(struct json_writer *w, const char *key, const char *s);
void json_u64(struct json_writer *w, const char *key, uint64_t v);
void json_s64(struct json_writer *w, const char *key, int64_t v);
/* fio's "%f"; NaN and infinities (not JSON) are written as 0. */
void json_double(struct json_writer *w, const char *key, double v);
void json_bool(struct json_writer *w, const char *key, bool v);
void json_null(struct json_writer *w, const char *key);

#endif
