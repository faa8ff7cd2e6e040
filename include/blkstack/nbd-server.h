/* SPDX-License-Identifier: MIT */
/*
 * The NBD server: serves block devices of this process to NBD clients
 * (nbdinfo, qemu-io, qemu-img, nbdcopy, fio --ioengine=nbd, the kernel's
 * nbd-client). Fixed newstyle handshake, structured replies, extended
 * headers, many connections with pipelined requests.
 *
 * Public: the contract between the server (export/nbd-server.c) and
 * whoever hosts it (blkstackd, the tests, a program of your own linked
 * with libblkstack). Functions return 0 or -errno; on failure
 * blkstack_errmsg() holds one line naming what was wrong.
 */
#ifndef BLKSTACK_NBD_SERVER_H
#define BLKSTACK_NBD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct gendisk;
struct nbd_server;

/*
 * Start a server listening on @listen: "HOST:PORT" (TCP; "127.0.0.1:10809"
 * when NULL; port 0 picks a free one, see nbd_server_port()) or
 * "unix:PATH" (a unix socket, removed again by nbd_server_stop()).
 * It runs on its own threads until nbd_server_stop().
 */
int nbd_server_start(const char *listen, struct nbd_server **srvp);
/*
 * Seconds a client may take to choose an export (default 30, 1..3600);
 * a client silent for that long in the handshake is dropped.
 */
int nbd_server_set_handshake_timeout(struct nbd_server *srv,
				     unsigned int secs);
/* The TCP port actually bound (0 for a unix socket). */
unsigned int nbd_server_port(const struct nbd_server *srv);
/*
 * Stop accepting, close every connection after its in-flight requests
 * complete (their replies are sent), remove the unix socket, free.
 */
void nbd_server_stop(struct nbd_server *srv);

/*
 * Export @disk as @export_name (the disk's name when NULL or ""). The
 * server holds a disk reference until the export is removed. -EEXIST if
 * the name is taken.
 */
int nbd_export_add(struct nbd_server *srv, const char *export_name,
		   struct gendisk *disk, bool readonly);
/*
 * Remove an export: no new connections to it; its open connections are
 * closed once their in-flight requests complete. -ENOENT if unknown.
 */
int nbd_export_del(struct nbd_server *srv, const char *export_name);
/* Remove every export of @disk (before the disk is deleted); count. */
int nbd_export_del_disk(struct nbd_server *srv, struct gendisk *disk);

struct nbd_export_info {
	const char *name;
	struct gendisk *disk;
	bool readonly;
	unsigned int nr_conns;		/* open connections now */
	uint16_t ioprio;		/* new connections' defaults: */
	uint16_t weight;		/* see nbd_export_set_ioprio() */
};
/* Call @fn for each export, in the order added; stop when it returns != 0. */
int nbd_export_for_each(struct nbd_server *srv,
			int (*fn)(const struct nbd_export_info *info, void *arg),
			void *arg);

/*
 * Who is issuing: each connection's bios carry an io context (pid = the
 * connection id, comm "nbd-conn-N") with an I/O priority and a weight
 * that schedulers key on. An export's defaults apply to connections made
 * after the call; nbd_conn_set_ioprio() changes one live connection.
 * @class/@level as ioprio_set(2) (IOPRIO_CLASS_*, 0..7), @weight 0
 * (derive from the priority) or 1..1000. -EINVAL with a message for bad
 * values, -ENOENT for an unknown export or connection.
 */
int nbd_export_set_ioprio(struct nbd_server *srv, const char *export_name,
			  int class, int level, unsigned int weight);
int nbd_conn_set_ioprio(struct nbd_server *srv, unsigned int conn_id,
			int class, int level, unsigned int weight);

struct nbd_conn_info {
	unsigned int id;		/* the io context's pid */
	const char *peer;		/* "conn N (127.0.0.1:PORT)" */
	const char *export_name;	/* NULL while in the handshake */
	uint16_t ioprio;		/* IOPRIO_PRIO_VALUE(class, level) */
	uint16_t weight;
	bool structured;		/* structured replies negotiated */
	bool extended;			/* extended headers negotiated */
};
/*
 * Call @fn for each open connection under the server's lock (@fn must
 * not call back into the server); stop when it returns != 0.
 */
int nbd_conn_for_each(struct nbd_server *srv,
		      int (*fn)(const struct nbd_conn_info *info, void *arg),
		      void *arg);

#endif
