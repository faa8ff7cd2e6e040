// SPDX-License-Identifier: MIT
/*
 * The NBD server: the listening socket and its thread, and the life of
 * each connection (accept, handshake, transmission, close). Exports are
 * in nbd-export.c, the protocol in nbd-handshake.c and nbd-conn.c.
 *
 * Locking: srv->lock guards the export list, the connection list and the
 * counters; a connection's thread is the only one that reads its socket.
 * Stopping or removing an export shuts the read side of the affected
 * sockets: their readers see end-of-file, wait for their requests in
 * flight (whose replies still go out), and close.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "export/nbd-internal.h"
#include "lib/log.h"

#define NBD_DEFAULT_LISTEN	"127.0.0.1:10809"

/* ---- connections ---- */

/* Ask every connection matching @exp (NULL: all) to finish; srv->lock. */
void __nbd_close_conns(struct nbd_server *srv, struct nbd_export *exp)
{
	struct nbd_conn *conn;

	list_for_each_entry(conn, &srv->conns, list) {
		if (exp && conn->exp != exp)
			continue;
		atomic_store(&conn->closing, true);
		shutdown(conn->fd, SHUT_RD);
	}
}


int nbd_conn_set_ioprio(struct nbd_server *srv, unsigned int conn_id,
			int class, int level, unsigned int weight)
{
	struct nbd_conn *conn;
	uint16_t ioprio;
	int ret = nbd_ioprio_check(class, level, weight, &ioprio);

	if (ret)
		return ret;
	pthread_mutex_lock(&srv->lock);
	ret = blk_err(-ENOENT, "nbd: no connection %u in transmission",
		      conn_id);
	list_for_each_entry(conn, &srv->conns, list) {
		if (conn->id != conn_id || !conn->ioc)
			continue;
		/* bios in flight read these words: single 16-bit stores */
		WRITE_ONCE(conn->ioc->ioprio, ioprio);
		WRITE_ONCE(conn->ioc->weight, (uint16_t)weight);
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int nbd_conn_for_each(struct nbd_server *srv,
		      int (*fn)(const struct nbd_conn_info *info, void *arg),
		      void *arg)
{
	struct nbd_conn *conn;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	list_for_each_entry(conn, &srv->conns, list) {
		struct nbd_conn_info info = {
			.id = conn->id,
			.peer = conn->peer,
			.export_name = conn->exp ? conn->exp->name : NULL,
			.ioprio = conn->ioc ? READ_ONCE(conn->ioc->ioprio) : 0,
			.weight = conn->ioc ? READ_ONCE(conn->ioc->weight) : 0,
			.structured = conn->structured,
			.extended = conn->extended,
		};

		ret = fn(&info, arg);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int nbd_conn_attach(struct nbd_conn *conn, struct nbd_export *exp)
{
	struct nbd_server *srv = conn->srv;
	char comm[16];
	int ret = 0;

	snprintf(comm, sizeof(comm), "nbd-conn-%u", conn->id);
	pthread_mutex_lock(&srv->lock);
	if (exp->dead || srv->stopping || atomic_load(&conn->closing)) {
		ret = -ESHUTDOWN;
	} else {
		conn->ioc = ioc_create((pid_t)conn->id, exp->ioprio,
				       exp->weight, comm);
		if (!conn->ioc) {
			ret = -ENOMEM;
		} else {
			conn->exp = exp;
			exp->nr_conns++;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

static void nbd_conn_free(struct nbd_conn *conn)
{
	nbd_conn_pool_free(conn);
	nbd_rx_free(&conn->rx);
	put_io_context(conn->ioc);
	nbd_export_put(conn->exp);
	free(conn->meta_export);
	pthread_mutex_destroy(&conn->lock);
	pthread_cond_destroy(&conn->cond);
	free(conn);
}

/* The last thing a connection does: nothing touches @srv afterwards. */
static void nbd_conn_end(struct nbd_conn *conn)
{
	struct nbd_server *srv = conn->srv;

	close(conn->fd);
	pthread_mutex_lock(&srv->lock);
	list_del(&conn->list);
	if (conn->exp)
		conn->exp->nr_conns--;
	srv->nr_conns--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	pr_debug("nbd: %s: closed", conn->peer);
	nbd_conn_free(conn);
}

static void nbd_set_rcvtimeo(int fd, unsigned int secs)
{
	struct timeval tv = { .tv_sec = secs };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* A silent client may not hold a thread forever; transmission may idle. */
static int nbd_handshake_timed(struct nbd_conn *conn)
{
	int ret;

	nbd_set_rcvtimeo(conn->fd, READ_ONCE(conn->srv->handshake_timeout));
	ret = nbd_handshake(conn);
	nbd_set_rcvtimeo(conn->fd, 0);
	return ret;
}

static void *nbd_conn_thread(void *arg)
{
	struct nbd_conn *conn = arg;
	int ret;

	ret = nbd_rx_init(&conn->rx, conn->fd, NBD_RX_BUF);
	if (ret) {
		pr_err("nbd: %s: out of memory", conn->peer);
	} else if (nbd_handshake_timed(conn) == 0) {
		if (nbd_conn_pool_init(conn))
			pr_err("nbd: %s: out of memory for requests",
			       conn->peer);
		else
			nbd_conn_transmit(conn);
	}
	nbd_conn_end(conn);
	return NULL;
}

static void nbd_peer_name(struct nbd_conn *conn,
			  const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(conn->peer, sizeof(conn->peer), "conn %u (%s:%u)",
			 conn->id, host, ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(conn->peer, sizeof(conn->peer), "conn %u ([%s]:%u)",
			 conn->id, host, ntohs(in6->sin6_port));
	} else {
		snprintf(conn->peer, sizeof(conn->peer), "conn %u (unix)",
			 conn->id);
	}
}

static void nbd_sock_setup(struct nbd_server *srv, int fd)
{
	struct timeval tv = { .tv_sec = NBD_SEND_TIMEOUT_S };
	int one = 1, sndbuf = NBD_SNDBUF;

	/* replies are small and latency-bound: never wait for Nagle */
	if (srv->is_tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a client that stops reading must not hold a completion thread */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/*
	 * Room for a few maximum-size replies: a sender that blocks on a
	 * full socket stalls the reader (inline completions) or a driver's
	 * completion thread. The kernel caps it at wmem_max.
	 */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static void nbd_accept_one(struct nbd_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct nbd_conn *conn;
	pthread_attr_t attr;
	int fd, ret;

	fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &len,
		     SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			pr_warn("nbd: accept: %s", strerror(errno));
		return;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		pr_err("nbd: out of memory for a connection");
		close(fd);
		return;
	}
	conn->srv = srv;
	conn->fd = fd;
	pthread_mutex_init(&conn->lock, NULL);
	pthread_cond_init(&conn->cond, NULL);
	nbd_sock_setup(srv, fd);

	pthread_mutex_lock(&srv->lock);
	if (srv->nr_conns >= NBD_MAX_CONNS) {
		pthread_mutex_unlock(&srv->lock);
		pr_warn("nbd: %u connections open: refusing another",
			NBD_MAX_CONNS);
		close(fd);
		nbd_conn_free(conn);
		return;
	}
	conn->id = ++srv->next_conn_id;
	nbd_peer_name(conn, &ss);
	list_add_tail(&conn->list, &srv->conns);
	srv->nr_conns++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&conn->thread, &attr, nbd_conn_thread, conn);
	pthread_attr_destroy(&attr);
	if (ret) {
		list_del(&conn->list);
		srv->nr_conns--;
	}
	pthread_mutex_unlock(&srv->lock);
	if (ret) {
		pr_err("nbd: %s: no thread: %s", conn->peer, strerror(ret));
		close(fd);
		nbd_conn_free(conn);
		return;
	}
	pr_debug("nbd: %s: connected", conn->peer);
}

static void *nbd_listen_thread(void *arg)
{
	struct nbd_server *srv = arg;
	struct pollfd pfd[2] = {
		{ .fd = srv->listen_fd, .events = POLLIN },
		{ .fd = srv->wake_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("nbd: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents)
			nbd_accept_one(srv);
	}
	return NULL;
}

/* ---- listening ---- */

static int nbd_listen_unix(struct nbd_server *srv, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (!*path || strlen(path) >= sizeof(sun.sun_path))
		return blk_err(-EINVAL, "nbd: unix socket path \"%s\": 1 to "
			       "%zu bytes", path, sizeof(sun.sun_path) - 1);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return blk_err(-errno, "nbd: socket: %s", strerror(errno));
	/* a stale socket file (nobody listening) is replaced */
	if (!stat(path, &st) && S_ISSOCK(st.st_mode)) {
		if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
			close(fd);
			return blk_err(-EADDRINUSE, "nbd: %s: a server is "
				       "already listening there", path);
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    listen(fd, 128)) {
		int err = errno;

		close(fd);
		return blk_err(-err, "nbd: listen on unix:%s: %s", path,
			       strerror(err));
	}
	srv->unix_path = strdup(path);
	srv->listen_fd = fd;
	return srv->unix_path ? 0 : blk_err(-ENOMEM, "out of memory");
}

static int nbd_split_host_port(const char *addr, char *host, size_t hlen,
			       const char **port)
{
	const char *colon;
	size_t n;

	if (addr[0] == '[') {		/* [v6 address]:port */
		const char *end = strchr(addr, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - addr - 1);
		addr++;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - addr);
	}
	if (!n || n >= hlen || !colon[1])
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int nbd_listen_tcp(struct nbd_server *srv, const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *port;
	char host[256], *end;
	int fd, ret, one = 1;

	if (nbd_split_host_port(addr, host, sizeof(host), &port) ||
	    strtoul(port, &end, 10) > 65535 || *end)
		return blk_err(-EINVAL, "nbd: listen address \"%s\": valid "
			       "forms are HOST:PORT, [IPV6]:PORT (port 0-65535,"
			       " 0 picks one) and unix:PATH", addr);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret)
		return blk_err(-EINVAL, "nbd: listen address \"%s\": %s",
			       addr, gai_strerror(ret));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ret = bind(fd, res->ai_addr, res->ai_addrlen) ||
		      listen(fd, 128) ? -errno : 0;
	}
	freeaddrinfo(res);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return blk_err(ret, "nbd: addr on %s: %s", addr,
			       strerror(-ret));
	}
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	srv->port = ntohs(ss.ss_family == AF_INET6 ?
			  ((struct sockaddr_in6 *)&ss)->sin6_port :
			  ((struct sockaddr_in *)&ss)->sin_port);
	srv->listen_fd = fd;
	srv->is_tcp = true;
	return 0;
}

static void nbd_server_free(struct nbd_server *srv)
{
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	if (srv->unix_path)
		unlink(srv->unix_path);
	free(srv->unix_path);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	free(srv);
}

int nbd_server_start(const char *listen, struct nbd_server **srvp)
{
	struct nbd_server *srv;
	int ret;

	if (!srvp)
		return blk_err(-EINVAL, "nbd: server start needs a result "
			       "pointer");
	if (!listen)
		listen = NBD_DEFAULT_LISTEN;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return blk_err(-ENOMEM, "nbd: out of memory for a server");
	srv->listen_fd = srv->wake_fd = -1;
	srv->handshake_timeout = NBD_HANDSHAKE_TIMEOUT_S;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	INIT_LIST_HEAD(&srv->exports);
	INIT_LIST_HEAD(&srv->conns);
	if (!strncmp(listen, "unix:", 5))
		ret = nbd_listen_unix(srv, listen + 5);
	else
		ret = nbd_listen_tcp(srv, listen);
	if (!ret) {
		srv->wake_fd = eventfd(0, EFD_CLOEXEC);
		if (srv->wake_fd < 0)
			ret = blk_err(-errno, "nbd: eventfd: %s",
				      strerror(errno));
	}
	if (!ret) {
		ret = -pthread_create(&srv->thread, NULL, nbd_listen_thread,
				      srv);
		if (ret)
			blk_err(ret, "nbd: listener thread: %s",
				strerror(-ret));
	}
	if (ret) {
		nbd_server_free(srv);
		return ret;
	}
	pr_info("nbd: listening on %s", listen);
	*srvp = srv;
	return 0;
}

int nbd_server_set_handshake_timeout(struct nbd_server *srv,
				     unsigned int secs)
{
	if (secs < 1 || secs > 3600)
		return blk_err(-EINVAL, "nbd: handshake timeout %u s: valid "
			       "values are 1 to 3600", secs);
	WRITE_ONCE(srv->handshake_timeout, secs);
	return 0;
}

unsigned int nbd_server_port(const struct nbd_server *srv)
{
	return srv->port;
}

void nbd_server_stop(struct nbd_server *srv)
{
	struct nbd_export *exp, *tmp;
	uint64_t one = 1;

	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	if (write(srv->wake_fd, &one, sizeof(one)) != sizeof(one))
		pr_err("nbd: cannot wake the listener: %s", strerror(errno));
	pthread_join(srv->thread, NULL);

	pthread_mutex_lock(&srv->lock);
	__nbd_close_conns(srv, NULL);
	while (srv->nr_conns)
		pthread_cond_wait(&srv->cond, &srv->lock);
	list_for_each_entry_safe(exp, tmp, &srv->exports, list) {
		list_del(&exp->list);
		exp->dead = true;
		nbd_export_put(exp);
	}
	pthread_mutex_unlock(&srv->lock);
	nbd_server_free(srv);
}
