// SPDX-License-Identifier: MIT
/*
 * The option-table parser. Messages name the argument as given and list
 * what would have been valid, so a typo needs no trip to --help.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "options.h"

int opts_err(const struct opt_table *t, const char *arg, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", t->prog, arg, what);
	return -EINVAL;
}

void opts_usage(const struct opt_table *t, FILE *f)
{
	for (size_t i = 0; i < t->nr; i++)
		fprintf(f, "  --%-22s %s\n", t->defs[i].name, t->defs[i].help);
}

int opt_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtp";
	const char *u;
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, strncasecmp(s, "0x", 2) ? 10 : 16);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, tolower((unsigned char)*end));
		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (!strcasecmp(end, "b") || !strcasecmp(end, "ib"))
			end += strlen(end);
		if (*end || v > (UINT64_MAX >> shift))
			return -EINVAL;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

/* @bare: nanoseconds per unit of a number without a suffix */
static int opt_parse_time_unit(const char *s, uint64_t *ns, uint64_t bare)
{
	const struct { const char *sfx; uint64_t mul; } units[] = {
		{ "", bare }, { "s", 1000000000ULL },
		{ "ms", 1000000ULL }, { "us", 1000ULL },
		{ "m", 60000000000ULL }, { "h", 3600000000000ULL },
	};
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	for (size_t i = 0; !errno && i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].sfx))
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -EINVAL;
		*ns = v * units[i].mul;
		return 0;
	}
	return -EINVAL;
}

int opt_parse_time(const char *s, uint64_t *ns)
{
	return opt_parse_time_unit(s, ns, 1000000000ULL);
}

static int opt_set_enum(const struct opt_table *t, const struct opt_def *d,
			const char *val, const char *arg)
{
	char msg[256] = "valid values are ";
	const char *want = val;
	int idx = 0;

	for (int i = 0; d->vals[i]; i++) {	/* aliases first */
		const char *eq = strchr(d->vals[i], '=');

		size_t n = eq ? (size_t)(eq - d->vals[i]) : 0;

		if (eq && !strncmp(val, d->vals[i], n) && !val[n])
			want = eq + 1;
	}
	for (int i = 0; d->vals[i]; i++) {
		if (strchr(d->vals[i], '='))
			continue;
		if (!strcmp(want, d->vals[i])) {
			*(int *)d->dst = idx;
			return 0;
		}
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%s%s",
			 idx ? ", " : "", d->vals[i]);
		idx++;
	}
	return opts_err(t, arg, msg);
}

static int opt_set_uint(const struct opt_table *t, const struct opt_def *d,
			const char *val, const char *arg)
{
	unsigned long v;
	char msg[128];
	char *end;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (!isdigit((unsigned char)*val) || errno || *end || v < d->lo ||
	    v > d->hi) {
		snprintf(msg, sizeof(msg),
			 "must be a whole number from %u to %u", d->lo, d->hi);
		return opts_err(t, arg, msg);
	}
	*(unsigned int *)d->dst = (unsigned int)v;
	return 0;
}

static int opt_set(const struct opt_table *t, const struct opt_def *d,
		   const char *val, const char *arg)
{
	char msg[128];

	if (!val && d->type != OPT_BOOL) {
		snprintf(msg, sizeof(msg), "needs a value (--%s=VALUE)",
			 d->name);
		return opts_err(t, arg, msg);
	}
	if (d->seen)
		*d->seen = true;
	switch (d->type) {
	case OPT_STR:
		*(const char **)d->dst = val;
		return 0;
	case OPT_BOOL:
		if (val && strcmp(val, "0") && strcmp(val, "1"))
			return opts_err(t, arg, "valid values are 0, 1");
		*(bool *)d->dst = !val || *val == '1';
		return 0;
	case OPT_UINT:
		return opt_set_uint(t, d, val, arg);
	case OPT_SIZE:
		if (opt_parse_size(val, d->dst))
			return opts_err(t, arg, "expected a size like 4096, 4k, "
					"1m or 2g (k/m/g/t are powers of 1024)");
		return 0;
	case OPT_TIME:
		if (opt_parse_time(val, d->dst))
			return opts_err(t, arg, "expected a time like 10 (seconds), "
					"10s, 500ms, 2m or 1h");
		return 0;
	case OPT_TIME_US:
		if (opt_parse_time_unit(val, d->dst, 1000ULL))
			return opts_err(t, arg, "expected a time like 100 (microseconds), "
					"100us, 5ms or 1s");
		return 0;
	case OPT_ENUM:
		return opt_set_enum(t, d, val, arg);
	}
	return 0;
}

/* Option names match with '-' and '_' taken as the same character. */
static const struct opt_def *opt_find(const struct opt_table *t,
				      const char *name, size_t len)
{
	for (size_t i = 0; i < t->nr; i++) {
		const char *n = t->defs[i].name;
		size_t k;

		for (k = 0; k < len && n[k]; k++)
			if (n[k] != name[k] && !(strchr("-_", n[k]) &&
						 strchr("-_", name[k])))
				break;
		if (k == len && !n[k])
			return &t->defs[i];
	}
	return NULL;
}

int opts_set_one(const struct opt_table *t, const char *name, size_t len,
		 const char *val, const char *arg)
{
	const struct opt_def *d = opt_find(t, name, len);

	if (!d && !strncmp(arg, "--", 2)) {
		fprintf(stderr, "%s: unknown option --%.*s (%s --help lists them)\n",
			t->prog, (int)len, name, t->prog);
		return -ENOENT;
	}
	if (!d) {
		fprintf(stderr, "%s: %s: unknown option %.*s (%s --help lists them)\n",
			t->prog, arg, (int)len, name, t->prog);
		return -ENOENT;
	}
	if (d->once && d->seen && *d->seen)
		return opts_err(t, arg, d->once);
	return opt_set(t, d, val, arg);
}

int opts_parse(const struct opt_table *t, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct opt_def *d;
		int ret;

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return OPTS_HELP;
		if (!strcmp(a, "--version"))
			return OPTS_VERSION;
		if (strncmp(a, "--", 2))
			return opts_err(t, a, t->no_words ? t->no_words :
					"unexpected argument (options are --NAME=VALUE)");
		d = opt_find(t, a + 2, len - 2);
		if (!d) {
			fprintf(stderr, "%s: unknown option %.*s (%s --help lists them)\n",
				t->prog, (int)len, a, t->prog);
			return -EINVAL;
		}
		if (d->once && d->seen && *d->seen)
			return opts_err(t, a, d->once);
		ret = opt_set(t, d, eq ? eq + 1 : NULL, a);
		if (ret)
			return ret;
	}
	return 0;
}
