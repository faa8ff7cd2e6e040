// SPDX-License-Identifier: MIT
/*
 * The NBD server's exports: the table of names -> disks (each holding a
 * disk reference), their removal (which closes their connections after
 * the requests in flight), what a client is told about each (transmission
 * flags, block sizes), and the io priority new connections start with.
 * All under srv->lock; an export itself is reference counted so that a
 * connection may outlive its removal from the table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "export/nbd-internal.h"
#include "lib/log.h"

static struct nbd_export *__nbd_export_find(struct nbd_server *srv,
					    const char *name)
{
	struct nbd_export *exp;

	list_for_each_entry(exp, &srv->exports, list) {
		if (!*name || !strcmp(exp->name, name))
			return exp;
	}
	return NULL;
}

struct nbd_export *nbd_export_get(struct nbd_server *srv, const char *name)
{
	struct nbd_export *exp;

	pthread_mutex_lock(&srv->lock);
	exp = __nbd_export_find(srv, name);
	if (exp)
		atomic_fetch_add(&exp->refcount, 1);
	pthread_mutex_unlock(&srv->lock);
	return exp;
}

void nbd_export_put(struct nbd_export *exp)
{
	if (!exp || atomic_fetch_sub(&exp->refcount, 1) != 1)
		return;
	blk_put_disk(exp->disk);
	free(exp->name);
	free(exp);
}

int nbd_export_list(struct nbd_server *srv,
		    int (*fn)(const char *name, void *arg), void *arg)
{
	struct nbd_export *exp;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	list_for_each_entry(exp, &srv->exports, list) {
		ret = fn(exp->name, arg);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int nbd_export_add(struct nbd_server *srv, const char *export_name,
		   struct gendisk *disk, bool readonly)
{
	struct nbd_export *exp;
	const char *name;

	if (!srv || !disk)
		return blk_err(-EINVAL, "nbd: export needs a server and a disk");
	name = export_name && *export_name ? export_name : blk_disk_name(disk);
	if (strlen(name) > NBD_MAX_STRING)
		return blk_err(-EINVAL, "nbd: export name of %zu bytes: at most "
			       "%u", strlen(name), NBD_MAX_STRING);
	exp = calloc(1, sizeof(*exp));
	if (!exp || !(exp->name = strdup(name))) {
		free(exp);
		return blk_err(-ENOMEM, "nbd: out of memory for export %s",
			       name);
	}
	exp->disk = disk;
	exp->readonly = readonly;
	exp->ioprio = IOPRIO_DEFAULT;
	atomic_init(&exp->refcount, 1);
	pthread_mutex_lock(&srv->lock);
	if (__nbd_export_find(srv, name)) {
		pthread_mutex_unlock(&srv->lock);
		free(exp->name);
		free(exp);
		return blk_err(-EEXIST, "nbd: export %s already exists", name);
	}
	atomic_fetch_add(&disk->refcount, 1);
	list_add_tail(&exp->list, &srv->exports);
	pthread_mutex_unlock(&srv->lock);
	pr_info("nbd: export %s: %s%s", name, blk_disk_name(disk),
		readonly ? " (read-only)" : "");
	return 0;
}

/* Unlink @exp, close its connections and wait for them; srv->lock held. */
static void __nbd_export_remove(struct nbd_server *srv, struct nbd_export *exp)
{
	exp->dead = true;
	list_del(&exp->list);
	__nbd_close_conns(srv, exp);
	while (exp->nr_conns)
		pthread_cond_wait(&srv->cond, &srv->lock);
}

int nbd_export_del(struct nbd_server *srv, const char *export_name)
{
	struct nbd_export *exp;

	if (!export_name || !*export_name)
		return blk_err(-EINVAL, "nbd: export del needs a name");
	pthread_mutex_lock(&srv->lock);
	exp = __nbd_export_find(srv, export_name);
	if (!exp) {
		pthread_mutex_unlock(&srv->lock);
		return blk_err(-ENOENT, "nbd: no export %s", export_name);
	}
	__nbd_export_remove(srv, exp);
	pthread_mutex_unlock(&srv->lock);
	pr_info("nbd: export %s removed", export_name);
	nbd_export_put(exp);
	return 0;
}

