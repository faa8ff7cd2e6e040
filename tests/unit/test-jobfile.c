// SPDX-License-Identifier: MIT
/*
 * lib/jobfile.c and lib/bench-job.c: fio job files and --name sections
 * split into entries that know where they came from; jobs built from
 * them inherit the globals seen before them; rate_iops, prio, thinktime
 * and the run-wide options; and the one-line file:line messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blkstack/blk_types.h>

#include "lib/bench-job.h"
#include "lib/compiler.h"
#include "lib/jobfile.h"
#include "testlib.h"

static bool entry_is(const struct jobfile *jf, size_t i, enum jobfile_kind k,
		     const char *key, const char *val, const char *where)
{
	const struct jobfile_entry *e = &jf->e[i];

	if (i >= jf->nr)
		return false;
	return e->kind == k && !strcmp(e->key, key) &&
	       (val ? e->val && !strcmp(e->val, val) : !e->val) &&
	       !strcmp(e->where, where);
}

static void test_ini(void)
{
	static const char buf[] =
		"; a comment\n"
		"# another\n"
		"[global]\n"
		"  bs = 8k   ; trailing comment\n"
		"direct\n"
		"\n"
		"[reader one]\n"
		"rw=randread\n"
		"verify_pattern=0x#1\n"
		"[global]\n"
		"[w]\n";
	struct jobfile jf;

	test_begin("ini syntax", 10);
	jobfile_init(&jf);
	CHECK_EQ_INT(jobfile_parse_buf(&jf, "t.fio", buf), 0);
	CHECK_EQ_U64(jf.nr, 8);
	CHECK(entry_is(&jf, 0, JF_GLOBAL, "global", NULL, "t.fio:3"));
	CHECK(entry_is(&jf, 1, JF_OPTION, "bs", "8k", "t.fio:4"));
	CHECK(entry_is(&jf, 2, JF_OPTION, "direct", NULL, "t.fio:5"));
	CHECK(entry_is(&jf, 3, JF_JOB, "reader one", NULL, "t.fio:7"));
	CHECK(entry_is(&jf, 4, JF_OPTION, "rw", "randread", "t.fio:8"));
	/* '#' inside a value is data, not a comment */
	CHECK(entry_is(&jf, 5, JF_OPTION, "verify_pattern", "0x#1", "t.fio:9"));
	CHECK(entry_is(&jf, 6, JF_GLOBAL, "global", NULL, "t.fio:10"));
	CHECK(entry_is(&jf, 7, JF_JOB, "w", NULL, "t.fio:11"));
	jobfile_free(&jf);
	CHECK_EQ_U64(jf.nr, 0);
}

/* Each bad file fails with this exact message. */
static void check_bad_ini(const char *buf, const char *msg)
{
	struct jobfile jf;
	int ret;

	jobfile_init(&jf);
	ret = jobfile_parse_buf(&jf, "bad.fio", buf);
	CHECK_MSG(ret == -EINVAL && !strcmp(jf.err, msg),
		  "'%s': got %d '%s', wanted '%s'", buf, ret, jf.err, msg);
	jobfile_free(&jf);
}

static void test_ini_errors(void)
{
	test_begin("ini errors", 10);
	check_bad_ini("bs=4k\n[a]\n",
		      "bad.fio:1: 'bs=4k' comes before any section; start with [global] or [JOBNAME]");
	check_bad_ini("[a]\n[b\n",
		      "bad.fio:2: '[b': a section header is [global] or [JOBNAME]");
	check_bad_ini("[ ]\n",
		      "bad.fio:1: '[]': a section needs a name, like [global] or [reader]");
	check_bad_ini("[a]\nrw=read\nb s=4k\n",
		      "bad.fio:3: 'b s=4k': expected key=value, key, [global] or [JOBNAME]");
	check_bad_ini("[a]\n=4k\n",
		      "bad.fio:2: '=4k': expected key=value, key, [global] or [JOBNAME]");
	check_bad_ini("; only a comment\n",
		      "bad.fio: no sections: a job file has [global] and [JOBNAME] sections");
}

static int parse_args(struct jobfile *jf, ...)
{
	char *argv[16] = { "blkbench" };
	int argc = 1;
	va_list ap;

	va_start(ap, jf);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	jobfile_init(jf);
	return jobfile_parse_args(jf, argc, argv);
}

