#!/usr/bin/env bash
# make install into a staging DESTDIR, then build and run a consumer
# against the installed headers, pkg-config file and shared library.
set -eu
top=${BLKSTACK_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${BUILD:-build}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
command -v pkg-config >/dev/null || { echo "pkg-config missing"; exit 77; }

make -C "$top" -s BUILD="$build" install PREFIX=/usr DESTDIR="$stage" >/dev/null
pcdir="$stage/usr/lib/pkgconfig"
test -f "$pcdir/blkstack.pc"
test -f "$stage/usr/include/blkstack/blkdev.h"
test -f "$stage/usr/include/blkstack/nbd-server.h"
test -x "$stage/usr/bin/blkbench"

cat > "$stage/consumer.c" <<'C'
#include <blkstack/blkdev.h>
#include <blkstack/nbd-server.h>
#include <stdio.h>
#include <string.h>
static int count(const struct nbd_export_info *info, void *arg)
{
	(*(int *)arg)++;
	return 0;
}
int main(void)
{
	struct nbd_server *srv;
	struct gendisk *d;
	char w[8192], r[8192];
	int n = 0;

	if (blkstack_dev_add("null", "inst0", "size=8,irqmode=0,memory_backed=1", &d)) {
		fprintf(stderr, "%s\n", blkstack_errmsg());
		return 1;
	}
	memset(w, 0x5a, sizeof(w));
	if (blkdev_pwrite(d, w, sizeof(w), 4096) != sizeof(w) ||
	    blkdev_pread(d, r, sizeof(r), 4096) != sizeof(r) ||
	    memcmp(w, r, sizeof(w)))
		return 1;
	/* the NBD server API is public too */
	if (nbd_server_start("127.0.0.1:0", &srv) ||
	    nbd_export_add(srv, "inst0", d, true) ||
	    nbd_export_for_each(srv, count, &n) || n != 1 ||
	    !nbd_server_port(srv)) {
		fprintf(stderr, "nbd: %s\n", blkstack_errmsg());
		return 1;
	}
	nbd_server_stop(srv);
	blk_put_disk(d);
	return blkstack_dev_del("inst0");
}
C
cflags=$(PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_LIBDIR="$pcdir" pkg-config --cflags blkstack)
libs=$(PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_LIBDIR="$pcdir" pkg-config --libs blkstack)
case "$cflags $libs" in *"$stage"*) ;; *) echo "pkg-config did not point into the stage: $cflags $libs"; exit 1 ;; esac
# a sanitizer build of the library needs the same runtime in the program
san=${SANITIZE:+-fsanitize=$SANITIZE}
cc $san $cflags "$stage/consumer.c" $libs -o "$stage/consumer"
LD_LIBRARY_PATH="$stage/usr/lib" "$stage/consumer"
# the library's internals stay internal
if nm -D --defined-only "$stage/usr/lib/libblkstack.so" | grep -E ' (nbd_rx_|nbd_req_|nbd_reply)'; then
	echo "internal nbd_* symbols exported"; exit 1
fi
echo "install + pkg-config consumer: ok"
