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
test -x "$stage/usr/bin/blkbench"

cat > "$stage/consumer.c" <<'C'
#include <blkstack/blkdev.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	struct gendisk *d;
	char w[8192], r[8192];

	if (blkstack_dev_add("null", "inst0", "size=8,irqmode=0,memory_backed=1", &d)) {
		fprintf(stderr, "%s\n", blkstack_errmsg());
		return 1;
	}
	memset(w, 0x5a, sizeof(w));
	if (blkdev_pwrite(d, w, sizeof(w), 4096) != sizeof(w) ||
	    blkdev_pread(d, r, sizeof(r), 4096) != sizeof(r) ||
	    memcmp(w, r, sizeof(w)))
		return 1;
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
echo "install + pkg-config consumer: ok"
