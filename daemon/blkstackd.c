// SPDX-License-Identifier: MIT
/*
 * blkstackd: hosts block devices, serves them over NBD and takes blkctl
 * commands on a unix socket (docs/blkstackd.md). Runs in the foreground
 * (systemd Type=simple); SIGHUP reloads the config, SIGTERM/SIGINT shut
 * down cleanly: no new connections, in-flight I/O answered, volatile
 * caches flushed, devices removed. Signals arrive through a signalfd on
 * the main loop, never in handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>

#include "blkstackd.h"
#include "blkctl-proto.h"
#include "lib/log.h"

#define NBD_DEFAULT_LISTEN	"127.0.0.1:10809"

struct options {
	const char *config;
	bool no_default;
	const char *state_dir;
	const char *socket;
	const char *nbd_listen;
	const char *pid_file;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: blkstackd [--config FILE] [--no-default] [--state-dir DIR]\n"
"                 [--socket PATH] [--nbd-listen HOST:PORT|unix:PATH|none]\n"
"                 [--pid-file PATH] [--log-level error|warn|info|debug]\n"
"Without --config, starts nullb0 (null, 1G) and disk0 (uring, 1G file in\n"
"the state directory), both exported over NBD on " NBD_DEFAULT_LISTEN ".\n"
"docs/blkstackd.md has the details.\n");
}

static int parse_log_level(const char *s)
{
	static const char *const names[] = {
		[LOG_ERR] = "error", [LOG_WARNING] = "warn",
		[LOG_NOTICE] = "notice", [LOG_INFO] = "info",
		[LOG_DEBUG] = "debug",
	};

	for (int i = 0; i <= LOG_DEBUG; i++)
		if (!strcmp(s, names[i])) {
			blk_log_set_level((enum log_level)i);
			return 0;
		}
	fprintf(stderr, "blkstackd: --log-level=%s: valid values are error, "
		"warn, notice, info, debug\n", s);
	return -EINVAL;
}

/* 0, 1 to exit 0 (--help), or -EINVAL (the message is printed). */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-default", no_argument, NULL, 'n' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "nbd-listen", required_argument, NULL, 'l' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	blk_log_set_level(LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:nhs:S:l:p:L:", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'n': o->no_default = true; break;
		case 's': o->state_dir = optarg; break;
		case 'S': o->socket = optarg; break;
		case 'l': o->nbd_listen = optarg; break;
		case 'p': o->pid_file = optarg; break;
		case 'L':
			if (parse_log_level(optarg))
				return -EINVAL;
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "blkstackd: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p with @mode for the parts it makes. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static int mkdir_parent(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	return mkdir_p(dirname(buf), 0755);
}

/* Root keeps state in /var/lib; users in $XDG_STATE_HOME (or ~/.local/state). */
static void default_paths(struct options *o, char *state, char *sock,
			  char *pid, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (!o->state_dir) {
		if (geteuid() == 0)
			snprintf(state, len, "/var/lib/blkstack");
		else if (xdg && *xdg)
			snprintf(state, len, "%s/blkstack", xdg);
		else
			snprintf(state, len, "%s/.local/state/blkstack",
				 home ? home : "/tmp");
		o->state_dir = state;
	}
	if (!o->socket) {
		blkctl_default_socket(sock, len);
		o->socket = sock;
	}
	if (!o->pid_file) {
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s", o->socket);
		snprintf(pid, len, "%s/blkstackd.pid", dirname(dir));
		o->pid_file = pid;
	}
	if (!o->nbd_listen)
		o->nbd_listen = NBD_DEFAULT_LISTEN;
}

