// SPDX-License-Identifier: MIT
/*
 * A debugfs-style dump of a queue (the kernel's block/blk-mq-debugfs.c):
 * queue state and flags, then per hctx its state, tags and sched_tags
 * (depth, busy, active queues), dispatch list, pending ctx map and ctx
 * lists, counters; and the counters alone as JSON.
 */
#include <stdio.h>

#include "blk.h"
#include "blk-trace.h"
#include "lib/json.h"

static const char *const hctx_state_names[] = {
	[BLK_MQ_S_STOPPED] = "STOPPED",
	[BLK_MQ_S_TAG_ACTIVE] = "TAG_ACTIVE",
	[BLK_MQ_S_SCHED_RESTART] = "SCHED_RESTART",
	[BLK_MQ_S_INACTIVE] = "INACTIVE",
};

static const char *const queue_flag_names[] = {
	[QUEUE_FLAG_DYING] = "DYING",
	[QUEUE_FLAG_NOMERGES] = "NOMERGES",
	[QUEUE_FLAG_NOXMERGES] = "NOXMERGES",
	[QUEUE_FLAG_SAME_COMP] = "SAME_COMP",
	[QUEUE_FLAG_NONROT] = "NONROT",
	[QUEUE_FLAG_IO_STAT] = "IO_STAT",
	[QUEUE_FLAG_POLL] = "POLL",
	[QUEUE_FLAG_QUIESCED] = "QUIESCED",
	[QUEUE_FLAG_REGISTERED] = "REGISTERED",
	[QUEUE_FLAG_STATS] = "STATS",
	[QUEUE_FLAG_HCTX_ACTIVE] = "HCTX_ACTIVE",
};

static const char *const hctx_type_names[] = {
	[HCTX_TYPE_DEFAULT] = "default",
	[HCTX_TYPE_READ] = "read",
	[HCTX_TYPE_POLL] = "poll",
};

static void print_flags(FILE *out, unsigned long flags,
			const char *const *names, size_t nr)
{
	bool first = true;

	for (size_t i = 0; i < nr; i++) {
		if (!(flags & (1UL << i)) || !names[i])
			continue;
		fprintf(out, "%s%s", first ? "" : "|", names[i]);
		first = false;
	}
	fputc('\n', out);
}

static void dump_tags(FILE *out, const char *what, struct blk_mq_tags *tags)
{
	if (!tags) {
		fprintf(out, "  %s: (none)\n", what);
		return;
	}
	fprintf(out, "  %s: nr_tags=%u nr_reserved_tags=%u active_queues=%u "
		"busy=%u wake_batch=%u ws_active=%d\n", what, tags->nr_tags,
		tags->nr_reserved_tags, atomic_load(&tags->active_queues),
		blk_mq_tags_busy(tags), tags->bitmap_tags.wake_batch,
		atomic_load(&tags->bitmap_tags.ws_active));
}

static void dump_rq(FILE *out, const char *indent, struct request *rq)
{
	fprintf(out, "%s%p {.op=%s, .cmd_flags=0x%x, .rq_flags=0x%x, "
		".state=%d, .tag=%d, .internal_tag=%d, .sector=%llu, "
		".bytes=%u}\n", indent, (void *)rq, blk_op_str(req_op(rq)),
		rq->cmd_flags, rq->rq_flags, blk_mq_rq_state(rq), rq->tag,
		rq->internal_tag, (unsigned long long)blk_rq_pos(rq),
		blk_rq_bytes(rq));
}

