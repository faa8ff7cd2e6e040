// SPDX-License-Identifier: MIT
/*
 * The NBD handshake: fixed newstyle negotiation ("option haggling") up to
 * NBD_OPT_GO or NBD_OPT_EXPORT_NAME. Supported: EXPORT_NAME, ABORT, LIST,
 * INFO, GO (NBD_INFO_EXPORT, NAME, DESCRIPTION, BLOCK_SIZE),
 * STRUCTURED_REPLY, LIST/SET_META_CONTEXT (base:allocation) and
 * EXTENDED_HEADERS. Anything else is refused with NBD_REP_ERR_UNSUP and
 * the client may go on; malformed option payloads get
 * NBD_REP_ERR_INVALID. Only what the protocol cannot answer (bad magic,
 * unknown client flags, absurd lengths, an unknown NBD_OPT_EXPORT_NAME)
 * ends the connection, with one log line naming the client.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/nbd-internal.h"
#include "lib/log.h"

/* Options one client may send before it has to choose an export. */
#define NBD_MAX_OPTIONS		4096

struct nbd_opt {
	uint32_t opt;
	uint32_t len;
	uint8_t *data;
};

static int nbd_opt_reply(struct nbd_conn *conn, uint32_t opt, uint32_t type,
			 const void *data, uint32_t len)
{
	uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	put_be64(hdr, NBD_REP_MAGIC);
	put_be32(hdr + 8, opt);
	put_be32(hdr + 12, type);
	put_be32(hdr + 16, len);
	return nbd_send_iov(conn->fd, iov, len ? 2 : 1);
}

/* An error reply with a message for the human at the other end. */
__attribute__((format(printf, 4, 5)))
static int nbd_opt_err(struct nbd_conn *conn, uint32_t opt, uint32_t type,
		       const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	pr_info("nbd: %s: option %u refused: %s", conn->peer, opt, msg);
	return nbd_opt_reply(conn, opt, type, msg, (uint32_t)n);
}

static int nbd_violation(struct nbd_conn *conn, const char *what)
{
	pr_warn("nbd: %s: %s; closing", conn->peer, what);
	return -EPROTO;
}

/* ---- parsing helpers for option payloads ---- */

struct nbd_cursor {
	const uint8_t *p;
	uint32_t left;
	bool bad;
};

static uint32_t cur_u32(struct nbd_cursor *c)
{
	uint32_t v;

	if (c->bad || c->left < 4) {
		c->bad = true;
		return 0;
	}
	v = get_be32(c->p);
	c->p += 4;
	c->left -= 4;
	return v;
}

static uint16_t cur_u16(struct nbd_cursor *c)
{
	uint16_t v;

	if (c->bad || c->left < 2) {
		c->bad = true;
		return 0;
	}
	v = get_be16(c->p);
	c->p += 2;
	c->left -= 2;
	return v;
}

/* A string of @len bytes as a NUL-terminated copy in @out (caller frees). */
static char *cur_str(struct nbd_cursor *c, uint32_t len)
{
	char *s;

	if (c->bad || len > c->left || len > NBD_MAX_STRING ||
	    memchr(c->p, '\0', len)) {
		c->bad = true;
		return NULL;
	}
	s = strndup((const char *)c->p, len);
	if (!s) {
		c->bad = true;
		return NULL;
	}
	c->p += len;
	c->left -= len;
	return s;
}

/* ---- options ---- */

static int nbd_send_export_info(struct nbd_conn *conn, uint32_t opt,
				struct nbd_export *exp)
{
	uint8_t buf[14];

	put_be16(buf, NBD_INFO_EXPORT);
	put_be64(buf + 2, get_capacity(exp->disk) << SECTOR_SHIFT);
	put_be16(buf + 10, nbd_export_tflags(conn, exp));
	return nbd_opt_reply(conn, opt, NBD_REP_INFO, buf, 12);
}

static int nbd_send_block_size(struct nbd_conn *conn, uint32_t opt,
			       struct nbd_export *exp)
{
	uint32_t min, pref, max;
	uint8_t buf[14];

	nbd_export_block_sizes(exp, &min, &pref, &max);
	put_be16(buf, NBD_INFO_BLOCK_SIZE);
	put_be32(buf + 2, min);
	put_be32(buf + 6, pref);
	put_be32(buf + 10, max);
	return nbd_opt_reply(conn, opt, NBD_REP_INFO, buf, 14);
}