/* Create and lock the pid file: a second daemon on it is refused. */
static int pid_file_open(const char *path)
{
	char buf[32];
	int fd, n;

	if (mkdir_parent(path))
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		n = (int)read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		pr_err("pid file %s is locked: blkstackd already runs (pid %s)",
		       path, buf);
		close(fd);
		return -EEXIST;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (ftruncate(fd, 0) || write(fd, buf, (size_t)n) != n) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

static int signals_block(void)
{
	sigset_t set;

	/* before any thread starts, so that every thread inherits the mask */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int start_nbd(struct blkstackd *d)
{
	if (!strcmp(d->nbd_listen, "none")) {
		d->nbd_listen = NULL;
		return 0;
	}
	if (!strncmp(d->nbd_listen, "unix:", 5) &&
	    mkdir_parent(d->nbd_listen + 5))
		pr_warn("cannot make the directory of %s: %s",
			d->nbd_listen + 5, strerror(errno));
	if (nbd_server_start(d->nbd_listen, &d->nbd)) {
		pr_err("NBD server on %s: %s", d->nbd_listen,
		       blkstack_errmsg());
		return -EINVAL;
	}
	return 0;
}

static int start_devices(struct blkstackd *d, const struct options *o)
{
	char err[2048];

	if (o->config) {
		d->config_path = o->config;
		if (config_apply(d, o->config, err, sizeof(err))) {
			pr_err("config refused: %s", err);
			return -EINVAL;
		}
		return 0;
	}
	if (o->no_default)
		return 0;
	/* the default's errors are logged; the daemon runs with the rest */
	config_apply_default(d);
	return 0;
}

static int count_dev(struct gendisk *disk, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void say_ready(struct blkstackd *d, const char *sock)
{
	char nbd[128];
	int nr = 0;

	blkstack_dev_for_each(count_dev, &nr);
	if (!d->nbd)
		snprintf(nbd, sizeof(nbd), "none");
	else if (nbd_server_port(d->nbd))
		snprintf(nbd, sizeof(nbd), "%.*s:%u",
			 (int)strcspn(d->nbd_listen, ":"), d->nbd_listen,
			 nbd_server_port(d->nbd));
	else
		snprintf(nbd, sizeof(nbd), "%s", d->nbd_listen);
	/* always printed: tests and people wait for this line */
	fprintf(stderr, "blkstackd: ready: control %s, nbd %s, %d device%s\n",
		sock, nbd, nr, nr == 1 ? "" : "s");
}

static void reload(struct blkstackd *d)
{
	char err[2048];

	if (!d->config_path) {
		pr_notice("SIGHUP: no --config file, nothing to reload");
		return;
	}
	if (config_apply(d, d->config_path, err, sizeof(err)))
		pr_err("SIGHUP: config refused, running state kept: %s", err);
	else
		pr_notice("SIGHUP: %s reloaded", d->config_path);
}

/* True when the daemon should stop. */
static bool handle_signal(struct blkstackd *d, int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGHUP) {
		reload(d);
		return false;
	}
	pr_notice("%s: shutting down", strsignal((int)si.ssi_signo));
	return true;
}

struct dev_names {
	char (*names)[32];
	int nr;
};

static int collect_name(struct gendisk *disk, void *arg)
{
	struct dev_names *n = arg;
	char (*more)[32] = realloc(n->names, (size_t)(n->nr + 1) * 32);

	if (!more)
		return -ENOMEM;
	n->names = more;
	snprintf(n->names[n->nr++], 32, "%s", blk_disk_name(disk));
	return 0;
}

/* Flush a volatile cache so that what was acknowledged is stable. */
static int flush_dev(const char *name)
{
	struct gendisk *disk = blk_get_disk(name);
	char wc[32] = "";
	int ret = 0;

	if (!disk)
		return 0;
	blk_queue_attr_show(disk, "write_cache", wc, sizeof(wc));
	if (!strncmp(wc, "write back", 10)) {
		ret = blkdev_flush(disk);
		if (ret)
			pr_err("%s: flush failed: %s", name, strerror(-ret));
		else
			pr_info("%s: flushed", name);
	}
	blk_put_disk(disk);
	return ret;
}

/*
 * No new connections; the NBD server answers what is in flight and
 * closes; caches are flushed; devices go. Returns the exit status.
 */
static int shutdown_all(struct blkstackd *d)
{
	struct dev_names n = { NULL, 0 };
	int status = 0;

	if (d->nbd) {
		nbd_server_stop(d->nbd);
		d->nbd = NULL;
	}
	blkstack_dev_for_each(collect_name, &n);
	/* newest first: a device stacked on another goes before it */
	for (int i = n.nr - 1; i >= 0; i--) {
		if (flush_dev(n.names[i]))
			status = 1;
		if (blkstack_dev_del(n.names[i]))
			pr_warn("%s: %s", n.names[i], blkstack_errmsg());
	}
	free(n.names);
	config_free(d);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct blkstackd d = { 0 };
	char state[4096], sock[4096], pid[4096];
	int sfd, pfd, lfd = -1, ret;

	ret = parse_options(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;
	default_paths(&o, state, sock, pid, sizeof(state));
	d.state_dir = o.state_dir;
	d.nbd_listen = o.nbd_listen;
	sfd = signals_block();
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return 1;
	}
	if (mkdir_p(o.state_dir, 0750) || mkdir_parent(o.socket)) {
		pr_err("cannot make %s or the directory of %s: %s",
		       o.state_dir, o.socket, strerror(errno));
		return 1;
	}
	pfd = pid_file_open(o.pid_file);
	if (pfd < 0) {
		if (pfd != -EEXIST)
			pr_err("pid file %s: %s", o.pid_file, strerror(-pfd));
		return 1;
	}
	ret = start_nbd(&d) ?: start_devices(&d, &o);
	if (!ret) {
		lfd = control_listen(o.socket);
		if (lfd < 0)
			pr_err("control socket %s: %s", o.socket,
			       lfd == -EADDRINUSE ? "another blkstackd "
			       "answers there" : strerror(-lfd));
	}
	if (lfd >= 0) {
		say_ready(&d, o.socket);
		control_loop(&d, sfd, lfd, handle_signal);
		close(lfd);
		unlink(o.socket);
	}
	ret = shutdown_all(&d) || lfd < 0;
	unlink(o.pid_file);
	close(pfd);
	close(sfd);
	if (!ret)
		fprintf(stderr, "blkstackd: stopped\n");
	return ret;
}
