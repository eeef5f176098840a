#!/usr/bin/env bash
# Load: 8 concurrent clients deliver random bodies of a generated corpus (all
# three providers, every event type, about 5% duplicate bodies, any order)
# through onboarding.ingest(jsonb), INSERT INTO onboarding.inbox (payload) and
# onboarding.ingest_text (Fitbank's unquoted Method) for a fixed time.
# Proves: no transaction fails, no deadlock or other error reaches the server
# log, every committed transaction stored exactly one delivery, and the live
# state equals a replay of the log (onboarding.verify() returns no row).
#
#   ONBOARDING_LONG=1      120 s on a larger corpus (default 20 s)
#   ONBOARDING_LOAD_SECONDS, ONBOARDING_LOAD_SCALE override either
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_load
if [ "$LONG" = 1 ]; then seconds=120 scale=1000; else seconds=20 scale=300; fi
seconds=${ONBOARDING_LOAD_SECONDS:-$seconds}
scale=${ONBOARDING_LOAD_SCALE:-$scale}
out="$ONBOARDING_WORK/load.pgbench.out"
trap 'drop_db $db >/dev/null 2>&1 || true' EXIT

fresh_db $db
q -d $db -v scale="$scale" -v seed=0.7 -f "$RELIABILITY/corpus.sql"
bodies=$(q -d $db -c "SELECT count(*) FROM public.corpus")

mark=$(log_mark)
set +e
"$ONBOARDING_BINDIR/pgbench" -n -d $db -c 8 -j 2 -T "$seconds" -D n="$bodies" \
	-f "$RELIABILITY/load_ingest.pgbench@5" \
	-f "$RELIABILITY/load_insert.pgbench@3" \
	-f "$RELIABILITY/load_text.pgbench@2" >"$out" 2>&1
rc=$?
set -e

txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
tps=$(sed -n 's/^tps = \([0-9]*\)\..*/\1/p' "$out")
deadlocks=$(log_since "$mark" | grep -c 'deadlock detected' || true)
errors=$(log_since "$mark" | grep -cE '(ERROR|FATAL|PANIC):' || true)
stored=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox")
outcomes=$(q -d $db -c "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
                          FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")
diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")

echo "load: $txns transactions in ${seconds}s by 8 clients ($tps tps) over $bodies corpus bodies;" \
	"failed ${failed:-?}, deadlocks $deadlocks, server errors $errors; stored $stored"
echo "load: outcomes $outcomes; verify() differences: $diffs"

[ "$rc" -eq 0 ] || { cat "$out" >&2; fail "pgbench exited with $rc"; }
[ -n "$txns" ] && [ "$txns" -gt 0 ] || { cat "$out" >&2; fail "pgbench ran no transaction"; }
[ "${failed:-0}" -eq 0 ] || fail "$failed failed transactions"
[ "$deadlocks" -eq 0 ] || fail "deadlocks in the server log"
[ "$errors" -eq 0 ] || { log_since "$mark" | grep -E '(ERROR|FATAL|PANIC):' | head >&2; fail "errors in the server log"; }
[ "$stored" -eq "$txns" ] || fail "$txns transactions committed but $stored deliveries stored"
[ "$diffs" -eq 0 ] || { q -d $db -c "SELECT * FROM onboarding.verify() LIMIT 10" >&2; fail "verify() found $diffs differences"; }
