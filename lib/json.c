// SPDX-License-Identifier: MIT
/*
 * The JSON writer: fio's layout, no buffering of its own (stdio's).
 * Misuse (a key in an array, none in an object, closing the wrong kind)
 * is a bug in the caller: WARN once, and still write valid JSON.
 */
#include <inttypes.h>
#include <math.h>

#include "bug.h"
#include "json.h"

void json_init(struct json_writer *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->comma = false;
	w->arrays = 0;
}

static bool json_in_array(const struct json_writer *w)
{
	return w->depth && (w->arrays >> (w->depth - 1)) & 1;
}

static void json_write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Start a member: the separator, a new line and indent, and the key. */
static void json_key(struct json_writer *w, const char *key)
{
	bool keyed = w->depth && !json_in_array(w);

	WARN_ON_ONCE(keyed != (key != NULL));
	if (w->depth)
		fprintf(w->f, "%s\n%*s", w->comma ? "," : "",
			2 * (int)w->depth, "");
	if (keyed) {
		json_write_string(w->f, key ? key : "");
		fputs(" : ", w->f);
	}
	w->comma = true;
}

static void json_open(struct json_writer *w, const char *key, bool array)
{
	json_key(w, key);
	fputc(array ? '[' : '{', w->f);
	if (WARN_ON_ONCE(w->depth >= JSON_MAX_DEPTH))
		return;
	w->arrays &= ~(1ULL << w->depth);
	w->arrays |= (uint64_t)array << w->depth;
	w->depth++;
	w->comma = false;
}

static void json_close(struct json_writer *w, bool array)
{
	if (WARN_ON_ONCE(!w->depth || json_in_array(w) != array))
		return;
	w->depth--;
	fprintf(w->f, "\n%*s%c", 2 * (int)w->depth, "", array ? ']' : '}');
	if (!w->depth)		/* a whole document: end its line */
		fputc('\n', w->f);
	w->comma = true;
}

void json_open_object(struct json_writer *w, const char *key)
{
	json_open(w, key, false);
}

void json_close_object(struct json_writer *w)
{
	json_close(w, false);
}

void json_open_array(struct json_writer *w, const char *key)
{
	json_open(w, key, true);
}

void json_close_array(struct json_writer *w)
{
	json_close(w, true);
}

void json_string(struct json_writer *w, const char *key, const char *s)
{
	json_key(w, key);
	json_write_string(w->f, s);
}

void json_u64(struct json_writer *w, const char *key, uint64_t v)
{
	json_key(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

void json_s64(struct json_writer *w, const char *key, int64_t v)
{
	json_key(w, key);
	fprintf(w->f, "%" PRId64, v);
}

void json_double(struct json_writer *w, const char *key, double v)
{
	json_key(w, key);
	fprintf(w->f, "%f", isfinite(v) ? v : 0);
}

void json_bool(struct json_writer *w, const char *key, bool v)
{
	json_key(w, key);
	fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w, const char *key)
{
	json_key(w, key);
	fputs("null", w->f);
}
