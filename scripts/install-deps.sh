#!/usr/bin/env bash
# Install the Debian packages blkstack needs to build, test and benchmark.
# Idempotent: packages already present are skipped; apt runs only when
# something is missing.
set -euo pipefail

PKGS=(
	build-essential pkg-config
	clang libclang-rt-14-dev     # TSan/ASan/UBSan runtimes for check-asan/tsan
	lcov                         # make coverage
	fio                          # bench: fio --ioengine=null peer
	gnuplot-nox                  # bench plots
	valgrind linux-perf          # profiling
	liburing-dev                 # drivers/uring.c
	libnbd-dev                   # drivers/nbd.c (NBD client driver); tests' NBD client
	libnbd-bin python3-libnbd    # nbdinfo, nbdcopy, nbdsh: integration tests
	nbdkit                       # peer server (bench) and the NBD client driver's tests
	qemu-utils                   # qemu-io, qemu-img, qemu-nbd: tests and bench peer
	qemu-system-common           # qemu-storage-daemon: bench peer
	blktrace                     # blkparse, btt: blktrace tests
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
