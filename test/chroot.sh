#!/usr/bin/env bash
# test/chroot.sh — `make test PG=17` and `make test PG=18`: the same suite
# as `make test`, against another PostgreSQL major, in a Debian chroot.
#
#   bash test/chroot.sh MAJOR [test|demo|bench|deb]
#
# The chroot is made once with debootstrap (Debian trixie for 17, sid for
# 18), from the mirror apt already uses here, with that major's server and
# headers and what the test scripts need, and kept in CHROOT_DIR (default
# ~/.cache/onboarding/chroot).  It is built in a temporary directory and
# renamed when complete, so an interrupted first run leaves no broken
# cache; it records the package list it was built with, and a changed list
# builds it again.  Each run copies the source tree into the chroot, mounts
# /proc, /dev and a private /dev/shm (PostgreSQL's dynamic shared memory)
# for the run, runs test/run.sh there with PG_CONFIG pointing to that
# major, and unmounts and removes the copy afterwards, whatever happened.
#
# Mode deb (`make deb`, any of 15, 17, 18; Debian bookworm for 15) builds
# the major's Debian package in the chroot and tests it in another, clean
# one: each an overlay on the chroot that is thrown away afterwards (see
# deb_build and deb_check below).  The packages land in DEB_DIR (default
# ./packages).
#
# Needs root (debootstrap, chroot, mount).  Knobs (environment):
# CHROOT_DIR, ONBOARDING_MIRROR (a Debian mirror URL instead of apt's);
# ONBOARDING_* and CI are passed on to the run inside.
set -euo pipefail

cd "$(dirname "$0")/.."
TOP=$(pwd)
MAJOR=${1:?usage: $0 MAJOR [test|demo|bench]}
MODE=${2:-test}
CHROOT_DIR=${CHROOT_DIR:-$HOME/.cache/onboarding/chroot}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'test/chroot.sh: %s\n' "$*" >&2; exit 1; }

case "$MAJOR" in
15) SUITE=bookworm ;;
17) SUITE=trixie ;;
18) SUITE=sid ;;
*) die "no chroot recipe for PostgreSQL $MAJOR (known: 15, 17, 18)" ;;
esac
case "$MODE" in
test | demo | bench) [ "$MAJOR" != 15 ] || die "PostgreSQL 15 runs on the host: make $MODE" ;;
deb) ;;
*) die "usage: $0 MAJOR [test|demo|bench|deb]" ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount): sudo make test PG=$MAJOR"

# What the chroot holds: the server and headers of the major, a C toolchain,
# and what test/scripts and test/reliability call (python3 for the fuzz
# generator, ps for the crash test, useradd for the test user).
PACKAGES="postgresql-$MAJOR postgresql-server-dev-$MAJOR postgresql-$MAJOR-partman gcc make libc6-dev python3 procps passwd"
ROOT=$CHROOT_DIR/$SUITE-pg$MAJOR
STAMP=.onboarding-chroot
WANT="suite $SUITE; packages $PACKAGES"

# Mounts live in a mount namespace of our own when we can have one, so that
# even a killed run leaves none behind; the trap below unmounts them anyway.
if [ -z "${ONBOARDING_CHROOT_NS:-}" ] && unshare --mount --propagation private true 2>/dev/null; then
	ONBOARDING_CHROOT_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

# The Debian mirror apt uses on this machine (the first one that is not a
# security archive), from deb822 .sources files or one-line .list files.
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
			{
				uris = ""; suites = ""; types = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/) continue
					if ($i ~ /^URIs:/) uris = substr($i, 6)
					else if ($i ~ /^Suites:/) suites = substr($i, 8)
					else if ($i ~ /^Types:/) types = substr($i, 7)
					else if ($i ~ /^Enabled:/) enabled = substr($i, 9)
				}
				if (enabled ~ /no/ || types !~ /(^|[ \t])deb([ \t]|$)/ || suites ~ /-security/) next
				split(uris, u, /[ \t]+/)
				for (j in u) if (u[j] ~ /^https?:\/\//) { print u[j]; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 !~ /-security/ && $2 ~ /^https?:\/\// { print $2 }'
	done
}

MOUNTED=()

# Mount for the life of this script; unmount_all undoes it in reverse order.
mount_at() {
	local target=${*: -1}
	mount "$@"
	MOUNTED+=("$target")
}

unmount_all() {
	local i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || true
	done
	MOUNTED=()
}

# Is anything mounted at or under this directory?
mounted_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

