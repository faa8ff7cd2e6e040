/* SPDX-License-Identifier: MIT */
#include <blkstack/list.h>
