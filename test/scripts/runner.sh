#!/usr/bin/env bash
# The test runner's own count: a pg_regress run that dies before it runs a
# suite (here: it cannot connect, port 1) must count as a failure, as must
# one that reports a failed suite; a clean run counts its passes only.
# Runs the real pg_regress through make, as test/run.sh does.
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/test/tools/regress_count.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$TOP"
pgc=${PG_CONFIG:-pg_config}

# a run that dies early: pg_regress cannot reach the server
set +e
PGPORT=1 make -s PG_CONFIG="$pgc" installcheck ISOLATION= REGRESS=bad \
	REGRESS_OPTS="--inputdir=. --outputdir=$out/dead" >"$out/dead.txt" 2>&1
status=$?
set -e
read -r p f <<<"$(regress_count "$out/dead.txt" "$status")"
echo "runner: a run that cannot connect: exit $status, counted $p passed, $f failed"
[ "$status" -ne 0 ] || fail "pg_regress did not fail without a server"
[ "$f" -ge 1 ] || fail "a run that died early was not counted as failed"

# a clean run of one suite
set +e
make -s PG_CONFIG="$pgc" installcheck ISOLATION= REGRESS=bad \
	REGRESS_OPTS="--inputdir=. --outputdir=$out/clean --load-extension=taxid --load-extension=onboarding" >"$out/clean.txt" 2>&1
status=$?
set -e
read -r p f <<<"$(regress_count "$out/clean.txt" "$status")"
echo "runner: a clean run of one suite: exit $status, counted $p passed, $f failed"
[ "$status" -eq 0 ] && [ "$p" -eq 1 ] && [ "$f" -eq 0 ] || { cat "$out/clean.txt" >&2; fail "a clean run was not counted as one pass"; }

# a run whose suite fails: a copy of its script does one thing more than
# its expected output says (the expected file is found beside the script
# before 16, in the source tree since: both are the suite's own)
mkdir -p "$out/broken/sql" "$out/broken/expected"
{ cat sql/bad.sql; echo "SELECT 'not in the expected output' AS surprise;"; } >"$out/broken/sql/bad.sql"
cp expected/bad.out "$out/broken/expected/bad.out"
set +e
make -s PG_CONFIG="$pgc" installcheck ISOLATION= REGRESS=bad \
	REGRESS_OPTS="--inputdir=$out/broken --outputdir=$out/broken --load-extension=taxid --load-extension=onboarding" >"$out/broken.txt" 2>&1
status=$?
set -e
read -r p f <<<"$(regress_count "$out/broken.txt" "$status")"
echo "runner: a run whose suite fails: exit $status, counted $p passed, $f failed"
[ "$f" -eq 1 ] || { cat "$out/broken.txt" >&2; fail "a failed suite was not counted once"; }