static void test_args(void)
{
	char path[] = "/tmp/test-jobfile-XXXXXX";
	struct jobfile jf;
	int fd;

	test_begin("command line", 10);
	fd = mkstemp(path);
	if (!CHECK(fd >= 0))
		return;
	CHECK(write(fd, "[f]\nrw=write\n", 13) == 13);
	close(fd);
	/* the file's sections come after the whole command line, as in fio */
	CHECK_EQ_INT(parse_args(&jf, "--bs=4k", path, "--name=a", "--iodepth=1",
				"--name=global", "--direct", NULL), 0);
	CHECK_EQ_U64(jf.nr, 7);
	CHECK(entry_is(&jf, 0, JF_OPTION, "bs", "4k", "--bs=4k"));
	CHECK(entry_is(&jf, 1, JF_JOB, "a", NULL, "--name=a"));
	CHECK(entry_is(&jf, 2, JF_OPTION, "iodepth", "1", "--iodepth=1"));
	CHECK(entry_is(&jf, 3, JF_GLOBAL, "global", NULL, "--name=global"));
	CHECK(entry_is(&jf, 4, JF_OPTION, "direct", NULL, "--direct"));
	CHECK(jf.nr == 7 && jf.e[5].kind == JF_JOB && !strcmp(jf.e[5].key, "f"));
	jobfile_free(&jf);

	CHECK_EQ_INT(parse_args(&jf, "--bs=1k", "--help", NULL), JOBFILE_HELP);
	jobfile_free(&jf);
	CHECK_EQ_INT(parse_args(&jf, "--version", NULL), JOBFILE_VERSION);
	jobfile_free(&jf);
	CHECK_EQ_INT(parse_args(&jf, "--name", NULL), -EINVAL);
	CHECK(!strcmp(jf.err, "--name: needs a job name (--name=JOB)"));
	jobfile_free(&jf);
	CHECK_EQ_INT(parse_args(&jf, "-x", NULL), -EINVAL);
	CHECK(!strcmp(jf.err, "-x: unexpected argument (options are --NAME=VALUE, job files are FILE)"));
	jobfile_free(&jf);
	unlink(path);
	CHECK_EQ_INT(parse_args(&jf, path, NULL), -ENOENT);
	CHECK_MSG(strstr(jf.err, "cannot open the job file: No such file"),
		  "%s", jf.err);
	jobfile_free(&jf);
}

/* bb_jobs_build() of job file @buf, with stderr captured into @err. */
static int build(const char *buf, struct bb_opts **jobs, unsigned int *nr,
		 struct jobfile *jf, char *err, size_t len)
{
	FILE *tmp = tmpfile();
	int saved, ret;
	size_t n;

	jobfile_init(jf);
	ret = jobfile_parse_buf(jf, "j.fio", buf);
	if (ret)
		return ret;
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tmp), 2);
	ret = bb_jobs_build(jf, jobs, nr);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, len - 1, tmp);
	err[n] = 0;
	fclose(tmp);
	return ret;
}

static void test_jobs(void)
{
	static const char buf[] =
		"[global]\n"
		"bs=8k\n"
		"iodepth=4\n"
		"[a]\n"
		"rw=read\n"
		"prio=3\n"
		"rate_iops=100\n"
		"[b]\n"
		"bs=16k\n"
		"prioclass=1\n"
		"weight=400\n"
		"rate_iops=,50\n"
		"thinktime=250\n"
		"thinktime_blocks=4\n"
		"numjobs=2\n"
		"[global]\n"
		"iodepth=1\n"
		"new_group\n"
		"[c]\n"
		"rate_iops=7,9\n"
		"thinktime=2ms\n";
	struct bb_opts *j = NULL;
	struct jobfile jf;
	unsigned int nr = 0;
	char err[512];

	test_begin("jobs from sections", 10);
	if (!CHECK_EQ_INT(build(buf, &j, &nr, &jf, err, sizeof(err)), 0) ||
	    !CHECK_EQ_U64(nr, 3)) {
		fprintf(stderr, "%s", err);
		goto out;
	}
	CHECK(!strcmp(j[0].name, "a") && !strcmp(j[1].name, "b") &&
	      !strcmp(j[2].name, "c"));
	/* globals reach the jobs after them, a job's own options win */
	CHECK(j[0].bs == 8192 && j[1].bs == 16384 && j[2].bs == 8192);
	CHECK(j[0].iodepth == 4 && j[1].iodepth == 4 && j[2].iodepth == 1);
	CHECK(j[0].rw == RW_READ && j[1].rw == RW_RANDREAD);
	CHECK(j[1].numjobs == 2 && j[0].numjobs == 1);
	/* a level without a class is best effort (fio) */
	CHECK_EQ_U64(j[0].ioprio, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 3));
	CHECK_EQ_U64(j[1].ioprio, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 0));
	CHECK_EQ_U64(j[2].ioprio, 0);
	CHECK(j[0].weight == 0 && j[1].weight == 400);
	CHECK(j[0].rate_iops[DDIR_READ] == 100 && j[0].rate_iops[DDIR_WRITE] == 100);
	CHECK(j[1].rate_iops[DDIR_READ] == 0 && j[1].rate_iops[DDIR_WRITE] == 50);
	CHECK(j[2].rate_iops[DDIR_READ] == 7 && j[2].rate_iops[DDIR_WRITE] == 9);
	/* thinktime's bare number is microseconds */
	CHECK_EQ_U64(j[1].thinktime_ns, 250000);
	CHECK_EQ_U64(j[2].thinktime_ns, 2000000);
	CHECK(j[1].thinktime_blocks == 4 && j[0].thinktime_blocks == 1);
	CHECK(j[0].groupid == 0 && j[1].groupid == 0 && j[2].groupid == 1);
	/* each job knows its own options, for "job options" */
	CHECK(j[0].nr_own == 3 && !strcmp(j[0].own[0].key, "rw"));
	CHECK(j[1].nr_own == 7 && !strcmp(j[1].own[6].key, "numjobs"));
	/* no --size or --runtime: 10 s time_based, as before */
	CHECK(j[0].time_based && j[0].runtime_ns == 10000000000ULL);