# Unmount whatever is still mounted under a directory (debootstrap's own
# mounts of a build that was interrupted), deepest first.
unmount_under() {
	local m
	for m in $(awk -v d="$1" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

# Remove a chroot tree, never through a mount point.
remove_tree() {
	[ -e "$1" ] || return 0
	mounted_under "$1" && die "$1 still has file systems mounted: not removing it"
	rm -rf --one-file-system "$1"
}

# Run a command inside a chroot with a clean environment.
in_root() {
	local root=$1; shift
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# Build the chroot in a temporary directory and rename it when complete.
build_root() {
	local mirror tmp old
	mirror=${ONBOARDING_MIRROR:-$(apt_mirror | head -1)}
	[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set ONBOARDING_MIRROR"
	if ! command -v debootstrap >/dev/null; then
		log "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	mkdir -p "$CHROOT_DIR"
	# leftovers of an interrupted build or swap
	for old in "$CHROOT_DIR"/.build-"$SUITE-pg$MAJOR".* "$CHROOT_DIR"/.old-"$SUITE-pg$MAJOR".*; do
		remove_tree "$old"
	done
	tmp=$(mktemp -d "$CHROOT_DIR/.build-$SUITE-pg$MAJOR.XXXXXX")
	BUILDING=$tmp
	chmod 755 "$tmp"			# the chroot's /, where the server runs as postgres
	log "building a Debian $SUITE chroot for PostgreSQL $MAJOR in $ROOT (once; a few minutes)"
	debootstrap --variant=minbase --components=main "$SUITE" "$tmp" "$mirror" >"$tmp.log" 2>&1 \
		|| { tail -20 "$tmp.log" >&2; die "debootstrap $SUITE failed (log above)"; }
	rm -f "$tmp.log"
	# sid's Release file may be past its Valid-Until date on a snapshot mirror
	cat >"$tmp/etc/apt/apt.conf.d/90onboarding" <<-EOF
		Acquire::Check-Valid-Until "false";
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		APT::Sandbox::User "root";
	EOF
	# no service starts inside the chroot
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 755 "$tmp/usr/sbin/policy-rc.d"
	cp -L /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
	mount_at -t proc proc "$tmp/proc"
	mount_at --bind /dev "$tmp/dev"
	log "installing $PACKAGES"
	{
		in_root "$tmp" apt-get update -qq &&
			in_root "$tmp" apt-get install -y -qq postgresql-common &&
			# the tests make their own clusters: no main cluster
			sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' \
				"$tmp/etc/postgresql-common/createcluster.conf" &&
			in_root "$tmp" apt-get install -y -qq $PACKAGES
	} >"$tmp.log" 2>&1 || { unmount_all; tail -30 "$tmp.log" >&2; die "installing packages in the $SUITE chroot failed (log above)"; }
	rm -f "$tmp.log"
	in_root "$tmp" apt-get clean
	rm -rf "$tmp"/var/lib/apt/lists/*
	unmount_all
	[ -x "$tmp/usr/lib/postgresql/$MAJOR/bin/pg_config" ] || die "the $SUITE chroot has no PostgreSQL $MAJOR"
	# what it was built with: the list decides, the versions are for the reader
	{
		printf '%s\n' "$WANT"
		in_root "$tmp" dpkg-query -W $PACKAGES | sed 's/^/# /'
	} >"$tmp/$STAMP"
	# swap it in: the old one (a different package list) goes
	if [ -e "$ROOT" ]; then
		old=$(mktemp -d "$CHROOT_DIR/.old-$SUITE-pg$MAJOR.XXXXXX")
		mv "$ROOT" "$old/root"
		remove_tree "$old"
	fi
	mv "$tmp" "$ROOT"
	BUILDING=
	log "chroot ready: $(du -sh --one-file-system "$ROOT" | cut -f1)"
}

BUILDING=
RUNDIR=
cleanup() {
	unmount_all
	[ -n "$RUNDIR" ] && remove_tree "$RUNDIR"
	[ -n "$BUILDING" ] && { unmount_under "$BUILDING"; remove_tree "$BUILDING"; rm -f "$BUILDING.log"; }
	[ -n "${DEB_TMP:-}" ] && { unmount_under "$DEB_TMP"; remove_tree "$DEB_TMP"; }
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# one run at a time per chroot (it installs the extension into the chroot)
mkdir -p "$CHROOT_DIR"
exec 9>"$CHROOT_DIR/.lock-$SUITE-pg$MAJOR"
flock 9

if [ ! -f "$ROOT/$STAMP" ] || [ "$(head -1 "$ROOT/$STAMP")" != "$WANT" ]; then
	build_root
fi

# copy_source root -> a copy of the source tree, without build products,
# in root's /tmp (its path inside root is printed)
copy_source() {
	local dir
	dir=$(mktemp -d "$1/tmp/onboarding-src.XXXXXX")
	chmod 755 "$dir"
	tar -C "$TOP" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./output_iso --exclude=./log --exclude='./tmp_check*' \
		--exclude=./packages --exclude=./regression.diffs --exclude=./regression.out -cf - . |
		tar -C "$dir" -xf -
	printf '%s\n' "${dir#"$1"}"
}

if [ "$MODE" = deb ]; then
	. "$TOP/test/deb.sh"
	exit 0
fi

RUNDIR=$ROOT$(copy_source "$ROOT")

mount_at -t proc proc "$ROOT/proc"
mount_at --bind /dev "$ROOT/dev"
mount_at -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"

passed=()
for v in $(compgen -e); do
	case "$v" in ONBOARDING_CHROOT_NS) ;; ONBOARDING_* | CI) passed+=("$v=${!v}") ;; esac
done
log "PostgreSQL $MAJOR in the $SUITE chroot"
set +e
in_root "$ROOT" "${passed[@]}" PG_CONFIG="/usr/lib/postgresql/$MAJOR/bin/pg_config" \
	bash -c 'cd "$1" && bash test/run.sh "$2"' run "${RUNDIR#"$ROOT"}" "$MODE"
rc=$?
set -e
exit $rc
