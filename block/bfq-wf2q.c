// SPDX-License-Identifier: MIT
/*
 * B-WF2Q+ for BFQ (the kernel's block/bfq-wf2q.c), flat: one service tree
 * per I/O priority class, no groups.
 *
 * Each busy queue's entity has a virtual start time S and finish time
 * F = S + budget / weight. The tree's virtual time V advances by the
 * service given divided by the sum of the busy weights. An entity is
 * eligible when S <= V; the next to serve is the eligible one with the
 * smallest F. So each queue gets service in proportion to its weight,
 * and the one whose budget ends first (in virtual time) goes first.
 *
 * The kernel augments the tree with each subtree's minimum start to find
 * the first eligible entity in O(log n); with the few busy queues a
 * device has here, a walk in finish order does the same in O(n).
 *
 * Classes are strict: RT before BE before IDLE, except that the idle
 * class gets the device once every BFQ_CL_IDLE_TIMEOUT_MS so that it is
 * never starved. Callers hold bfqd->lock.
 */
#include "bfq-iosched.h"

/* virtual time resolution: service << shift / weight */
#define BFQ_SERVICE_SHIFT	22

static uint64_t bfq_delta(unsigned long service, unsigned long weight)
{
	return ((uint64_t)service << BFQ_SERVICE_SHIFT) / max(1UL, weight);
}

static struct bfq_entity *bfq_entity_of(struct rb_node *node)
{
	return node ? rb_entry(node, struct bfq_entity, rb_node) : NULL;
}

void bfq_init_sched_data(struct bfq_sched_data *sd)
{
	for (unsigned int i = 0; i < BFQ_IOPRIO_CLASSES; i++)
		sd->st[i].active = RB_ROOT;
}

static struct bfq_service_tree *bfq_st(struct bfq_sched_data *sd,
				       unsigned short ioprio_class)
{
	BUG_ON(ioprio_class < 1 || ioprio_class > BFQ_IOPRIO_CLASSES);
	return &sd->st[ioprio_class - 1];
}

/* Equal finish times go right: arrival order among them. */
static void bfq_insert_active(struct bfq_service_tree *st,
			      struct bfq_entity *entity)
{
	struct rb_node **link = &st->active.rb_node, *parent = NULL;

	BUG_ON(bfq_entity_on_tree(entity));
	while (*link) {
		parent = *link;
		if ((int64_t)(entity->finish - bfq_entity_of(parent)->finish) <
		    0)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&entity->rb_node, parent, link);
	rb_insert_color(&entity->rb_node, &st->active);
}

static void bfq_extract_active(struct bfq_service_tree *st,
			       struct bfq_entity *entity)
{
	rb_erase(&entity->rb_node, &st->active);
	RB_CLEAR_NODE(&entity->rb_node);
}

/* The weight an entity counts with in wsum follows its current weight. */
static void bfq_update_wsum(struct bfq_service_tree *st,
			    struct bfq_entity *entity)
{
	st->wsum = st->wsum - entity->wsum_weight + entity->weight;
	entity->wsum_weight = entity->weight;
}

static void bfq_calc_finish(struct bfq_entity *entity)
{
	entity->finish = entity->start + bfq_delta(entity->budget,
						   entity->weight);
}

/*
 * A queue became busy. It starts at V, or later if it comes back before
 * V reached the finish of its last turn: leaving and coming back must
 * not buy a queue extra service. A @backshifted one (back in time, see
 * bfq_budget_for_activation()) starts at its last finish even when V
 * is past it: it goes on as if it had never left.
 */
void bfq_activate_entity(struct bfq_sched_data *sd, struct bfq_entity *entity,
			 unsigned short ioprio_class, bool backshifted)
{
	struct bfq_service_tree *st = bfq_st(sd, ioprio_class);

	if (backshifted || (int64_t)(entity->finish - st->vtime) > 0)
		entity->start = entity->finish;
	else
		entity->start = st->vtime;
	entity->service = 0;
	entity->wsum_weight = 0;
	bfq_update_wsum(st, entity);
	st->nr++;
	bfq_calc_finish(entity);
	bfq_insert_active(st, entity);
}

/* The in-service queue still has requests: back in line for a new turn. */
void bfq_requeue_entity(struct bfq_sched_data *sd, struct bfq_entity *entity,
			unsigned short ioprio_class)
{
	struct bfq_service_tree *st = bfq_st(sd, ioprio_class);

	entity->start = entity->finish;
	entity->service = 0;
	bfq_update_wsum(st, entity);
	bfq_calc_finish(entity);
	bfq_insert_active(st, entity);
}

