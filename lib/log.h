/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr: "blkstack: <level>: message". */
#ifndef BLKSTACK_LIB_LOG_H
#define BLKSTACK_LIB_LOG_H

enum log_level { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

void blk_log(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void blk_log_set_level(enum log_level level);
enum log_level blk_log_get_level(void);

#define pr_err(...)	blk_log(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)	blk_log(LOG_WARNING, __VA_ARGS__)
#define pr_notice(...)	blk_log(LOG_NOTICE, __VA_ARGS__)
#define pr_info(...)	blk_log(LOG_INFO, __VA_ARGS__)
#define pr_debug(...)	blk_log(LOG_DEBUG, __VA_ARGS__)

#endif
