#!/usr/bin/env bash
# test/run.sh — the machinery behind `make test` and `make demo`.
#
# On a fresh Debian 12 machine (as root, or as a user with sudo) it installs
# what is missing (PostgreSQL 15 server and headers), builds the extension
# with warnings as errors, installs it, starts a throwaway cluster as an
# unprivileged OS user on a private socket directory, runs the suites or the
# demo, and stops the cluster again, whatever happened.  Other majors run
# the same script inside a Debian chroot: see test/chroot.sh (make test PG=17).
#
#   bash test/run.sh test    every suite; last line "N passed, N failed"
#   bash test/run.sh demo    ingest the fixture corpus and show what it became
#   bash test/run.sh bench   the benchmark of test/bench (make bench)
#   bash test/run.sh bench-scale  years of deliveries (make bench-scale)
#   bash test/run.sh diagrams  redraw docs/diagrams from the rules (make diagrams)
#   bash test/run.sh installcheck  the suites against an extension already
#                            installed (the Debian package: test/deb.sh)
#
# Knobs (environment): PG_CONFIG, ONBOARDING_TEST_USER (OS user that runs
# the server when started as root), ONBOARDING_KEEP=1 (keep the cluster dir).
set -euo pipefail

cd "$(dirname "$0")/.."
TOP=$(pwd)
MODE=${1:-test}

