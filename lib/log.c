// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static enum log_level log_level = LOG_WARNING;
static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

__attribute__((constructor)) static void log_init(void)
{
	const char *env = getenv("BLKSTACK_LOG_LEVEL");

	if (env && *env >= '0' && *env <= '4')
		log_level = (enum log_level)(*env - '0');
}

void blk_log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level blk_log_get_level(void)
{
	return log_level;
}

void blk_log(enum log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line so lines from threads do not interleave */
	fprintf(stderr, "blkstack: %s: %s\n", level_names[level], line);
}
