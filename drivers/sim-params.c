// SPDX-License-Identifier: MIT
/*
 * sim's parameters: defaults per model (a 7200 rpm SATA disk, a TLC
 * NVMe SSD; the figures and where they come from are in docs/sim.md),
 * parsing "key=value,..." with a message naming the bad key or value
 * and the valid ones, and the cross-checks between values.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/sim.h"
#include "lib/compiler.h"

void sim_params_default(struct sim_params *p, enum sim_model_kind model)
{
	memset(p, 0, sizeof(*p));
	p->model = model;
	p->size_mb = 1024;
	p->bs = 512;
	p->time_scale = 1;
	p->time_div = 1;
	p->seed = 1;
	p->memory_backed = 1;
	p->write_cache = 1;
	if (model == SIM_HDD) {
		p->cmd_overhead_us = 50;
		p->interface_mbps = 550;
		p->rpm = 7200;
		p->track_to_track_us = 1000;
		p->avg_seek_us = 8500;
		p->full_seek_us = 16000;
		p->outer_mbps = 200;
		p->inner_mbps = 100;
		p->cylinders = 100000;
		p->ncq_depth = 32;
		p->ncq_age_ms = 500;
		p->cache_size_mb = 64;
		p->readahead_kb = 256;
	} else {
		p->cmd_overhead_us = 10;
		p->interface_mbps = 3500;
		p->channels = 8;
		p->dies_per_channel = 4;
		p->read_us = 70;
		p->program_us = 700;
		p->erase_us = 3500;
		p->program_kb = 64;
		p->pages_per_block = 256;
		p->channel_mbps = 800;
		p->write_buffer_mb = 16;
		p->gc_threshold = 80;
		p->over_provisioning = 7;
		p->dynamic_alloc = 1;
		p->suspend = 1;
		p->program_suspend_us = 40;
		p->erase_suspend_us = 100;
		p->resume_us = 20;
		p->max_suspends = 5;
	}
}

struct sim_key {
	const char *name;
	size_t off;
	unsigned long lo, hi;
	unsigned int models;	/* bit per enum sim_model_kind */
};

#define ALL	3U
#define HDD	(1U << SIM_HDD)
#define SSD	(1U << SIM_SSD)
#define KEY(n, lo, hi, m) { #n, offsetof(struct sim_params, n), lo, hi, m }

static const struct sim_key sim_keys[] = {
	KEY(bs, 512, 4096, ALL),
	KEY(hw_queue_depth, 1, 4096, ALL),
	KEY(memory_backed, 0, 1, ALL),
	KEY(write_cache, 0, 1, ALL),
	KEY(cmd_overhead_us, 0, 100000, ALL),
	KEY(interface_mbps, 1, 100000, ALL),
	KEY(rpm, 3600, 20000, HDD),
	KEY(track_to_track_us, 1, 100000, HDD),
	KEY(avg_seek_us, 1, 100000, HDD),
	KEY(full_seek_us, 1, 200000, HDD),
	KEY(outer_mbps, 1, 10000, HDD),
	KEY(inner_mbps, 1, 10000, HDD),
	KEY(cylinders, 100, 10000000, HDD),
	KEY(ncq_depth, 1, 32, HDD),
	KEY(ncq_age_ms, 1, 100000, HDD),
	KEY(cache_size_mb, 1, 4096, HDD),
	KEY(readahead_kb, 0, 65536, HDD),
	KEY(channels, 1, 64, SSD),
	KEY(dies_per_channel, 1, 64, SSD),
	KEY(read_us, 1, 100000, SSD),
	KEY(program_us, 1, 100000, SSD),
	KEY(erase_us, 1, 1000000, SSD),
	KEY(program_kb, 4, 1024, SSD),
	KEY(pages_per_block, 8, 65536, SSD),
	KEY(channel_mbps, 1, 100000, SSD),
	KEY(write_buffer_mb, 1, 4096, SSD),
	KEY(gc_threshold, 1, 99, SSD),
	KEY(over_provisioning, 1, 100, SSD),
	KEY(dynamic_alloc, 0, 1, SSD),
	KEY(suspend, 0, 1, SSD),
	KEY(program_suspend_us, 0, 100000, SSD),
	KEY(erase_suspend_us, 0, 1000000, SSD),
	KEY(resume_us, 0, 100000, SSD),
	KEY(max_suspends, 1, 1000, SSD),
};

static const char sim_key_list[] = "model, size, seed, bs, hw_queue_depth, "
	"time_scale, memory_backed, write_cache, cmd_overhead_us, "
	"interface_mbps; hdd: rpm, track_to_track_us, avg_seek_us, "
	"full_seek_us, outer_mbps, inner_mbps, cylinders, ncq_depth, "
	"ncq_age_ms, "
	"cache_size_mb, readahead_kb; ssd: channels, dies_per_channel, "
	"read_us, program_us, erase_us, program_kb, pages_per_block, "
	"channel_mbps, write_buffer_mb, gc_threshold, over_provisioning, "
	"dynamic_alloc, suspend, program_suspend_us, erase_suspend_us, resume_us, "
	"max_suspends";

static int sim_parse_size(const char *v, uint64_t *mb)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult = 1;

	if (end == v || *v == '-')
		goto bad;
	if (*end == 'G' || *end == 'g')
		mult = 1024;
	else if (*end == 'T' || *end == 't')
		mult = 1024 * 1024;
	else if (*end && *end != 'M' && *end != 'm')
		goto bad;
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		goto bad;
	if (!n || n > (1ULL << 24) / mult)
		goto bad;
	*mb = n * mult;
	return 0;
bad:
	return blk_err(-EINVAL, "sim: size=%s: a size in MiB or with a M/G/T "
		       "suffix, from 1M to 16T (e.g. size=1G)", v);
}

