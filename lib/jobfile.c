// SPDX-License-Identifier: MIT
/*
 * The job-file and command-line section parser. It only splits and
 * records: whether an option exists and what its value means is the
 * program's business, so every entry keeps where it came from
 * ("job.fio:7") for the program's messages.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfile.h"

void jobfile_init(struct jobfile *jf)
{
	memset(jf, 0, sizeof(*jf));
}

void jobfile_free(struct jobfile *jf)
{
	for (size_t i = 0; i < jf->nr; i++) {
		free(jf->e[i].key);
		free(jf->e[i].val);
	}
	free(jf->e);
	jobfile_init(jf);
}

static int jf_err(struct jobfile *jf, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(jf->err, sizeof(jf->err), fmt, ap);
	va_end(ap);
	return err;
}

/* Append a copy of @key (@klen bytes) and @val (NULL or NUL-ended). */
static int jf_add(struct jobfile *jf, enum jobfile_kind kind, const char *key,
		  size_t klen, const char *val, const char *where)
{
	struct jobfile_entry *e;

	if (jf->nr == jf->alloc) {
		size_t n = jf->alloc ? 2 * jf->alloc : 16;
		void *p = realloc(jf->e, n * sizeof(*jf->e));

		if (!p)
			return jf_err(jf, -ENOMEM, "out of memory for the job list");
		jf->e = p;
		jf->alloc = n;
	}
	e = &jf->e[jf->nr];
	e->kind = kind;
	e->key = strndup(key, klen);
	e->val = val ? strdup(val) : NULL;
	if (!e->key || (val && !e->val)) {
		free(e->key);
		free(e->val);
		return jf_err(jf, -ENOMEM, "out of memory for the job list");
	}
	snprintf(e->where, sizeof(e->where), "%s", where);
	jf->nr++;
	return 0;
}

static bool jf_is_global(const char *name, size_t len)
{
	return len == 6 && !strncmp(name, "global", 6);
}

static bool jf_key_ok(const char *k, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)k[i]) && k[i] != '_' && k[i] != '-')
			return false;
	return true;
}

static char *jf_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = 0;
	return s;
}

/*
 * A comment starts at ';' or '#' at the start of a line or after a
 * blank: "bs=4k ; small" is bs=4k, while a value may still hold '#'.
 */
static void jf_strip_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if ((*p == ';' || *p == '#') &&
		    (p == s || isspace((unsigned char)p[-1]))) {
			*p = 0;
			return;
		}
	}
}

static int jf_section(struct jobfile *jf, char *line, const char *where)
{
	size_t len = strlen(line);
	char *name;

	if (line[len - 1] != ']')
		return jf_err(jf, -EINVAL, "%s: '%.60s': a section header is [global] or [JOBNAME]",
			      where, line);
	line[len - 1] = 0;
	name = jf_trim(line + 1);
	if (!*name || strchr(name, '[') || strchr(name, ']'))
		return jf_err(jf, -EINVAL, "%s: '[%.60s]': a section needs a name, like [global] or [reader]",
			      where, name);
	if (jf_is_global(name, strlen(name)))
		return jf_add(jf, JF_GLOBAL, name, strlen(name), NULL, where);
	return jf_add(jf, JF_JOB, name, strlen(name), NULL, where);
}

static int jf_option(struct jobfile *jf, char *line, const char *where)
{
	char *eq = strchr(line, '='), *key = line, *val = NULL;

	if (eq) {
		*eq = 0;
		key = jf_trim(line);
		val = jf_trim(eq + 1);
	}
	if (!jf_key_ok(key, strlen(key)))
		return jf_err(jf, -EINVAL, "%s: '%.60s%s%.60s': expected key=value, key, [global] or [JOBNAME]",
			      where, key, eq ? "=" : "", val ? val : "");
	return jf_add(jf, JF_OPTION, key, strlen(key), val, where);
}

static int jf_line(struct jobfile *jf, char *line, const char *where,
		   bool *in_section)
{
	jf_strip_comment(line);
	line = jf_trim(line);
	if (!*line)
		return 0;
	if (*line == '[') {
		*in_section = true;
		return jf_section(jf, line, where);
	}
	if (!*in_section)
		return jf_err(jf, -EINVAL, "%s: '%.60s' comes before any section; start with [global] or [JOBNAME]",
			      where, line);
	return jf_option(jf, line, where);
}

int jobfile_parse_buf(struct jobfile *jf, const char *path, const char *buf)
{
	char *copy = strdup(buf), *line, *next;
	bool in_section = false;
	unsigned int lineno = 0;
	int ret = 0;

	if (!copy)
		return jf_err(jf, -ENOMEM, "%s: out of memory", path);
	for (line = copy; line && !ret; line = next) {
		char where[128];

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		snprintf(where, sizeof(where), "%s:%u", path, ++lineno);
		ret = jf_line(jf, line, where, &in_section);
	}
	free(copy);
	if (!ret && !in_section)
		ret = jf_err(jf, -EINVAL, "%s: no sections: a job file has [global] and [JOBNAME] sections",
			     path);
	return ret;
}

int jobfile_parse_file(struct jobfile *jf, const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	int ret;

	if (!f)
		return jf_err(jf, -errno, "%s: cannot open the job file: %s",
			      path, strerror(errno));
	ret = getdelim(&buf, &len, 0, f) < 0 && ferror(f) ? -EIO : 0;
	fclose(f);
	if (ret) {
		free(buf);
		return jf_err(jf, ret, "%s: cannot read the job file", path);
	}
	ret = jobfile_parse_buf(jf, path, buf ? buf : "");
	free(buf);
	return ret;
}

/* One --key[=val] or --name=JOB argument. */
static int jf_arg(struct jobfile *jf, const char *a)
{
	const char *key = a + 2, *eq = strchr(key, '=');
	size_t len = eq ? (size_t)(eq - key) : strlen(key);
	char where[128];

	snprintf(where, sizeof(where), "%.127s", a);
	if (!jf_key_ok(key, len))
		return jf_err(jf, -EINVAL, "%s: expected --NAME=VALUE", where);
	if (len == 4 && !strncmp(key, "name", 4)) {
		if (!eq || !eq[1])
			return jf_err(jf, -EINVAL, "%s: needs a job name (--name=JOB)",
				      where);
		if (jf_is_global(eq + 1, strlen(eq + 1)))
			return jf_add(jf, JF_GLOBAL, eq + 1, 6, NULL, where);
		return jf_add(jf, JF_JOB, eq + 1, strlen(eq + 1), NULL, where);
	}
	return jf_add(jf, JF_OPTION, key, len, eq ? eq + 1 : NULL, where);
}

int jobfile_parse_args(struct jobfile *jf, int argc, char **argv)
{
	int nfiles = 0, ret = 0;
	const char **files = calloc((size_t)argc + 1, sizeof(*files));

	if (!files)
		return jf_err(jf, -ENOMEM, "out of memory");
	for (int i = 1; i < argc && !ret; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			ret = JOBFILE_HELP;
		else if (!strcmp(a, "--version"))
			ret = JOBFILE_VERSION;
		else if (!strncmp(a, "--", 2))
			ret = jf_arg(jf, a);
		else if (*a == '-' || !*a)
			ret = jf_err(jf, -EINVAL, "%.100s: unexpected argument (options are --NAME=VALUE, job files are FILE)",
				     a);
		else
			files[nfiles++] = a;
	}
	for (int i = 0; i < nfiles && !ret; i++)
		ret = jobfile_parse_file(jf, files[i]);
	free(files);
	return ret;
}