int nbd_export_del_disk(struct nbd_server *srv, struct gendisk *disk)
{
	struct nbd_export *exp, *tmp;
	LIST_HEAD(gone);
	int n = 0;

	pthread_mutex_lock(&srv->lock);
	list_for_each_entry_safe(exp, tmp, &srv->exports, list) {
		if (exp->disk != disk)
			continue;
		__nbd_export_remove(srv, exp);
		list_add_tail(&exp->list, &gone);
		n++;
	}
	pthread_mutex_unlock(&srv->lock);
	list_for_each_entry_safe(exp, tmp, &gone, list) {
		list_del(&exp->list);
		nbd_export_put(exp);
	}
	return n;
}

int nbd_export_for_each(struct nbd_server *srv,
			int (*fn)(const struct nbd_export_info *info, void *arg),
			void *arg)
{
	struct nbd_export_info *infos;
	struct nbd_export **exps;
	struct nbd_export *exp;
	size_t n = 0, i;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	i = list_count(&srv->exports);
	infos = calloc(i + 1, sizeof(*infos));
	exps = calloc(i + 1, sizeof(*exps));
	if (!infos || !exps) {
		pthread_mutex_unlock(&srv->lock);
		free(infos);
		free(exps);
		return blk_err(-ENOMEM, "nbd: out of memory listing exports");
	}
	/* a snapshot, so @fn may call back into the server */
	list_for_each_entry(exp, &srv->exports, list) {
		atomic_fetch_add(&exp->refcount, 1);
		exps[n] = exp;
		infos[n++] = (struct nbd_export_info){
			.name = exp->name, .disk = exp->disk,
			.readonly = exp->readonly, .nr_conns = exp->nr_conns,
			.ioprio = exp->ioprio, .weight = exp->weight,
		};
	}
	pthread_mutex_unlock(&srv->lock);
	for (i = 0; i < n && !ret; i++)
		ret = fn(&infos[i], arg);
	for (i = 0; i < n; i++)
		nbd_export_put(exps[i]);
	free(infos);
	free(exps);
	return ret;
}

uint16_t nbd_export_tflags(const struct nbd_conn *conn,
			   const struct nbd_export *exp)
{
	const struct queue_limits *lim = queue_limits(disk_queue(exp->disk));
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
		     NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_CACHE |
		     NBD_FLAG_CAN_MULTI_CONN;

	if (exp->readonly || bdev_read_only(exp->disk)) {
		f |= NBD_FLAG_READ_ONLY;
	} else {
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
		if (lim->max_write_zeroes_sectors)
			f |= NBD_FLAG_SEND_FAST_ZERO;
		if (lim->max_discard_sectors)
			f |= NBD_FLAG_SEND_TRIM;
	}
	if (lim->features_rotational)
		f |= NBD_FLAG_ROTATIONAL;
	if (conn->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

void nbd_export_block_sizes(const struct nbd_export *exp, uint32_t *min,
			    uint32_t *pref, uint32_t *max)
{
	const struct queue_limits *lim = queue_limits(disk_queue(exp->disk));

	*min = lim->logical_block_size;
	*pref = max_t(uint32_t, lim->physical_block_size, 4096);
	*max = NBD_MAX_PAYLOAD;
}

int nbd_ioprio_check(int class, int level, unsigned int weight,
			    uint16_t *ioprio)
{
	struct io_context tmp = { 0 };
	int ret = ioc_set_ioprio(&tmp, class, level);

	if (!ret)
		ret = ioc_set_weight(&tmp, weight);
	*ioprio = tmp.ioprio;
	return ret;
}

int nbd_export_set_ioprio(struct nbd_server *srv, const char *export_name,
			  int class, int level, unsigned int weight)
{
	struct nbd_export *exp;
	uint16_t ioprio;
	int ret = nbd_ioprio_check(class, level, weight, &ioprio);

	if (ret)
		return ret;
	pthread_mutex_lock(&srv->lock);
	exp = __nbd_export_find(srv, export_name ? export_name : "");
	if (exp && export_name && *export_name) {
		exp->ioprio = ioprio;
		exp->weight = (uint16_t)weight;
	}
	pthread_mutex_unlock(&srv->lock);
	if (!exp || !export_name || !*export_name)
		return blk_err(-ENOENT, "nbd: no export %s",
			       export_name ? export_name : "(null)");
	return 0;
}