static unsigned int sim_gcd(unsigned int a, unsigned int b)
{
	while (b) {
		unsigned int t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * time_scale: a whole number, or a decimal with up to three places;
 * below 1 the model runs slower than the wall clock, which shrinks the
 * host's own delays (thread wake-ups) in model time.
 */
static int sim_parse_scale(struct sim_params *p, const char *v)
{
	unsigned long whole, milli = 0;
	unsigned int places = 0, g;
	char *end;

	whole = strtoul(v, &end, 10);
	if (end == v || *v == '-')
		goto bad;
	if (*end == '.') {
		for (end++; isdigit((unsigned char)*end) && places < 3; end++)
			milli = milli * 10 + (unsigned long)(*end - '0'), places++;
		for (; places < 3; places++)
			milli *= 10;
	}
	if (*end || whole > 1000000 || (whole == 1000000 && milli) ||
	    (!whole && !milli))
		goto bad;
	milli += whole * 1000;
	g = sim_gcd((unsigned int)milli, 1000);
	p->time_scale = (unsigned int)(milli / g);
	p->time_div = 1000 / g;
	return 0;
bad:
	return blk_err(-EINVAL, "sim: time_scale=%s: valid values are "
		       "0.001..1000000 (up to three decimals; below 1 the "
		       "model runs slower than the wall clock)", v);
}

static int sim_parse_key(struct sim_params *p, const char *k, const char *v)
{
	const struct sim_key *key = NULL;
	unsigned long n;
	char *end;

	if (!strcmp(k, "size"))
		return sim_parse_size(v, &p->size_mb);
	if (!strcmp(k, "time_scale"))
		return sim_parse_scale(p, v);
	if (!strcmp(k, "seed")) {
		p->seed = strtoull(v, &end, 0);
		if (end == v || *end || *v == '-')
			return blk_err(-EINVAL, "sim: seed=%s: an unsigned "
				       "integer", v);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sim_keys); i++)
		if (!strcmp(sim_keys[i].name, k))
			key = &sim_keys[i];
	if (!key)
		return blk_err(-EINVAL, "sim: unknown parameter '%s'; valid: %s",
			       k, sim_key_list);
	if (!(key->models & (1U << p->model)))
		return blk_err(-EINVAL, "sim: %s is a parameter of model=%s, "
			       "not model=%s", k,
			       p->model == SIM_HDD ? "ssd" : "hdd",
			       p->model == SIM_HDD ? "hdd" : "ssd");
	n = strtoul(v, &end, 10);
	if (end == v || *end || *v == '-' || n < key->lo || n > key->hi)
		return blk_err(-EINVAL, "sim: %s=%s: valid values are %lu..%lu",
			       k, v, key->lo, key->hi);
	*(unsigned int *)((char *)p + key->off) = (unsigned int)n;
	return 0;
}

/* The model decides the defaults: find it before anything else. */
static int sim_find_model(const char *params, enum sim_model_kind *model)
{
	const char *s = params;

	*model = SIM_HDD;
	while ((s = strstr(s, "model="))) {
		if (s == params || s[-1] == ',') {
			const char *v = s + 6;
			size_t len = strcspn(v, ",");

			if (len == 3 && !strncmp(v, "hdd", 3))
				*model = SIM_HDD;
			else if (len == 3 && !strncmp(v, "ssd", 3))
				*model = SIM_SSD;
			else
				return blk_err(-EINVAL, "sim: model=%.*s: valid "
					       "values are hdd, ssd", (int)len,
					       v);
		}
		s += 6;
	}
	return 0;
}

static int sim_params_check(struct sim_params *p)
{
	if (p->bs & (p->bs - 1))
		return blk_err(-EINVAL, "sim: bs=%u: a power of two from 512 "
			       "to 4096", p->bs);
	if (p->model == SIM_HDD &&
	    (p->track_to_track_us > p->avg_seek_us ||
	     p->avg_seek_us > p->full_seek_us))
		return blk_err(-EINVAL, "sim: seek times must rise: "
			       "track_to_track_us (%u) <= avg_seek_us (%u) <= "
			       "full_seek_us (%u)", p->track_to_track_us,
			       p->avg_seek_us, p->full_seek_us);
	if (p->model == SIM_HDD && p->inner_mbps > p->outer_mbps)
		return blk_err(-EINVAL, "sim: inner_mbps (%u) must not exceed "
			       "outer_mbps (%u): outer tracks are longer",
			       p->inner_mbps, p->outer_mbps);
	if (p->model == SIM_HDD && p->hw_queue_depth > p->ncq_depth)
		return blk_err(-EINVAL, "sim: hw_queue_depth=%u: a disk takes "
			       "at most ncq_depth (%u) commands",
			       p->hw_queue_depth, p->ncq_depth);
	if (!p->hw_queue_depth)
		p->hw_queue_depth = p->model == SIM_HDD ? p->ncq_depth : 128;
	return 0;
}

int sim_params_parse(struct sim_params *out, const char *params)
{
	char *buf = strdup(params ? params : ""), *save, *tok;
	enum sim_model_kind model;
	struct sim_params p;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = sim_find_model(buf, &model);
	sim_params_default(&p, model);
	for (tok = strtok_r(buf, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			ret = blk_err(-EINVAL, "sim: '%s': parameters are "
				      "key=value; valid keys: %s", tok,
				      sim_key_list);
			break;
		}
		*eq = '\0';
		if (strcmp(tok, "model"))
			ret = sim_parse_key(&p, tok, eq + 1);
	}
	free(buf);
	if (!ret)
		ret = sim_params_check(&p);
	if (!ret)
		*out = p;
	return ret;
}
