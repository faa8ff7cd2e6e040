// SPDX-License-Identifier: MIT
/*
 * The elevator framework (the kernel's block/elevator.c): the registry of
 * I/O schedulers, attaching and switching them at run time, the generic
 * merge lookup (one-hit cache, back-merge hash, then the scheduler's own),
 * and scheduler attributes under queue/iosched/.
 *
 * "none" is no elevator at all: requests go through the per-CPU software
 * queues straight to dispatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

/*
 * Built-in schedulers: adding one is its file plus one line here.
 * (mq-deadline, kyber and bfq arrive with their own files.)
 */
extern struct elevator_type mq_deadline;
extern struct elevator_type kyber_sched;
extern struct elevator_type iosched_bfq_mq;
static struct elevator_type *const builtin_elevators[] = {
	&mq_deadline,
	&kyber_sched,
	&iosched_bfq_mq,
	NULL,
};

static pthread_mutex_t elv_list_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(elv_list);		/* registered at run time (tests) */

static bool elv_name_is(const struct elevator_type *e, const char *name)
{
	return !strcmp(e->elevator_name, name) ||
	       (e->elevator_alias && !strcmp(e->elevator_alias, name));
}

const struct elevator_type *elevator_find(const char *name)
{
	const struct elevator_type *found = NULL;
	struct elevator_type *e;

	for (unsigned int i = 0; builtin_elevators[i]; i++)
		if (elv_name_is(builtin_elevators[i], name))
			return builtin_elevators[i];
	pthread_mutex_lock(&elv_list_lock);
	list_for_each_entry(e, &elv_list, list) {
		if (elv_name_is(e, name)) {
			found = e;
			break;
		}
	}
	pthread_mutex_unlock(&elv_list_lock);
	return found;
}

int elv_register(struct elevator_type *e)
{
	if (!e->ops.insert_requests || !e->ops.dispatch_request ||
	    !e->ops.has_work)
		return blk_err(-EINVAL, "elevator %s: insert_requests, "
			       "dispatch_request and has_work are required",
			       e->elevator_name);
	if (!strcmp(e->elevator_name, "none") || elevator_find(e->elevator_name))
		return blk_err(-EBUSY, "elevator %s is already registered",
			       e->elevator_name);
	pthread_mutex_lock(&elv_list_lock);
	list_add_tail(&e->list, &elv_list);
	pthread_mutex_unlock(&elv_list_lock);
	return 0;
}

void elv_unregister(struct elevator_type *e)
{
	pthread_mutex_lock(&elv_list_lock);
	list_del_init(&e->list);
	pthread_mutex_unlock(&elv_list_lock);
}

/* All names, with the current one in brackets, as sysfs shows them. */
ssize_t elv_iosched_show(struct request_queue *q, char *buf, size_t len)
{
	const struct elevator_type *cur = q->elevator ? q->elevator->type : NULL;
	struct elevator_type *e;
	size_t pos = 0;

#define ELV_SHOW(name, is_cur)						\
	pos += (size_t)snprintf(buf + pos, pos < len ? len - pos : 0,	\
				(is_cur) ? "[%s] " : "%s ", name)

	ELV_SHOW("none", !cur);
	for (unsigned int i = 0; builtin_elevators[i]; i++)
		ELV_SHOW(builtin_elevators[i]->elevator_name,
			 builtin_elevators[i] == cur);
	pthread_mutex_lock(&elv_list_lock);
	list_for_each_entry(e, &elv_list, list)
		ELV_SHOW(e->elevator_name, e == cur);
	pthread_mutex_unlock(&elv_list_lock);
#undef ELV_SHOW
	if (pos && pos <= len)
		buf[pos - 1] = '\n';
	return (ssize_t)pos;
}

/* Caller holds the queue frozen and quiesced. */
void elevator_exit(struct request_queue *q)
{
	if (q->elevator)
		blk_mq_exit_sched(q, q->elevator);
}

/*
 * Swap the scheduler while I/O may be running: freeze (drain every
 * request), quiesce, tear the old one down, bring the new one up.
 * A failure to attach the new one leaves "none" and says so.
 */