static int nbd_send_info_string(struct nbd_conn *conn, uint32_t opt,
				uint16_t type, const char *s)
{
	size_t n = strnlen(s, NBD_MAX_STRING);
	uint8_t buf[2 + NBD_MAX_STRING];

	put_be16(buf, type);
	memcpy(buf + 2, s, n);
	return nbd_opt_reply(conn, opt, NBD_REP_INFO, buf, (uint32_t)(n + 2));
}

static int nbd_send_infos(struct nbd_conn *conn, uint32_t opt,
			  struct nbd_export *exp, const uint16_t *req,
			  unsigned int nr)
{
	char desc[128];
	int ret = nbd_send_export_info(conn, opt, exp);

	/* block sizes always: the server has constraints worth knowing */
	if (!ret)
		ret = nbd_send_block_size(conn, opt, exp);
	for (unsigned int i = 0; i < nr && !ret; i++) {
		if (req[i] == NBD_INFO_NAME) {
			ret = nbd_send_info_string(conn, opt, NBD_INFO_NAME,
						   exp->name);
		} else if (req[i] == NBD_INFO_DESCRIPTION) {
			snprintf(desc, sizeof(desc), "blkstack %s device %s",
				 blk_disk_driver(exp->disk),
				 blk_disk_name(exp->disk));
			ret = nbd_send_info_string(conn, opt,
						   NBD_INFO_DESCRIPTION, desc);
		}
	}
	return ret;
}

/* NBD_OPT_INFO and NBD_OPT_GO: 1 = go to transmission. */
static int nbd_opt_info_go(struct nbd_conn *conn, struct nbd_opt *o)
{
	struct nbd_cursor c = { .p = o->data, .left = o->len };
	uint16_t req[64];
	struct nbd_export *exp;
	unsigned int nr, i;
	char *name;
	int ret;

	name = cur_str(&c, cur_u32(&c));
	nr = cur_u16(&c);
	if (c.bad || c.left != nr * 2U) {
		free(name);
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "malformed request: name length, name, "
				   "count and 16-bit info types must add up");
	}
	for (i = 0; i < nr; i++) {
		uint16_t t = cur_u16(&c);

		if (i < ARRAY_SIZE(req))
			req[i] = t;
	}
	exp = nbd_export_get(conn->srv, name);
	if (!exp) {
		ret = nbd_opt_err(conn, o->opt, NBD_REP_ERR_UNKNOWN,
				  "no export \"%s\"", name);
		free(name);
		return ret;
	}
	ret = nbd_send_infos(conn, o->opt, exp, req,
			     min(nr, (unsigned int)ARRAY_SIZE(req)));
	if (!ret && o->opt == NBD_OPT_GO) {
		if (nbd_conn_attach(conn, exp)) {
			ret = nbd_opt_err(conn, o->opt, NBD_REP_ERR_SHUTDOWN,
					  "export \"%s\" is going away", name);
		} else {
			exp = NULL;	/* the connection holds the reference */
			ret = nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
			if (!ret) {
				if (conn->meta_export &&
				    strcmp(conn->meta_export, name))
					conn->meta_alloc = false;
				ret = 1;
			}
		}
	} else if (!ret) {
		ret = nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
	}
	nbd_export_put(exp);
	free(name);
	return ret;
}

/* NBD_OPT_EXPORT_NAME: no error reply exists, an unknown name closes. */
static int nbd_opt_export_name(struct nbd_conn *conn, struct nbd_opt *o)
{
	struct nbd_cursor c = { .p = o->data, .left = o->len };
	uint8_t buf[10 + NBD_EXPORT_NAME_ZEROES] = { 0 };
	struct nbd_export *exp;
	char *name = cur_str(&c, o->len);
	char what[NBD_MAX_STRING + 64];

	if (!name)
		return nbd_violation(conn, "NBD_OPT_EXPORT_NAME with a bad name");
	exp = nbd_export_get(conn->srv, name);
	if (!exp || nbd_conn_attach(conn, exp)) {
		snprintf(what, sizeof(what), "NBD_OPT_EXPORT_NAME \"%s\": no "
			 "such export", name);
		nbd_export_put(exp);
		free(name);
		return nbd_violation(conn, what);
	}
	if (conn->meta_export && strcmp(conn->meta_export, name))
		conn->meta_alloc = false;
	free(name);
	put_be64(buf, get_capacity(exp->disk) << SECTOR_SHIFT);
	put_be16(buf + 8, nbd_export_tflags(conn, exp));
	if (nbd_send_buf(conn->fd, buf, conn->no_zeroes ? 10 : sizeof(buf)))
		return -EPIPE;
	return 1;
}

