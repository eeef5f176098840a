# test/deb.sh — the Debian package of one major, built and tested; sourced
# by test/chroot.sh in its mode deb (`make deb`), which has made the chroot
# ($ROOT: Debian $SUITE with PostgreSQL $MAJOR) and holds its lock.
#
# Both steps run in an overlay on the chroot (the chroot below stays as it
# was; what a step writes is thrown away with it):
#
#   build  installs debhelper and postgresql-server-dev-all, and builds
#          postgresql-$MAJOR-onboarding from a copy of the tree with
#          dpkg-buildpackage (debian/: pg_buildext, the pgxs_loop sequence);
#          the .deb is copied to $DEB_DIR.
#   check  a clean root: whatever `make test PG=$MAJOR` installed into the
#          chroot is removed first, and checked gone; the package is
#          installed with apt, CREATE EXTENSION onboarding CASCADE and the
#          regression suites and isolation specs run as installcheck against
#          a throwaway cluster (test/run.sh installcheck), and the package is
#          purged, leaving none of its files behind.
#
# Knobs: DEB_DIR (default ./packages).

DEB_DIR=${DEB_DIR:-$TOP/packages}
DEB_TMP=$(mktemp -d "$CHROOT_DIR/.deb-$SUITE-pg$MAJOR.XXXXXX")
PKG=postgresql-$MAJOR-onboarding

# deb_overlay name -> mounts an overlay of $ROOT with /proc, /dev and a
# private /dev/shm, and prints where
deb_overlay() {
	local d=$DEB_TMP/$1
	mkdir -p "$d/upper" "$d/work" "$d/root"
	mount_at -t overlay overlay -o "lowerdir=$ROOT,upperdir=$d/upper,workdir=$d/work" "$d/root"
	mount_at -t proc proc "$d/root/proc"
	mount_at --bind /dev "$d/root/dev"
	mount_at -t tmpfs -o mode=1777,nosuid,nodev shm "$d/root/dev/shm"
	printf '%s\n' "$d/root"
}

# ours root -> the files of ours under the major's directories in root
ours() {
	find "$1/usr/lib/postgresql/$MAJOR/lib" "$1/usr/share/postgresql/$MAJOR/extension" \
		\( -name 'onboarding*' -o -name 'taxid*' \) -print 2>/dev/null | sed "s|^$1||"
}

# run root command... -> in_root, its output kept in $DEB_TMP/log and shown
# (the last lines) when it fails
deb_run() {
	local root=$1; shift
	if ! in_root "$root" "$@" >"$DEB_TMP/log" 2>&1; then
		tail -40 "$DEB_TMP/log" >&2
		die "PostgreSQL $MAJOR package: '$*' failed (output above)"
	fi
}

# --- build ------------------------------------------------------------------
log "PostgreSQL $MAJOR: building $PKG in the $SUITE chroot"
B=$(deb_overlay build)
src=$(copy_source "$B")
deb_run "$B" apt-get update -qq
deb_run "$B" apt-get install -y -qq build-essential debhelper postgresql-server-dev-all dpkg-dev
# one package, for this major (pg_buildext reads PG_SUPPORTED_VERSIONS)
deb_run "$B" env PG_SUPPORTED_VERSIONS="$MAJOR" bash -c \
	'cd "$1" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b' build "$src"
mkdir -p "$DEB_DIR"
set -- "$B"/tmp/"$PKG"_*.deb
[ -f "$1" ] || die "PostgreSQL $MAJOR: dpkg-buildpackage made no $PKG package"
cp "$@" "$DEB_DIR/"
DEB=$(basename "$1")
log "PostgreSQL $MAJOR: built $DEB ($(du -k "$1" | cut -f1) kB)"
unmount_all

# --- check ------------------------------------------------------------------
log "PostgreSQL $MAJOR: installing $DEB into a clean $SUITE root"
C=$(deb_overlay check)
for f in $(ours "$C"); do rm -rf "${C:?}$f"; done
[ -z "$(ours "$C")" ] || die "PostgreSQL $MAJOR: files of ours left in the clean root: $(ours "$C")"
src=$(copy_source "$C")
cp "$DEB_DIR/$DEB" "$C/tmp/"
deb_run "$C" apt-get update -qq
deb_run "$C" apt-get install -y -qq "/tmp/$DEB"
deb_run "$C" dpkg -s "$PKG"
installed=$(ours "$C" | sort)
for want in lib/onboarding.so lib/taxid.so extension/onboarding.control extension/taxid.control \
	"extension/onboarding--0.3.0.sql" "extension/onboarding--0.2.0--0.3.0.sql"; do
	grep -q "/$want\$" <<<"$installed" || die "PostgreSQL $MAJOR: $DEB did not install $want"
done
# every file of ours comes from the package
for f in $installed; do
	in_root "$C" dpkg -S "$f" >/dev/null 2>&1 || die "PostgreSQL $MAJOR: $f is not the package's"
done
log "PostgreSQL $MAJOR: installcheck against the packaged extension"
set +e
in_root "$C" PG_CONFIG="/usr/lib/postgresql/$MAJOR/bin/pg_config" \
	bash -c 'cd "$1" && bash test/run.sh installcheck' run "$src"
rc=$?
set -e
[ "$rc" -eq 0 ] || die "PostgreSQL $MAJOR: installcheck of the package failed"
deb_run "$C" apt-get purge -y -qq "$PKG"
[ -z "$(ours "$C")" ] || die "PostgreSQL $MAJOR: purging $PKG left $(ours "$C")"
in_root "$C" dpkg -s "$PKG" >/dev/null 2>&1 && die "PostgreSQL $MAJOR: $PKG still installed after purge"
unmount_all
log "PostgreSQL $MAJOR: $DEB built, installed, checked and purged"
echo "test deb-$MAJOR ... ok"