int elevator_switch(struct request_queue *q, const char *name)
{
	const struct elevator_type *e = NULL;
	char names[256];
	int ret = 0;

	if (strcmp(name, "none")) {
		e = elevator_find(name);
		if (!e) {
			elv_iosched_show(q, names, sizeof(names));
			names[strcspn(names, "\n")] = '\0';
			return blk_err(-EINVAL, "scheduler '%s': valid values "
				       "are %s", name, names);
		}
	}
	if (q->tag_set->flags & BLK_MQ_F_NO_SCHED && e)
		return blk_err(-EINVAL, "scheduler '%s': this device takes "
			       "none", name);
	if ((q->elevator ? q->elevator->type : NULL) == e)
		return 0;

	blk_mq_freeze_queue(q);
	blk_mq_quiesce_queue(q);
	elevator_exit(q);
	if (e) {
		ret = blk_mq_init_sched(q, e);
		if (ret)
			ret = blk_err(ret, "scheduler '%s': cannot attach "
				      "(%d); left at none", name, ret);
	}
	blk_mq_unquiesce_queue(q);
	blk_mq_unfreeze_queue(q);
	return ret;
}

/*
 * The default scheduler: mq-deadline on single-queue rotational devices,
 * else none. The kernel picks mq-deadline for every single-queue device;
 * here flash-like and memory devices start at none, as the common udev
 * rule sets them (docs/design-notes.md).
 */
int elevator_init_mq(struct request_queue *q)
{
	const struct elevator_type *e;

	if (q->tag_set->flags & (BLK_MQ_F_NO_SCHED |
				 BLK_MQ_F_NO_SCHED_BY_DEFAULT))
		return 0;
	if (q->nr_hw_queues != 1 && !blk_mq_is_shared_tags(q->tag_set->flags))
		return 0;
	if (blk_queue_nonrot(q))
		return 0;
	e = elevator_find("mq-deadline");
	if (!e)
		return 0;
	return elevator_switch(q, e->elevator_name);
}

/* ---- merge helpers ---- */

static unsigned int rq_hash_key(sector_t end)
{
	return (unsigned int)((end * 0x9E3779B97F4A7C15ULL) >>
			      (64 - ELV_HASH_BITS));
}

void elv_rqhash_add(struct request_queue *q, struct request *rq)
{
	sector_t end = blk_rq_pos(rq) + blk_rq_sectors(rq);

	BUG_ON(rq->rq_flags & RQF_HASHED);
	list_add(&rq->hash, &q->elevator->hash[rq_hash_key(end)]);
	rq->rq_flags |= RQF_HASHED;
}

void elv_rqhash_del(struct request_queue *q, struct request *rq)
{
	if (rq->rq_flags & RQF_HASHED) {
		list_del_init(&rq->hash);
		rq->rq_flags &= ~RQF_HASHED;
	}
}

void elv_rqhash_reposition(struct request_queue *q, struct request *rq)
{
	elv_rqhash_del(q, rq);
	elv_rqhash_add(q, rq);
}

struct request *elv_rqhash_find(struct request_queue *q, sector_t offset)
{
	struct list_head *head = &q->elevator->hash[rq_hash_key(offset)];
	struct request *rq, *next;

	list_for_each_entry_safe(rq, next, head, hash) {
		BUG_ON(!(rq->rq_flags & RQF_HASHED));
		/* no longer mergeable (grown past a limit, flagged) */
		if (rq->cmd_flags & REQ_NOMERGE_FLAGS) {
			elv_rqhash_del(q, rq);
			continue;
		}
		if (blk_rq_pos(rq) + blk_rq_sectors(rq) == offset)
			return rq;
	}
	return NULL;
}

static bool elv_bio_merge_ok(struct request *rq, struct bio *bio)
{
	if (!blk_rq_merge_ok(rq, bio))
		return false;
	return blk_mq_sched_allow_merge(rq->q, rq, bio);
}

/*
 * Levels of merging: nomerges=2 none at all; nomerges=1 only the one-hit
 * cache (q->last_merge); 0 also the hash and the scheduler's lookup.
 */
enum elv_merge elv_merge(struct request_queue *q, struct request **req,
			 struct bio *bio)
{
	struct elevator_queue *e = q->elevator;
	struct request *rq;

	if (blk_queue_nomerges(q) || (bio->bi_opf & REQ_NOMERGE_FLAGS))
		return ELEVATOR_NO_MERGE;
	if (q->last_merge && elv_bio_merge_ok(q->last_merge, bio)) {
		enum elv_merge ret = blk_try_merge(q->last_merge, bio);

		if (ret != ELEVATOR_NO_MERGE) {
			*req = q->last_merge;
			return ret;
		}
	}
	if (blk_queue_noxmerges(q))
		return ELEVATOR_NO_MERGE;
	rq = elv_rqhash_find(q, bio->bi_iter.bi_sector);
	if (rq && elv_bio_merge_ok(rq, bio)) {
		*req = rq;
		return ELEVATOR_BACK_MERGE;
	}
	if (e->type->ops.request_merge)
		return (enum elv_merge)e->type->ops.request_merge(q, req, bio);
	return ELEVATOR_NO_MERGE;
}

