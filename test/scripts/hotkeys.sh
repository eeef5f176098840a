#!/usr/bin/env bash
# Hot keys (issue 24): 8 clients deliver 20,000 single-row transactions to
# 3 Celcoin accounts, at random minutes among 4,000 (so most deliveries are
# late, and some repeat a body: duplicates), and, for comparison, the same
# load spread over 20,000 accounts.  Proves, for both: no transaction fails,
# no client aborts, no "deadlock detected" in the server log, every
# committed delivery is stored, and verify() is empty at the end; prints
# both throughputs (a late delivery refolds from its place, so hot keys
# cost about what spread ones do).
#
#   ONBOARDING_HOT_TRANSACTIONS   deliveries in all (20000)
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_hot
total=${ONBOARDING_HOT_TRANSACTIONS:-20000}
clients=8
per_client=$((total / clients))
trap "${ONBOARDING_HOT_KEEP:+:} drop_db $db >/dev/null 2>&1 || true" EXIT
command -v "$ONBOARDING_BINDIR/pgbench" >/dev/null || fail "pgbench is needed"

run() {	# label keys
	local label=$1 keys=$2 out="$ONBOARDING_WORK/hot.$1" rc=0 mark
	fresh_db $db >/dev/null
	mark=$(log_mark)
	"$ONBOARDING_BINDIR/pgbench" -n -d $db -c $clients -j 2 -t $per_client -D keys="$keys" -D minutes=4000 \
		--failures-detailed -f "$RELIABILITY/hot.pgbench" >"$out" 2>&1 || rc=$?
	local txns failed aborted tps deadlocks stored outcomes diffs errors
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	aborted=$(grep -c 'aborted in command' "$out" || true)
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -1)
	deadlocks=$(log_since "$mark" | grep -c 'deadlock detected' || true)
	errors=$(log_since "$mark" | grep -cE '(ERROR|FATAL|PANIC):' || true)
	stored=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox")
	outcomes=$(q -d $db -c "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
	                          FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")
	diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")
	echo "hotkeys: $label ($keys accounts): $txns transactions by $clients clients, $(printf '%.0f' "$tps") tps;" \
		"failed ${failed:-?}, clients aborted $aborted, deadlocks $deadlocks, server errors $errors;" \
		"stored $stored ($outcomes); verify() $diffs"
	[ "$rc" = 0 ] && [ "$txns" = $((per_client * clients)) ] && [ "${failed:-1}" = 0 ] && [ "$aborted" = 0 ] \
		|| { tail -n 5 "$out" >&2; fail "$label: transactions failed or clients aborted (pgbench exit $rc)"; }
	[ "$deadlocks" = 0 ] && [ "$errors" = 0 ] || fail "$label: deadlocks or errors in the server log"
	[ "$stored" = "$txns" ] || fail "$label: $txns committed, $stored stored"
	[ "$diffs" = 0 ] || fail "$label: verify() found $diffs differences"
	eval "TPS_$label=$tps"
}
run hot 3
run spread 20000
echo "hotkeys: hot keys at $(awk -v a="$TPS_hot" -v b="$TPS_spread" 'BEGIN { printf "%.1f%%", 100 * a / b }') of the spread keys' throughput"