struct nbd_list_buf {
	uint8_t *buf;
	size_t len, size;
};

static int nbd_list_add(const char *name, void *arg)
{
	struct nbd_list_buf *b = arg;
	size_t n = strlen(name);

	if (b->len + n + 4 > b->size) {
		size_t size = (b->size + n + 4) * 2;
		uint8_t *p = realloc(b->buf, size);

		if (!p)
			return -ENOMEM;
		b->buf = p;
		b->size = size;
	}
	put_be32(b->buf + b->len, (uint32_t)n);
	memcpy(b->buf + b->len + 4, name, n);
	b->len += n + 4;
	return 0;
}

static int nbd_opt_list(struct nbd_conn *conn, struct nbd_opt *o)
{
	struct nbd_list_buf b = { 0 };
	size_t off = 0;
	int ret;

	if (o->len)
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "NBD_OPT_LIST takes no data");
	/* gather under the lock, send without it */
	if (nbd_export_list(conn->srv, nbd_list_add, &b)) {
		free(b.buf);
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_PLATFORM,
				   "out of memory");
	}
	for (ret = 0; off < b.len && !ret;) {
		uint32_t n = get_be32(b.buf + off) + 4;

		ret = nbd_opt_reply(conn, o->opt, NBD_REP_SERVER,
				    b.buf + off, n);
		off += n;
	}
	free(b.buf);
	return ret ? ret : nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
}

static int nbd_opt_flag(struct nbd_conn *conn, struct nbd_opt *o,
			bool *flag, const char *what)
{
	if (o->len)
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "%s takes no data", what);
	if (*flag)
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "%s already negotiated", what);
	*flag = true;
	return nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
}

static int nbd_send_meta_context(struct nbd_conn *conn, uint32_t opt)
{
	const size_t n = sizeof(NBD_META_BASE_ALLOCATION) - 1;
	uint8_t buf[4 + sizeof(NBD_META_BASE_ALLOCATION)];

	put_be32(buf, NBD_META_ALLOC_ID);
	memcpy(buf + 4, NBD_META_BASE_ALLOCATION, n);
	return nbd_opt_reply(conn, opt, NBD_REP_META_CONTEXT, buf,
			     (uint32_t)(4 + n));
}

/* Does query @q select base:allocation? LIST also takes "base:". */
static bool nbd_meta_matches(const char *q, bool list)
{
	return !strcmp(q, NBD_META_BASE_ALLOCATION) ||
	       (list && !strcmp(q, "base:"));
}

static int nbd_opt_meta_context(struct nbd_conn *conn, struct nbd_opt *o)
{
	bool list = o->opt == NBD_OPT_LIST_META_CONTEXT, match = false;
	struct nbd_cursor c = { .p = o->data, .left = o->len };
	struct nbd_export *exp;
	uint32_t nr;
	char *name;
	int ret = 0;

	if (!conn->structured)
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "meta contexts need structured replies "
				   "first");
	name = cur_str(&c, cur_u32(&c));
	nr = cur_u32(&c);
	for (uint32_t i = 0; i < nr && !c.bad; i++) {
		char *q = cur_str(&c, cur_u32(&c));

		if (q && nbd_meta_matches(q, list))
			match = true;
		free(q);
	}
	if (c.bad || c.left) {
		free(name);
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
				   "malformed meta context request");
	}
	if (list && !nr)
		match = true;
	exp = nbd_export_get(conn->srv, name);
	if (!exp) {
		ret = nbd_opt_err(conn, o->opt, NBD_REP_ERR_UNKNOWN,
				  "no export \"%s\"", name);
		free(name);
		return ret;
	}
	nbd_export_put(exp);
	if (!list) {
		conn->meta_alloc = match;
		free(conn->meta_export);
		conn->meta_export = name;
		name = NULL;
	}
	free(name);
	if (match)
		ret = nbd_send_meta_context(conn, o->opt);
	return ret ? ret : nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
}

