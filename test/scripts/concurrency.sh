#!/usr/bin/env bash
# Concurrency: single-delivery transactions racing everything else that
# touches the same few entities, for a fixed time.  Clients (pgbench
# scripts in test/reliability/cc_*.pgbench), all on 3 keys per provider:
#   single   4 clients, one delivery per transaction: Fitbank UpdateAccount,
#            UpdateCloseAccount (often approved: the closure and its account
#            closed with it), Celcoin onboarding-create (account and
#            proposal), account-status, onboarding-proposal; through
#            ingest() and INSERT
#   multi    2 clients: BEGIN; closure K; account K; COMMIT (and the other
#            order), the same with a Celcoin proposal and its account
#   reader   2 clients: BEGIN; SELECT from onboarding.account; one delivery;
#            COMMIT
#   rebuild  1 client: SELECT onboarding.rebuild(), over and over
#   verify   1 client: SELECT count(*) FROM onboarding.verify(), kept
#   force    1 client: onboarding.force_status() on the same entities
#            (created in set-up), reopening what the deliveries close
# Proves: no single-delivery transaction fails (single and reader clients:
# 0 failed transactions, 0 aborted clients), no "deadlock detected" in the
# server log for a statement of theirs, rebuild(), verify() and
# force_status() never fail either, every verify() during the run and the
# one at the end are empty, rebuild() and verify() are not starved (each
# completes at least 3 times), and every committed single delivery is
# stored.
# Multi-delivery transactions may be rolled back by a deadlock between two
# of them (README, Limits): counted and reported, not a failure.
#
#   ONBOARDING_LONG=1   120 s (default 20 s); ONBOARDING_CC_SECONDS overrides
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_cc
if [ "$LONG" = 1 ]; then seconds=120; else seconds=20; fi
seconds=${ONBOARDING_CC_SECONDS:-$seconds}
keys=3
trap 'drop_db $db >/dev/null 2>&1 || true' EXIT
command -v "$ONBOARDING_BINDIR/pgbench" >/dev/null || fail "pgbench is needed"

fresh_db $db
# deadlocks (between two multi-delivery transactions) are resolved sooner,
# so the clients spend the time delivering rather than waiting
q -d postgres -c "ALTER DATABASE $db SET deadlock_timeout = '100ms'"
q -d $db >/dev/null <<SQL
CREATE TABLE public.cc_verify (at timestamptz DEFAULT clock_timestamp(), differences bigint);
-- every entity the clients touch exists before they start (force_status()
-- overrides existing entities only)
SELECT count(onboarding.ingest(b)) FROM generate_series(1, $keys) k,
LATERAL (VALUES
  (jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'cc-' || k, 'AccountConditionType', 2,
       'AccountStatus', 1, 'SendDate', '2025-01-01T10:00:00Z')),
  (jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'cc-' || k,
       'CloseAccountInformationStatus', 0, 'SendDate', '2025-01-01T10:00:00Z')),
  (jsonb_build_object('entity', 'onboarding-proposal', 'status', 'APPROVED',
       'createTimestamp', '2025-01-01T10:00:00Z', 'body', jsonb_build_object('proposalId', 'cc-' || k))),
  (jsonb_build_object('entity', 'onboarding-create', 'status', 'CONFIRMED',
       'createTimestamp', '2025-01-01T10:00:01Z',
       'body', jsonb_build_object('onboardingId', 'cc-' || k, 'proposalId', 'cc-' || k)))) v(b);
