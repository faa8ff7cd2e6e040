/* SPDX-License-Identifier: MIT */
/*
 * The NBD wire protocol: magics, option and command numbers, flags, error
 * values and the fixed parts of each message, as the protocol document
 * (github.com/NetworkBlockDevice/nbd, doc/proto.md) names them. Every
 * field is big-endian on the wire; the sizes below are wire sizes, and
 * messages are built and parsed field by field (no packed structs).
 */
#ifndef BLKSTACK_EXPORT_NBD_PROTO_H
#define BLKSTACK_EXPORT_NBD_PROTO_H

#include <stdint.h>

/* ---- handshake ---- */

#define NBD_INIT_MAGIC		0x4e42444d41474943ULL	/* "NBDMAGIC" */
#define NBD_OPTS_MAGIC		0x49484156454f5054ULL	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ULL

/* handshake flags (server, 16 bits) */
#define NBD_FLAG_FIXED_NEWSTYLE	(1U << 0)
#define NBD_FLAG_NO_ZEROES	(1U << 1)

/* client flags (32 bits) */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1U << 0)
#define NBD_FLAG_C_NO_ZEROES	(1U << 1)
#define NBD_FLAG_C_KNOWN	(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)

/* options */
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_PEEK_EXPORT	4	/* withdrawn */
#define NBD_OPT_STARTTLS	5
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_OPT_EXTENDED_HEADERS 11

/* option replies */
#define NBD_REP_ACK		1
#define NBD_REP_SERVER		2
#define NBD_REP_INFO		3
#define NBD_REP_META_CONTEXT	4
#define NBD_REP_FLAG_ERROR	(1U << 31)
#define NBD_REP_ERR_UNSUP	(NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY	(NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID	(NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM	(NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD	(NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN	(NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN	(NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG	(NBD_REP_FLAG_ERROR | 9)
#define NBD_REP_ERR_EXT_HEADER_REQD (NBD_REP_FLAG_ERROR | 10)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* transmission flags (16 bits) */
#define NBD_FLAG_HAS_FLAGS	(1U << 0)
#define NBD_FLAG_READ_ONLY	(1U << 1)
#define NBD_FLAG_SEND_FLUSH	(1U << 2)
#define NBD_FLAG_SEND_FUA	(1U << 3)
#define NBD_FLAG_ROTATIONAL	(1U << 4)
#define NBD_FLAG_SEND_TRIM	(1U << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1U << 6)
#define NBD_FLAG_SEND_DF	(1U << 7)
#define NBD_FLAG_CAN_MULTI_CONN	(1U << 8)
#define NBD_FLAG_SEND_RESIZE	(1U << 9)
#define NBD_FLAG_SEND_CACHE	(1U << 10)
#define NBD_FLAG_SEND_FAST_ZERO	(1U << 11)
#define NBD_FLAG_BLOCK_STAT_PAYLOAD (1U << 12)

/* ---- transmission ---- */

#define NBD_REQUEST_MAGIC	0x25609513U
#define NBD_EXTENDED_REQUEST_MAGIC 0x21e41c71U
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698U
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efU
#define NBD_EXTENDED_REPLY_MAGIC 0x6e8a278cU

/* command flags (16 bits) */
#define NBD_CMD_FLAG_FUA	(1U << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1U << 1)
#define NBD_CMD_FLAG_DF		(1U << 2)
#define NBD_CMD_FLAG_REQ_ONE	(1U << 3)
#define NBD_CMD_FLAG_FAST_ZERO	(1U << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN (1U << 5)

/* commands */
#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_CACHE		5
#define NBD_CMD_WRITE_ZEROES	6
#define NBD_CMD_BLOCK_STATUS	7
#define NBD_CMD_RESIZE		8

/* structured reply flags and chunk types */
#define NBD_REPLY_FLAG_DONE	(1U << 0)
#define NBD_REPLY_TYPE_NONE	0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR	((1U << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1U << 15) | 2)

/* error values on the wire (Linux numbers, fixed by the protocol) */
#define NBD_EPERM		1
#define NBD_EIO			5
#define NBD_ENOMEM		12
#define NBD_EINVAL		22
#define NBD_ENOSPC		28
#define NBD_EOVERFLOW		75
#define NBD_ENOTSUP		95
#define NBD_ESHUTDOWN		108

/* base:allocation extent flags */
#define NBD_STATE_HOLE		(1U << 0)
#define NBD_STATE_ZERO		(1U << 1)
#define NBD_META_BASE_ALLOCATION "base:allocation"

/* ---- wire sizes ---- */

#define NBD_OPT_HDR_LEN		16	/* magic, option, length */
#define NBD_OPT_REPLY_HDR_LEN	20	/* magic, option, type, length */
#define NBD_REQUEST_LEN		28	/* magic .. 32-bit length */
#define NBD_EXT_REQUEST_LEN	32	/* magic .. 64-bit length */
#define NBD_SIMPLE_REPLY_LEN	16
#define NBD_STRUCTURED_REPLY_LEN 20
#define NBD_EXT_REPLY_LEN	32
#define NBD_EXPORT_NAME_ZEROES	124	/* after NBD_OPT_EXPORT_NAME */

/* Strings (names, messages) are at most 4096 bytes, says the protocol. */
#define NBD_MAX_STRING		4096

#endif
