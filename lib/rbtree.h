/* SPDX-License-Identifier: MIT */
/*
 * Red-black trees with the kernel's interface (include/linux/rbtree.h):
 * the node is embedded in the object, the caller walks down to the
 * insertion point itself (so it owns the comparison), links the node
 * with rb_link_node() and rebalances with rb_insert_color(). Nothing
 * here allocates or locks; the caller serialises access.
 *
 * A node is three words (parent pointer with the colour in its low bit,
 * right, left): struct request's rb_node[3] space holds one.
 */
#ifndef BLKSTACK_LIB_RBTREE_H
#define BLKSTACK_LIB_RBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/compiler.h"

struct rb_node {
	uintptr_t __rb_parent_color;	/* parent | colour (bit 0) */
	struct rb_node *rb_right;
	struct rb_node *rb_left;
} __attribute__((aligned(sizeof(uintptr_t))));

struct rb_root {
	struct rb_node *rb_node;
};

#define RB_RED		0
#define RB_BLACK	1

#define RB_ROOT		((struct rb_root){ NULL })
#define rb_entry(ptr, type, member) container_of(ptr, type, member)
#define RB_EMPTY_ROOT(root)	((root)->rb_node == NULL)

static inline struct rb_node *rb_parent(const struct rb_node *node)
{
	return (struct rb_node *)(node->__rb_parent_color & ~(uintptr_t)3);
}

static inline int rb_color(const struct rb_node *node)
{
	return (int)(node->__rb_parent_color & 1);
}

static inline bool rb_is_red(const struct rb_node *node)
{
	return rb_color(node) == RB_RED;
}

static inline bool rb_is_black(const struct rb_node *node)
{
	return rb_color(node) == RB_BLACK;
}

/* A node not in any tree points at itself (RB_CLEAR_NODE). */
#define RB_EMPTY_NODE(node) \
	((node)->__rb_parent_color == (uintptr_t)(node))
#define RB_CLEAR_NODE(node) \
	((node)->__rb_parent_color = (uintptr_t)(node))

/* Hang @node (red, no children) at *@link below @parent. */
static inline void rb_link_node(struct rb_node *node, struct rb_node *parent,
				struct rb_node **link)
{
	node->__rb_parent_color = (uintptr_t)parent;
	node->rb_left = NULL;
	node->rb_right = NULL;
	*link = node;
}

/* Rebalance after rb_link_node(). */
void rb_insert_color(struct rb_node *node, struct rb_root *root);
/* Take @node out of @root and rebalance; @node is left as it was. */
void rb_erase(struct rb_node *node, struct rb_root *root);

/* In-order walking; NULL past either end. */
struct rb_node *rb_first(const struct rb_root *root);
struct rb_node *rb_last(const struct rb_root *root);
struct rb_node *rb_next(const struct rb_node *node);
struct rb_node *rb_prev(const struct rb_node *node);

/* Put @new where @victim is, without rebalancing (same key). */
void rb_replace_node(struct rb_node *victim, struct rb_node *new,
		     struct rb_root *root);

#endif