log() { printf '== %s\n' "$*" >&2; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

# Install what is missing: the server and headers of the PostgreSQL that
# PG_CONFIG names when it is a Debian one (/usr/lib/postgresql/NN), a C
# toolchain and python3.
install_deps() {
	local need=() major=
	case "$PG_CONFIG" in
	/usr/lib/postgresql/*/bin/pg_config)
		major=${PG_CONFIG#/usr/lib/postgresql/}
		major=${major%%/*}
		;;
	esac
	if [ -n "$major" ]; then
		[ -x "/usr/lib/postgresql/$major/bin/postgres" ] || need+=("postgresql-$major")
		[ -x "$PG_CONFIG" ] && \
			[ -f "/usr/include/postgresql/$major/server/postgres.h" ] || need+=("postgresql-server-dev-$major")
		# pg_partman, which the partitioning test uses to create partitions
		[ -f "/usr/share/postgresql/$major/extension/pg_partman.control" ] || need+=("postgresql-$major-partman")
	fi
	command -v gcc >/dev/null || need+=(gcc)
	command -v make >/dev/null || need+=(make)
	command -v python3 >/dev/null || need+=(python3)	# the fuzz test's generator
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
}

# Build from scratch with warnings as errors (the tests' flag, not the
# user's) and install into the PostgreSQL tree.
build_install() {
	log "building $("$PG_CONFIG" --version)"
	make -s PG_CONFIG="$PG_CONFIG" clean
	make -s PG_CONFIG="$PG_CONFIG" COPT=-Werror >/dev/null
	log "installing"
	as_root make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# Start a throwaway cluster owned by an unprivileged OS user.
start_cluster() {
	BINDIR=$("$PG_CONFIG" --bindir)
	if [ "$(id -u)" -eq 0 ]; then
		RUNAS=${ONBOARDING_TEST_USER:-postgres}
		id "$RUNAS" >/dev/null 2>&1 || useradd --system --no-create-home "$RUNAS"
	else
		RUNAS=$(id -un)
	fi
	WORK=$(mktemp -d /tmp/onboarding-test.XXXXXX)
	chmod 755 "$WORK"
	[ "$(id -u)" -eq 0 ] && chown "$RUNAS" "$WORK"
	PGPORT=${PGPORT_TEST:-$((50000 + RANDOM % 10000))}
	export PGHOST=$WORK PGPORT PGUSER=postgres PGDATABASE=postgres
	trap stop_cluster EXIT
	log "starting a throwaway cluster in $WORK as OS user $RUNAS"
	run_as "$BINDIR/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
	cat >>"$WORK/data/postgresql.conf" <<-EOF
		listen_addresses = ''
		unix_socket_directories = '$WORK'
		port = $PGPORT
		fsync = off
		max_prepared_transactions = 10
		wal_level = logical
		log_min_messages = warning
	EOF
	run_as "$BINDIR/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
	# for test scripts that must stop, kill or restart the server
	export ONBOARDING_PGDATA="$WORK/data" ONBOARDING_BINDIR="$BINDIR" ONBOARDING_RUNAS="$RUNAS"
	export ONBOARDING_WORK="$WORK" ONBOARDING_SERVER_LOG="$WORK/server.log"
}

# Run a command as the OS user that owns the cluster.
run_as() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi
}

stop_cluster() {
	if [ -n "${WORK:-}" ] && [ -d "$WORK/data" ]; then
		run_as "$BINDIR/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
		if [ "${ONBOARDING_KEEP:-0}" = 1 ]; then log "cluster kept in $WORK"; else rm -rf "$WORK"; fi
	fi
}

PASSED=0
FAILED=0

. "$TOP/test/tools/regress_count.sh"

# The suites run a second time on a partitioned inbox and history
# (sql/partitioned.sql partitions them first, and again after taxid_domain
# made the extension anew; the expected outputs are the
# unpartitioned run's)
PARTITIONED_SUITES="partitioned inbox qitech fitbank celcoin bad taxid rules corpus taxid_domain partitioned reports window hardening ordering bounded"

# Run one pg_regress-style make target and count its ok/FAILED lines; a
# run that exits non-zero without a failed test counts as a failure.
run_regress() {
	local out status passed failed
	out=$(mktemp)
	set +e
	make -s PG_CONFIG="$PG_CONFIG" "$@" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	set -e
	read -r passed failed <<<"$(regress_count "$out" "$status")"
	[ "$status" -eq 0 ] || echo "test/run.sh: make $* exited with status $status" >&2
	PASSED=$((PASSED + passed))
	FAILED=$((FAILED + failed))
	if [ -f regression.diffs ] && [ -s regression.diffs ]; then
		cp regression.diffs "$WORK/regression.diffs.$FAILED" 2>/dev/null || true
		head -c 20000 regression.diffs
	fi
	rm -f "$out"
}

# Run one shell test script; it prints its own figures, exit status decides.
run_script() {
	local name=$1; shift
	if "$@"; then
		echo "test $name ... ok"; PASSED=$((PASSED + 1))
	else
		echo "test $name ... FAILED"; FAILED=$((FAILED + 1))
	fi
}

case "$MODE" in
test)
	install_deps
	build_install
	start_cluster
	log "regression suites"
	run_regress installcheck ISOLATION=
	log "the provider, ordering and late-delivery suites again, inbox and history partitioned"
	run_regress installcheck ISOLATION= REGRESS="$PARTITIONED_SUITES" CONTRIB_TESTDB=onboarding_partitioned
	log "isolation specs"
	run_regress installcheck REGRESS=
	for t in test/scripts/*.sh; do
		[ -e "$t" ] || continue
		run_script "$(basename "$t" .sh)" bash "$t"
	done
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	;;
installcheck)
	# the suites against an extension installed by other means (test/deb.sh:
	# the Debian package): no build, no install
	start_cluster
	log "regression suites"
	run_regress installcheck ISOLATION=
	log "the provider, ordering and late-delivery suites again, inbox and history partitioned"
	run_regress installcheck ISOLATION= REGRESS="$PARTITIONED_SUITES" CONTRIB_TESTDB=onboarding_partitioned
	log "isolation specs"
	run_regress installcheck REGRESS=
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	;;
demo)
	install_deps
	build_install
	start_cluster
	bash test/demo.sh
	;;
diagrams)
	install_deps
	build_install
	start_cluster
	bash test/diagrams.sh
	;;
bench)
	install_deps
	build_install
	start_cluster
	bash test/bench/run.sh
	;;
bench-scale)
	install_deps
	build_install
	start_cluster
	bash test/bench/scale.sh
	;;
*)
	echo "usage: $0 test|demo|bench|bench-scale|diagrams|installcheck" >&2
	exit 2
	;;
esac