static void dump_hctx(FILE *out, struct blk_mq_hw_ctx *hctx)
{
	struct request_queue *q = hctx->queue;
	struct request *rq;
	struct blk_mq_ctx *ctx;
	char cpus[256];
	unsigned int i;

	cpumask_print(cpus, sizeof(cpus), &hctx->cpumask);
	fprintf(out, "hctx%u: type=%s cpus=%s nr_ctx=%u\n", hctx->queue_num,
		hctx_type_names[hctx->type], cpus[0] ? cpus : "-",
		hctx->nr_ctx);
	fprintf(out, "  state: ");
	print_flags(out, atomic_load(&hctx->state), hctx_state_names,
		    ARRAY_SIZE(hctx_state_names));
	fprintf(out, "  flags: 0x%lx%s\n", hctx->flags,
		hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED ? " (shared tags)" :
		"");
	dump_tags(out, "tags", hctx->tags);
	dump_tags(out, "sched_tags", q->elevator ? hctx->sched_tags : NULL);
	fprintf(out, "  dispatch_busy=%u nr_active=%d queued=%lu run=%lu "
		"requeued=%lu\n", atomic_load(&hctx->dispatch_busy),
		atomic_load(&hctx->nr_active), atomic_load(&hctx->queued),
		atomic_load(&hctx->run), atomic_load(&hctx->requeued));
	fprintf(out, "  dispatched:");
	for (i = 0; i < ARRAY_SIZE(hctx->dispatched); i++)
		fprintf(out, " %u:%lu", i ? 1U << (i - 1) : 0,
			atomic_load(&hctx->dispatched[i]));
	fputc('\n', out);
	pthread_spin_lock(&hctx->lock);
	fprintf(out, "  dispatch list:%s\n",
		list_empty(&hctx->dispatch) ? " (empty)" : "");
	list_for_each_entry(rq, &hctx->dispatch, queuelist)
		dump_rq(out, "    ", rq);
	pthread_spin_unlock(&hctx->lock);
	fprintf(out, "  ctx_map (pending):");
	for (i = 0; i < hctx->nr_ctx; i++)
		if (sbitmap_test_bit(&hctx->ctx_map, i))
			fprintf(out, " %u(cpu%u)", i, hctx->ctxs[i]->cpu);
	fputc('\n', out);
	hctx_for_each_ctx(hctx, ctx, i) {
		struct list_head *l = &ctx->rq_lists[hctx->type];

		pthread_spin_lock(&ctx->lock);
		if (!list_empty(l)) {
			fprintf(out, "  cpu%u/%s_rq_list:\n", ctx->cpu,
				hctx_type_names[hctx->type]);
			list_for_each_entry(rq, l, queuelist)
				dump_rq(out, "    ", rq);
		}
		pthread_spin_unlock(&ctx->lock);
	}
	if (q->mq_ops->show_hctx)
		q->mq_ops->show_hctx(hctx, out);
}

static int elv_class_stats(struct request_queue *q,
			   struct elv_class_stats *st)
{
	struct elevator_queue *e = q->elevator;

	if (!e || !e->type->ops.class_stats)
		return 0;
	return min_t(int, e->type->ops.class_stats(e, st), ELV_MAX_CLASSES);
}

/* The same line for every scheduler, whatever its own lines say. */
static void dump_class_stats(struct request_queue *q, FILE *out)
{
	struct elv_class_stats st[ELV_MAX_CLASSES] = { 0 };
	int nr = elv_class_stats(q, st);

	for (int i = 0; i < nr; i++) {
		fprintf(out, "  iosched %s: dispatched=%lu merged=%lu",
			st[i].name, st[i].dispatched, st[i].merged);
		if (st[i].has & ELV_STAT_EXPIRED)
			fprintf(out, " expired=%lu", st[i].expired);
		if (st[i].has & ELV_STAT_STARVED)
			fprintf(out, " starved=%lu", st[i].starved);
		fprintf(out, " max_wait_us=%llu\n",
			(unsigned long long)(st[i].max_wait_ns / NSEC_PER_USEC));
	}
}

/* Plug flushes are counted per hctx (see blk_mq_flush_plug_list) */
static unsigned long blk_mq_plug_flushes(struct request_queue *q)
{
	struct blk_mq_hw_ctx *hctx;
	unsigned long n = 0;
	unsigned int i;

	if (!queue_is_mq(q))
		return 0;
	pthread_rwlock_rdlock(&q->hctx_lock);
	queue_for_each_hw_ctx(q, hctx, i)
		n += atomic_load(&hctx->plug_flushes);
	pthread_rwlock_unlock(&q->hctx_lock);
	return n;
}

void blk_mq_debug_dump_queue(struct request_queue *q, FILE *out)
{
	struct blk_mq_hw_ctx *hctx;
	char sched[128];
	unsigned int i;

	fprintf(out, "queue %s: %s\n", q->disk ? q->disk->disk_name : "?",
		queue_is_mq(q) ? "blk-mq" : "bio-based");
	fprintf(out, "  state: ");
	print_flags(out, atomic_load(&q->queue_flags), queue_flag_names,
		    ARRAY_SIZE(queue_flag_names));
	fprintf(out, "  usage=%ld freeze_depth=%d quiesce_depth=%d "
		"timeouts=%lu requeues=%lu splits=%lu plug_flushes=%lu\n",
		percpu_ref_sum(&q->q_usage_counter), q->mq_freeze_depth,
		atomic_load(&q->quiesce_depth), atomic_load(&q->nr_timeouts),
		atomic_load(&q->nr_requeues), atomic_load(&q->nr_splits),
		blk_mq_plug_flushes(q));
	if (!queue_is_mq(q))
		return;
	elv_iosched_show(q, sched, sizeof(sched));
	fprintf(out, "  scheduler: %s", sched);
	fprintf(out, "  nr_hw_queues=%u nr_requests=%u nr_cpu_ids=%u\n",
		q->nr_hw_queues, q->nr_requests, q->nr_cpu_ids);
	if (q->fq)
		fprintf(out, "  flush: issued=%lu sequences=%lu "
			"data_in_flight=%lu\n",
			atomic_load(&q->fq->flushes_issued),
			atomic_load(&q->fq->flush_seqs),
			q->fq->flush_data_in_flight);
	if (q->elevator && q->elevator->type->ops.show)
		q->elevator->type->ops.show(q->elevator, out);
	dump_class_stats(q, out);
	pthread_rwlock_rdlock(&q->hctx_lock);
	queue_for_each_hw_ctx(q, hctx, i)
		dump_hctx(out, hctx);
	pthread_rwlock_unlock(&q->hctx_lock);
}

