// SPDX-License-Identifier: MIT
/*
 * Request time-outs (the kernel's block/blk-timeout.c and
 * blk_mq_timeout_work). One delayed work item per queue scans the
 * requests in flight when the earliest deadline may have passed; arming
 * it costs the submit path a compare in the common case, because the
 * timer only moves earlier.
 */
#include "blk.h"

/*
 * Deadlines are rounded up to BLK_TIMEOUT_SLACK_NS (blk.h) so bursts of
 * requests share one timer.
 */
void blk_arm_timeout(struct request_queue *q, uint64_t expiry)
{
	uint64_t next = atomic_load_explicit(&q->timeout_next_ns,
					     memory_order_relaxed);
	uint64_t now;

	expiry = (expiry + BLK_TIMEOUT_SLACK_NS - 1) /
		 BLK_TIMEOUT_SLACK_NS * BLK_TIMEOUT_SLACK_NS;
	do {
		if (next && next <= expiry)
			return;
	} while (!atomic_compare_exchange_weak(&q->timeout_next_ns, &next,
					       expiry));
	now = ktime_get_ns();
	kblockd_mod_delayed_work(&q->timeout_work,
				 expiry > now ? (expiry - now + NSEC_PER_MSEC - 1) /
						NSEC_PER_MSEC : 0);
}

static void blk_mq_rq_timed_out(struct request *rq)
{
	struct request_queue *q = rq->q;

	rq->rq_flags |= RQF_TIMED_OUT;
	atomic_fetch_add_explicit(&q->nr_timeouts, 1, memory_order_relaxed);
	pr_warn("%s: request (tag %d, sector %llu, %s) timed out",
		q->disk ? q->disk->disk_name : "?", rq->tag,
		(unsigned long long)blk_rq_pos(rq), blk_op_str(req_op(rq)));
	if (q->mq_ops->timeout) {
		if (q->mq_ops->timeout(rq) == BLK_EH_RESET_TIMER) {
			rq->io_start_time_ns = ktime_get_ns();
			blk_add_timer(rq);
		}
		return;
	}
	/* no handler: the core fails it, unless a completion got there first */
	int expected = MQ_RQ_IN_FLIGHT;

	if (atomic_compare_exchange_strong(&rq->state, &expected,
					   MQ_RQ_COMPLETE))
		blk_mq_end_request(rq, BLK_STS_TIMEOUT);
}

struct timeout_scan {
	uint64_t now;
	uint64_t next;
	struct request *expired[64];
	unsigned int nr_expired;
};

static bool blk_mq_req_expired(struct request *rq, struct timeout_scan *s)
{
	uint64_t deadline;

	if (blk_mq_rq_state(rq) != MQ_RQ_IN_FLIGHT)
		return false;
	if (rq->rq_flags & RQF_TIMED_OUT)
		return false;
	deadline = READ_ONCE(rq->deadline);
	if (deadline <= s->now)
		return true;
	if (!s->next || deadline < s->next)
		s->next = deadline;
	return false;
}

static bool blk_mq_check_expired(struct request *rq, void *data)
{
	struct timeout_scan *s = data;

	if (!blk_mq_req_expired(rq, s))
		return true;
	/* the iterator holds a reference; keep one for the handler */
	atomic_fetch_add(&rq->ref, 1);
	s->expired[s->nr_expired++] = rq;
	return s->nr_expired < ARRAY_SIZE(s->expired);
}

void blk_mq_check_expired_all(struct request_queue *q)
{
	struct timeout_scan s;
	struct request *flush_rq = q->fq ? q->fq->flush_rq : NULL;
	struct blk_mq_hw_ctx *hctx;
	unsigned int i;

	do {
		s.now = ktime_get_ns();
		s.next = 0;
		s.nr_expired = 0;
		blk_mq_queue_tag_busy_iter(q, blk_mq_check_expired, &s);
		for (i = 0; i < s.nr_expired; i++) {
			blk_mq_rq_timed_out(s.expired[i]);
			blk_mq_put_rq_ref(s.expired[i]);
		}
	} while (s.nr_expired == ARRAY_SIZE(s.expired));
	/* the flush request lives with the queue: check it in place */
	if (flush_rq && blk_mq_req_expired(flush_rq, &s))
		blk_mq_rq_timed_out(flush_rq);
	if (s.next) {
		blk_arm_timeout(q, s.next);
		return;
	}
	/*
	 * Nothing in flight, and nothing was for a time-out period: leave
	 * the shared tag set's active queues (the kernel's blk_mq_tag_idle
	 * here), so the queues still busy get the whole depth again.
	 */
	queue_for_each_hw_ctx(q, hctx, i)
		if (hctx->flags & BLK_MQ_F_TAG_QUEUE_SHARED)
			__blk_mq_tag_idle(hctx);
}

void blk_mq_timeout_work(struct work_struct *work)
{
	struct request_queue *q = container_of(work, struct request_queue,
					       timeout_work.work);

	atomic_store(&q->timeout_next_ns, 0);
	pthread_rwlock_rdlock(&q->hctx_lock);
	if (q->nr_hw_queues)
		blk_mq_check_expired_all(q);
	pthread_rwlock_unlock(&q->hctx_lock);
}