out:
	free(j);
	jobfile_free(&jf);
}

/* fio's command-line-only options reach every job wherever they stand */
static void test_process_wide(void)
{
	struct bb_opts *j = NULL;
	struct jobfile jf;
	unsigned int nr = 0;
	char err[512];

	test_begin("output-format and eta anywhere", 10);
	CHECK_EQ_INT(build("[a]\n[b]\noutput-format=json\neta=never\n", &j,
			   &nr, &jf, err, sizeof(err)), 0);
	CHECK(nr == 2 && j[0].format == FMT_JSON && j[1].format == FMT_JSON);
	CHECK(nr == 2 && j[0].eta == ETA_NEVER && j[1].eta == ETA_NEVER);
	CHECK(nr == 2 && j[1].nr_own == 0);
	free(j);
	jobfile_free(&jf);
}

static void check_bad_jobs(const char *buf, const char *msg)
{
	struct bb_opts *j = NULL;
	struct jobfile jf;
	unsigned int nr = 7;
	char err[512];
	int ret;

	ret = build(buf, &j, &nr, &jf, err, sizeof(err));
	CHECK_MSG(ret && !j && !nr && !strcmp(err, msg),
		  "got %d '%s', wanted '%s'", ret, err, msg);
	free(j);
	jobfile_free(&jf);
}

static void test_job_errors(void)
{
	test_begin("job errors", 10);
	check_bad_jobs("[a]\nrw=read\nrw=foo\n",
		       "blkbench: j.fio:3: rw=foo: valid values are read, write, randread, randwrite, randrw, readwrite\n");
	check_bad_jobs("[global]\nbogus=1\n",
		       "blkbench: j.fio:2: bogus=1: unknown option bogus (blkbench --help lists them)\n");
	check_bad_jobs("[a]\nprio=8\n",
		       "blkbench: j.fio:2: prio=8: must be a whole number from 0 to 7\n");
	check_bad_jobs("[a]\nrate_iops=1x\n",
		       "blkbench: job 'a': --rate_iops=1x: expected IOPS per thread: N for both directions, or READ,WRITE (each 0..100000000, 0 = no cap)\n");
	check_bad_jobs("[a]\nthinktime=1d\n",
		       "blkbench: j.fio:2: thinktime=1d: expected a time like 100 (microseconds), 100us, 5ms or 1s\n");
	check_bad_jobs("[a]\nverify=crc32c\n",
		       "blkbench: job 'a': --verify: needs a job that writes (--rw=write, randwrite, randrw or readwrite): a new device holds nothing to check\n");
	check_bad_jobs("[a]\n[b]\nfilename=null:size=2G\n",
		       "blkbench: job 'b': --filename=null:size=2G: differs from job 'a' (null:size=1G,irqmode=0): all jobs run on one device in one run; set it once, in [global] or before the first --name\n");
	check_bad_jobs("[a]\nioscheduler=none\n[b]\n",
		       "blkbench: job 'b': --ioscheduler=(unset): differs from job 'a' (none): all jobs run on one device in one run; set it once, in [global] or before the first --name\n");
}

int main(void)
{
	test_init(2);
	test_ini();
	test_ini_errors();
	test_args();
	test_jobs();
	test_process_wide();
	test_job_errors();
	return test_report();
}