/* The queue emptied: out of the tree; its finish time is remembered. */
void bfq_deactivate_entity(struct bfq_sched_data *sd,
			   struct bfq_entity *entity,
			   unsigned short ioprio_class)
{
	struct bfq_service_tree *st = bfq_st(sd, ioprio_class);

	if (bfq_entity_on_tree(entity))
		bfq_extract_active(st, entity);
	BUG_ON(!st->nr || st->wsum < entity->wsum_weight);
	st->wsum -= entity->wsum_weight;
	entity->wsum_weight = 0;
	st->nr--;
}

/*
 * The turn of the in-service entity ended with @served sectors charged:
 * V advances by them over the busy weights, and its finish time becomes
 * what the service actually received is worth.
 */
void bfq_entity_served(struct bfq_sched_data *sd, struct bfq_entity *entity,
		       unsigned long served, unsigned short ioprio_class)
{
	struct bfq_service_tree *st = bfq_st(sd, ioprio_class);

	WARN_ON_ONCE(bfq_entity_on_tree(entity));
	st->vtime += bfq_delta(served, st->wsum);
	entity->finish = entity->start + bfq_delta(served, entity->weight);
}

/* The eligible entity (S <= V) with the smallest F, or NULL. */
static struct bfq_entity *bfq_first_eligible(struct bfq_service_tree *st)
{
	struct rb_node *n;

	for (n = rb_first(&st->active); n; n = rb_next(n)) {
		struct bfq_entity *entity = bfq_entity_of(n);

		if ((int64_t)(entity->start - st->vtime) <= 0)
			return entity;
	}
	return NULL;
}

/* Nobody eligible: V jumps to the smallest start (it is idle time). */
static void bfq_update_vtime(struct bfq_service_tree *st)
{
	struct rb_node *n = rb_first(&st->active);
	uint64_t min_start = bfq_entity_of(n)->start;

	for (n = rb_next(n); n; n = rb_next(n))
		if ((int64_t)(bfq_entity_of(n)->start - min_start) < 0)
			min_start = bfq_entity_of(n)->start;
	if ((int64_t)(min_start - st->vtime) > 0)
		st->vtime = min_start;
}

static struct bfq_entity *bfq_lookup_next(struct bfq_service_tree *st)
{
	struct bfq_entity *entity;

	if (RB_EMPTY_ROOT(&st->active))
		return NULL;
	entity = bfq_first_eligible(st);
	if (!entity) {
		bfq_update_vtime(st);
		entity = bfq_first_eligible(st);
	}
	BUG_ON(!entity);
	bfq_extract_active(st, entity);
	return entity;
}

/*
 * The entity to put in service: from the highest class with busy queues,
 * or from the idle class when it has waited BFQ_CL_IDLE_TIMEOUT_MS.
 */
struct bfq_entity *bfq_get_next_entity(struct bfq_sched_data *sd,
				       uint64_t now)
{
	struct bfq_service_tree *idle = &sd->st[BFQ_IOPRIO_CLASSES - 1];
	struct bfq_entity *entity;

	if (RB_EMPTY_ROOT(&idle->active)) {
		sd->idle_class_last_service = now;
	} else if (now - sd->idle_class_last_service >
		   BFQ_CL_IDLE_TIMEOUT_MS * NSEC_PER_MSEC) {
		sd->idle_class_last_service = now;
		return bfq_lookup_next(idle);
	}
	for (unsigned int i = 0; i < BFQ_IOPRIO_CLASSES; i++) {
		entity = bfq_lookup_next(&sd->st[i]);
		if (entity) {
			if (i == BFQ_IOPRIO_CLASSES - 1)
				sd->idle_class_last_service = now;
			return entity;
		}
	}
	return NULL;
}

/*
 * Do the busy sync queues differ in weight, or is more than one class
 * busy? Then idling is what keeps the weights honoured, even where it
 * costs throughput (the kernel's bfq_asymmetric_scenario()).
 */
bool bfq_asymmetric_scenario(struct bfq_data *bfqd)
{
	unsigned int weight = 0;
	unsigned int classes = 0;
	struct bfq_queue *bfqq;

	for (unsigned int i = 0; i < BFQ_IOPRIO_CLASSES; i++)
		classes += bfqd->busy_queues[i] != 0;
	if (classes > 1)
		return true;
	list_for_each_entry(bfqq, &bfqd->sync_queues, bfqq_list) {
		if (!bfqq->busy)
			continue;
		if (weight && bfqq->entity.weight != weight)
			return true;
		weight = bfqq->entity.weight;
	}
	return false;
}