void elv_merged_request(struct request_queue *q, struct request *rq,
			enum elv_merge type)
{
	struct elevator_queue *e = q->elevator;

	if (e->type->ops.request_merged)
		e->type->ops.request_merged(q, rq, type);
	if (type == ELEVATOR_BACK_MERGE)
		elv_rqhash_reposition(q, rq);
	q->last_merge = rq;
}

void elv_merge_requests(struct request_queue *q, struct request *rq,
			struct request *next)
{
	struct elevator_queue *e = q->elevator;

	if (e->type->ops.requests_merged)
		e->type->ops.requests_merged(q, rq, next);
	elv_rqhash_reposition(q, rq);
	q->last_merge = rq;
}

void elv_rb_add(struct rb_root *root, struct request *rq)
{
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (blk_rq_pos(rq) < blk_rq_pos(rb_to_rq(parent)))
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(rq_rb(rq), parent, link);
	rb_insert_color(rq_rb(rq), root);
}

void elv_rb_del(struct rb_root *root, struct request *rq)
{
	if (RB_EMPTY_NODE(rq_rb(rq)))
		return;
	rb_erase(rq_rb(rq), root);
	RB_CLEAR_NODE(rq_rb(rq));
}

struct request *elv_rb_former_request(struct request_queue *q,
				      struct request *rq)
{
	return RB_EMPTY_NODE(rq_rb(rq)) ? NULL : rb_to_rq(rb_prev(rq_rb(rq)));
}

struct request *elv_rb_latter_request(struct request_queue *q,
				      struct request *rq)
{
	return RB_EMPTY_NODE(rq_rb(rq)) ? NULL : rb_to_rq(rb_next(rq_rb(rq)));
}

struct request *elv_latter_request(struct request_queue *q,
				   struct request *rq)
{
	struct elevator_queue *e = q->elevator;

	return e->type->ops.next_request ? e->type->ops.next_request(q, rq) :
					   NULL;
}

struct request *elv_former_request(struct request_queue *q,
				   struct request *rq)
{
	struct elevator_queue *e = q->elevator;

	return e->type->ops.former_request ?
	       e->type->ops.former_request(q, rq) : NULL;
}

/*
 * On insertion: merge @rq into a request ending where it starts, and keep
 * doing so while the merged request can grow. Requests emptied by merging
 * go on @free.
 */
bool elv_attempt_insert_merge(struct request_queue *q, struct request *rq,
			      struct list_head *free)
{
	struct request *__rq;
	bool ret = false;

	if (blk_queue_nomerges(q))
		return false;
	if (q->last_merge && blk_attempt_req_merge(q, q->last_merge, rq)) {
		list_add(&rq->queuelist, free);
		return true;
	}
	if (blk_queue_noxmerges(q))
		return false;
	for (;;) {
		__rq = elv_rqhash_find(q, blk_rq_pos(rq));
		if (!__rq || !blk_attempt_req_merge(q, __rq, rq))
			break;
		list_add(&rq->queuelist, free);
		ret = true;
		rq = __rq;
	}
	return ret;
}

ssize_t elv_attr_show(struct request_queue *q, const char *name, char *buf,
		      size_t len)
{
	struct elevator_queue *e = q->elevator;
	const struct elv_fs_entry *a;

	if (!e || !e->type->elevator_attrs)
		return blk_err(-ENOENT, "iosched/%s: the scheduler is %s, "
			       "which has no such attribute", name,
			       e ? e->type->elevator_name : "none");
	for (a = e->type->elevator_attrs; a->name; a++)
		if (!strcmp(a->name, name))
			return a->show(e, buf, len);
	return blk_err(-ENOENT, "iosched/%s: no such attribute of %s", name,
		       e->type->elevator_name);
}

int elv_attr_store(struct request_queue *q, const char *name,
		   const char *val)
{
	struct elevator_queue *e = q->elevator;
	const struct elv_fs_entry *a;

	if (!e || !e->type->elevator_attrs)
		return blk_err(-ENOENT, "iosched/%s: the scheduler is %s, "
			       "which has no such attribute", name,
			       e ? e->type->elevator_name : "none");
	for (a = e->type->elevator_attrs; a->name; a++) {
		if (strcmp(a->name, name))
			continue;
		if (!a->store)
			return blk_err(-EPERM, "iosched/%s is read-only", name);
		return (int)a->store(e, val);
	}
	return blk_err(-ENOENT, "iosched/%s: no such attribute of %s", name,
		       e->type->elevator_name);
}
