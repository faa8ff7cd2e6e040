// SPDX-License-Identifier: MIT
/*
 * lib/rbtree.c: random inserts and erases (duplicates included, as the
 * schedulers' sector trees have them) against a plain sorted array, with
 * every red-black rule checked after each operation: parent links, a
 * black root, no red node with a red child, equal black height on every
 * path, in-order keys sorted, rb_first/rb_last/rb_next/rb_prev agreeing
 * with the array both ways; rb_replace_node; and a struct request's
 * rb_node space holding a node.
 */
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"
#include "lib/prandom.h"
#include "lib/rbtree.h"
#include "testlib.h"

struct item {
	struct rb_node node;
	uint64_t key;
	unsigned int id;
	bool in_tree;
};

/* Insert after equal keys, as a scheduler keeps arrival order. */
static void item_insert(struct rb_root *root, struct item *it)
{
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		struct item *cur = rb_entry(*link, struct item, node);

		parent = *link;
		if (it->key < cur->key)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&it->node, parent, link);
	rb_insert_color(&it->node, root);
	it->in_tree = true;
}

/* Black height of the subtree at @n, or -1 on any broken rule. */
static int check_subtree(const struct rb_node *n, const struct rb_node *parent,
			 unsigned int *count)
{
	int lh, rh;

	if (!n)
		return 1;
	(*count)++;
	if (!CHECK_MSG(rb_parent(n) == parent, "parent link broken"))
		return -1;
	if (rb_is_red(n) && ((n->rb_left && rb_is_red(n->rb_left)) ||
			     (n->rb_right && rb_is_red(n->rb_right)))) {
		CHECK_MSG(0, "red node with a red child");
		return -1;
	}
	lh = check_subtree(n->rb_left, n, count);
	rh = check_subtree(n->rb_right, n, count);
	if (lh < 0 || rh < 0)
		return -1;
	if (!CHECK_MSG(lh == rh, "black heights differ: %d vs %d", lh, rh))
		return -1;
	return lh + (rb_is_black(n) ? 1 : 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The tree holds exactly the keys of the items marked in_tree. */
static bool check_tree(const struct rb_root *root, struct item *items,
		       unsigned int n)
{
	uint64_t *want = malloc(n * sizeof(*want) + 1);
	unsigned int nr = 0, count = 0, i = 0;
	const struct rb_node *p;
	bool ok = true;

	for (unsigned int k = 0; k < n; k++)
		if (items[k].in_tree)
			want[nr++] = items[k].key;
	qsort(want, nr, sizeof(*want), cmp_u64);
	if (root->rb_node && !CHECK_MSG(rb_is_black(root->rb_node),
					"red root"))
		ok = false;
	if (check_subtree(root->rb_node, NULL, &count) < 0)
		ok = false;
	ok &= CHECK_EQ_U64(count, nr);
	for (p = rb_first(root); p && ok; p = rb_next(p), i++)
		ok &= CHECK_EQ_U64(rb_entry(p, struct item, node)->key,
				   want[i]);
	ok &= CHECK_EQ_U64(i, nr);
	i = nr;
	for (p = rb_last(root); p && ok; p = rb_prev(p))
		ok &= CHECK_EQ_U64(rb_entry(p, struct item, node)->key,
				   want[--i]);
	ok &= CHECK_EQ_U64(i, 0);
	free(want);
	return ok;
}

static void test_random(unsigned int n, unsigned int ops, uint64_t keyspace,
			uint64_t seed)
{
	struct item *items = calloc(n, sizeof(*items));
	struct rb_root root = RB_ROOT;
	uint64_t s = splitmix64(seed) | 1;

	REQUIRE(items);
	for (unsigned int i = 0; i < n; i++) {
		items[i].id = i;
		RB_CLEAR_NODE(&items[i].node);
		CHECK(RB_EMPTY_NODE(&items[i].node));
	}
	for (unsigned int op = 0; op < ops; op++) {
		struct item *it = &items[prandom_u64(&s) % n];

		if (it->in_tree) {
			rb_erase(&it->node, &root);
			RB_CLEAR_NODE(&it->node);
			it->in_tree = false;
		} else {
			it->key = prandom_u64(&s) % keyspace;
			item_insert(&root, it);
		}
		/* a full check each time is O(n): sample it on big runs */
		if ((n <= 64 || op % 97 == 0) && !check_tree(&root, items, n))
			break;
	}
	check_tree(&root, items, n);
	/* empty it in key order, checking as we go */
	while (!RB_EMPTY_ROOT(&root)) {
		struct item *it = rb_entry(rb_first(&root), struct item, node);

		rb_erase(&it->node, &root);
		it->in_tree = false;
		if (n <= 64 && !check_tree(&root, items, n))
			break;
	}
	CHECK(rb_first(&root) == NULL && rb_last(&root) == NULL);
	free(items);
}

static void test_sequential(void)
{
	struct item items[256];
	struct rb_root root = RB_ROOT;

	test_begin("ascending then descending inserts, erase from the middle",
		   10);
	memset(items, 0, sizeof(items));
	for (unsigned int i = 0; i < 128; i++) {
		items[i].key = i;
		item_insert(&root, &items[i]);
	}
	for (unsigned int i = 128; i < 256; i++) {
		items[i].key = 1000 - i;
		item_insert(&root, &items[i]);
	}
	REQUIRE(check_tree(&root, items, 256));
	for (unsigned int i = 64; i < 192; i++) {
		rb_erase(&items[i].node, &root);
		items[i].in_tree = false;
		if (!check_tree(&root, items, 256))
			return;
	}
}

static void test_replace(void)
{
	struct item a[16], repl;
	struct rb_root root = RB_ROOT;

	test_begin("rb_replace_node keeps the tree", 10);
	memset(a, 0, sizeof(a));
	for (unsigned int i = 0; i < 16; i++) {
		a[i].key = i * 10;
		item_insert(&root, &a[i]);
	}
	repl = a[7];
	rb_replace_node(&a[7].node, &repl.node, &root);
	a[7].in_tree = false;
	unsigned int count = 0, i = 0;

	CHECK(check_subtree(root.rb_node, NULL, &count) > 0);
	CHECK_EQ_U64(count, 16);
	for (struct rb_node *p = rb_first(&root); p; p = rb_next(p), i++) {
		CHECK_EQ_U64(rb_entry(p, struct item, node)->key, i * 10);
		if (i == 7)
			CHECK(p == &repl.node);
	}
	CHECK_EQ_U64(i, 16);
}

/* What the schedulers do: a tree of requests by sector in rb_node[]. */
static void test_request_space(void)
{
	struct request rqs[8];
	struct rb_root root = RB_ROOT;
	sector_t want = 0;

	test_begin("struct request's rb_node space holds a node", 5);
	BUILD_BUG_ON(sizeof(struct rb_node) > sizeof(rqs[0].rb_node));
	memset(rqs, 0, sizeof(rqs));
	for (unsigned int i = 0; i < 8; i++) {
		struct rb_node *node = (struct rb_node *)rqs[i].rb_node;
		struct rb_node **link = &root.rb_node, *parent = NULL;

		rqs[i].__sector = (sector_t)((i * 5) % 8) * 8;
		while (*link) {
			struct request *cur = container_of((void *)*link,
							   struct request,
							   rb_node);

			parent = *link;
			link = rqs[i].__sector < cur->__sector ?
			       &parent->rb_left : &parent->rb_right;
		}
		rb_link_node(node, parent, link);
		rb_insert_color(node, &root);
	}
	for (struct rb_node *p = rb_first(&root); p; p = rb_next(p)) {
		struct request *rq = container_of((void *)p, struct request,
						  rb_node);

		CHECK_EQ_U64(blk_rq_pos(rq), want);
		want += 8;
	}
	CHECK_EQ_U64(want, 64);
}

int main(void)
{
	test_init(1);
	test_begin("random insert/erase, 40 nodes, many duplicates", 10);
	test_random(40, 20000, 16, 1);
	test_begin("random insert/erase, 64 nodes, distinct keys", 10);
	test_random(64, 20000, 1ULL << 40, 2);
	test_begin("random insert/erase, 5000 nodes", 20);
	test_random(5000, test_scale(200000), 1ULL << 20, 3);
	test_sequential();
	test_replace();
	test_request_space();
	return test_report();
}