void blk_bug_dump_queue(void *q)
{
	blk_mq_debug_dump_queue(q, stderr);
}

void blk_mq_debug_dump(struct gendisk *disk, FILE *out)
{
	/* the scheduler must not be switched under the dump */
	pthread_mutex_lock(&disk->queue->sysfs_lock);
	blk_mq_debug_dump_queue(disk->queue, out);
	pthread_mutex_unlock(&disk->queue->sysfs_lock);
	blk_trace_debug_dump(disk->queue, out);
}

/* ---- JSON ---- */

static void json_class_stats(struct request_queue *q, struct json_writer *w)
{
	struct elv_class_stats st[ELV_MAX_CLASSES] = { 0 };
	int nr = elv_class_stats(q, st);

	json_open_object(w, "iosched");
	json_string(w, "name", q->elevator ? q->elevator->type->elevator_name :
		    "none");
	json_open_object(w, "classes");
	for (int i = 0; i < nr; i++) {
		json_open_object(w, st[i].name);
		json_u64(w, "dispatched", st[i].dispatched);
		json_u64(w, "merged", st[i].merged);
		if (st[i].has & ELV_STAT_EXPIRED)
			json_u64(w, "expired", st[i].expired);
		if (st[i].has & ELV_STAT_STARVED)
			json_u64(w, "starved", st[i].starved);
		json_u64(w, "max_wait_ns", st[i].max_wait_ns);
		json_close_object(w);
	}
	json_close_object(w);
	json_close_object(w);
}

static void json_hctx(struct blk_mq_hw_ctx *hctx, struct json_writer *w)
{
	unsigned long dispatched = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(hctx->dispatched); i++)
		dispatched += atomic_load(&hctx->dispatched[i]);
	json_open_object(w, NULL);
	json_u64(w, "index", hctx->queue_num);
	json_string(w, "type", hctx_type_names[hctx->type]);
	json_u64(w, "queued", atomic_load(&hctx->queued));
	json_u64(w, "run", atomic_load(&hctx->run));
	json_u64(w, "dispatch_batches", dispatched);
	json_u64(w, "requeued", atomic_load(&hctx->requeued));
	json_u64(w, "nr_active", (uint64_t)atomic_load(&hctx->nr_active));
	json_u64(w, "tags_busy", hctx->tags ? blk_mq_tags_busy(hctx->tags) : 0);
	json_close_object(w);
}

void blk_mq_debug_dump_json(struct gendisk *disk, FILE *out)
{
	struct request_queue *q = disk->queue;
	struct blk_mq_hw_ctx *hctx;
	struct json_writer w;
	unsigned int i;

	json_init(&w, out);
	json_open_object(&w, NULL);
	json_string(&w, "device", disk->disk_name);
	json_bool(&w, "blk_mq", queue_is_mq(q));
	json_u64(&w, "timeouts", atomic_load(&q->nr_timeouts));
	json_u64(&w, "requeues", atomic_load(&q->nr_requeues));
	json_u64(&w, "splits", atomic_load(&q->nr_splits));
	json_u64(&w, "plug_flushes", blk_mq_plug_flushes(q));
	if (queue_is_mq(q)) {
		pthread_mutex_lock(&q->sysfs_lock);
		json_class_stats(q, &w);
		pthread_mutex_unlock(&q->sysfs_lock);
		json_open_array(&w, "hctx");
		pthread_rwlock_rdlock(&q->hctx_lock);
		queue_for_each_hw_ctx(q, hctx, i)
			json_hctx(hctx, &w);
		pthread_rwlock_unlock(&q->hctx_lock);
		json_close_array(&w);
	}
	json_close_object(&w);
}