/* One option: 1 = enter transmission, 0 = next option, < 0 = close. */
static int nbd_option(struct nbd_conn *conn, struct nbd_opt *o)
{
	if (!conn->fixed_newstyle && o->opt != NBD_OPT_EXPORT_NAME)
		return nbd_violation(conn, "option other than EXPORT_NAME "
				     "without fixed newstyle");
	switch (o->opt) {
	case NBD_OPT_EXPORT_NAME:
		return nbd_opt_export_name(conn, o);
	case NBD_OPT_ABORT:
		if (!o->len)
			nbd_opt_reply(conn, o->opt, NBD_REP_ACK, NULL, 0);
		return -ECONNABORTED;
	case NBD_OPT_LIST:
		return nbd_opt_list(conn, o);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return nbd_opt_info_go(conn, o);
	case NBD_OPT_STRUCTURED_REPLY:
		if (conn->extended)
			return nbd_opt_err(conn, o->opt, NBD_REP_ERR_INVALID,
					   "extended headers already imply "
					   "structured replies");
		return nbd_opt_flag(conn, o, &conn->structured,
				    "NBD_OPT_STRUCTURED_REPLY");
	case NBD_OPT_EXTENDED_HEADERS:
		if (nbd_opt_flag(conn, o, &conn->extended,
				 "NBD_OPT_EXTENDED_HEADERS"))
			return -EPIPE;
		conn->structured = true;
		return 0;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return nbd_opt_meta_context(conn, o);
	case NBD_OPT_STARTTLS:
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_UNSUP,
				   "TLS is not supported by this server");
	default:
		return nbd_opt_err(conn, o->opt, NBD_REP_ERR_UNSUP,
				   "unknown option %u", o->opt);
	}
}

/* Read one option's header and data: 0, or < 0 to close (logged). */
static int nbd_read_option(struct nbd_conn *conn, struct nbd_opt *o,
			   bool *too_big)
{
	uint8_t hdr[NBD_OPT_HDR_LEN];
	char what[96];
	int ret;

	*too_big = false;
	ret = nbd_rx_read(&conn->rx, hdr, sizeof(hdr));
	if (ret)
		return ret;
	if (get_be64(hdr) != NBD_OPTS_MAGIC) {
		snprintf(what, sizeof(what), "bad option magic 0x%016llx",
			 (unsigned long long)get_be64(hdr));
		return nbd_violation(conn, what);
	}
	o->opt = get_be32(hdr + 8);
	o->len = get_be32(hdr + 12);
	if (o->len > NBD_OPT_DRAIN) {
		snprintf(what, sizeof(what), "option %u of %u bytes (at most "
			 "%u)", o->opt, o->len, NBD_OPT_MAX_LEN);
		return nbd_violation(conn, what);
	}
	if (o->len > NBD_OPT_MAX_LEN) {
		*too_big = true;
		return nbd_rx_skip(&conn->rx, o->len);
	}
	o->data = malloc(o->len + 1);
	if (!o->data)
		return -ENOMEM;
	ret = nbd_rx_read(&conn->rx, o->data, o->len);
	if (ret) {
		free(o->data);
		o->data = NULL;
	}
	return ret;
}

static int nbd_greet(struct nbd_conn *conn)
{
	uint8_t buf[18];
	uint32_t flags;
	char what[64];
	int ret;

	put_be64(buf, NBD_INIT_MAGIC);
	put_be64(buf + 8, NBD_OPTS_MAGIC);
	put_be16(buf + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (nbd_send_buf(conn->fd, buf, sizeof(buf)))
		return -EPIPE;
	ret = nbd_rx_read(&conn->rx, buf, 4);
	if (ret)
		return ret;
	flags = get_be32(buf);
	if (flags & ~NBD_FLAG_C_KNOWN) {
		snprintf(what, sizeof(what), "unknown client flags 0x%x",
			 flags);
		return nbd_violation(conn, what);
	}
	conn->fixed_newstyle = flags & NBD_FLAG_C_FIXED_NEWSTYLE;
	conn->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
	return 0;
}

int nbd_handshake(struct nbd_conn *conn)
{
	int ret = nbd_greet(conn);

	for (unsigned int n = 0; !ret; n++) {
		struct nbd_opt o = { 0 };
		bool too_big;

		if (n == NBD_MAX_OPTIONS)
			return nbd_violation(conn, "too many options");
		ret = nbd_read_option(conn, &o, &too_big);
		if (ret)
			break;
		if (too_big)
			ret = nbd_opt_err(conn, o.opt, NBD_REP_ERR_TOO_BIG,
					  "option data of %u bytes: at most %u",
					  o.len, NBD_OPT_MAX_LEN);
		else
			ret = nbd_option(conn, &o);
		free(o.data);
	}
	if (ret == 1)
		return 0;
	if (ret == -EAGAIN || ret == -EWOULDBLOCK)
		pr_warn("nbd: %s: no export chosen within %u s; closing",
			conn->peer, READ_ONCE(conn->srv->handshake_timeout));
	return ret == -ECONNABORTED || ret == -EPIPE ? 1 : ret;
}