SQL
entities=$(q -d $db -c "SELECT (SELECT count(*) FROM onboarding.account) || ' accounts, '
                               || (SELECT count(*) FROM onboarding.closure) || ' closures, '
                               || (SELECT count(*) FROM onboarding.proposal) || ' proposals'")

mark=$(log_mark)
out="$ONBOARDING_WORK/cc"
run_clients() {	# name clients script
	local name=$1 clients=$2 script=$3 rc=0
	"$ONBOARDING_BINDIR/pgbench" -n -d $db -c "$clients" -j "$clients" -T "$seconds" -D keys=$keys \
		--failures-detailed -f "$RELIABILITY/$script" >"$out.$name" 2>&1 || rc=$?
	echo $rc >"$out.$name.rc"
}
run_clients single 4 cc_single.pgbench &
run_clients multi 2 cc_multi.pgbench &
run_clients reader 2 cc_read.pgbench &
run_clients rebuild 1 cc_rebuild.pgbench &
run_clients verify 1 cc_verify.pgbench &
run_clients force 1 cc_force.pgbench &
wait

# per client kind: transactions, failed ones (deadlock, serialization),
# clients aborted by another error, pgbench's exit status
summary=""
declare -A txns failed deadlocks serial aborted rcs
for kind in single multi reader rebuild verify force; do
	f="$out.$kind"
	txns[$kind]=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f")
	failed[$kind]=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$f")
	deadlocks[$kind]=$(sed -n 's/^number of deadlock failures: \([0-9]*\).*/\1/p' "$f")
	serial[$kind]=$(sed -n 's/^number of serialization failures: \([0-9]*\).*/\1/p' "$f")
	aborted[$kind]=$(grep -c 'aborted in command' "$f" || true)
	rcs[$kind]=$(cat "$f.rc")
	summary="$summary $kind: ${txns[$kind]:-?} txns, ${failed[$kind]:-?} failed (deadlock ${deadlocks[$kind]:-?}, serialization ${serial[$kind]:-?}), ${aborted[$kind]} clients aborted, exit ${rcs[$kind]};"
done

# deadlocks in the server log, by the client kind of the statement that was
# rolled back ('Client' in the body, else the function it called)
log_since "$mark" >"$out.log"
log_deadlocks=$(grep -c 'deadlock detected' "$out.log" || true)
victims=$(awk '/ERROR: +deadlock detected/ { d = 1; next }
               d && /STATEMENT:/ { k = "other";
                   if ($0 ~ /single/) k = "single"; else if ($0 ~ /reader/) k = "reader";
                   else if ($0 ~ /multi/) k = "multi"; else if ($0 ~ /rebuild/) k = "rebuild";
                   else if ($0 ~ /verify/) k = "verify"; else if ($0 ~ /force_status/) k = "force";
                   n[k]++; d = 0 }
               END { for (k in n) printf "%s=%d ", k, n[k] }' "$out.log")
single_victims=$(awk '/ERROR: +deadlock detected/ { d = 1; next }
                      d && /STATEMENT:/ { if ($0 ~ /single|reader/) n++; d = 0 } END { print n + 0 }' "$out.log")
other_errors=$(grep -E '(ERROR|FATAL|PANIC):' "$out.log" | grep -v 'deadlock detected' | sed 's/^[^]]*] //' \
	| sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -5 || true)
crashes=$(crash_lines "$mark")

stored_single=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox WHERE payload->>'Client' = 'single'")
outcomes=$(q -d $db -c "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
                          FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")
read -r verifies verify_bad <<<"$(q -F ' ' -d $db -c "SELECT count(*), count(*) FILTER (WHERE differences <> 0) FROM public.cc_verify")"
diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")

echo "concurrency: ${seconds}s on $entities;$summary"
echo "concurrency: 'deadlock detected' in the server log: $log_deadlocks (rolled back: ${victims:-none}); single-delivery statements among them: $single_victims"
echo "concurrency: outcomes $outcomes; single deliveries stored $stored_single of ${txns[single]:-?} committed;" \
	"verify() during the run: $verifies calls, $verify_bad not empty; at the end: $diffs"
[ -z "$other_errors" ] || { echo "concurrency: other errors in the server log:" >&2; echo "$other_errors" >&2; }

[ -z "$crashes" ] || fail "crash in the server log: $crashes"
for kind in single reader rebuild verify force; do
	[ -n "${txns[$kind]}" ] && [ "${txns[$kind]}" -gt 0 ] || { tail -5 "$out.$kind" >&2; fail "$kind: no transaction ran"; }
	[ "${aborted[$kind]}" -eq 0 ] && [ "${rcs[$kind]}" -eq 0 ] \
		|| { grep -m3 'aborted in command\|ERROR' "$out.$kind" >&2; fail "$kind: ${aborted[$kind]} clients aborted by an error (pgbench exit ${rcs[$kind]})"; }
	[ "${failed[$kind]:-0}" -eq 0 ] || fail "$kind: ${failed[$kind]} failed transactions (deadlock ${deadlocks[$kind]}, serialization ${serial[$kind]})"
done
# rebuild() and verify() wait for the deliveries under way, and the
# deliveries that come after wait for them: neither may starve the other
for kind in rebuild verify; do
	[ "${txns[$kind]}" -ge 1 ] || fail "$kind: no call completed in ${seconds}s (starved)"
done
[ "${aborted[multi]}" -eq 0 ] || { grep -m3 'aborted in command\|ERROR' "$out.multi" >&2; fail "multi: ${aborted[multi]} clients aborted by an error other than a deadlock"; }
[ "$single_victims" -eq 0 ] || fail "$single_victims single-delivery statements rolled back by a deadlock"
[ "$stored_single" -eq "${txns[single]}" ] || fail "${txns[single]} single deliveries committed, $stored_single stored"
[ "$verify_bad" -eq 0 ] || fail "verify() found differences during the run ($verify_bad of $verifies calls)"
[ "$diffs" -eq 0 ] || { q -d $db -c "SELECT kind, key, left(live::text, 200), left(rebuilt::text, 200) FROM onboarding.verify() LIMIT 5" >&2; fail "verify() found $diffs differences"; }
