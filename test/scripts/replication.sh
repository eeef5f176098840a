#!/usr/bin/env bash
# Logical replication of the extension's tables, with a real publication
# and real subscriptions inside the test cluster (README, "Replicas"):
#
#  (a) every table: the inbox, the state tables and history, and the
#      user's rows of the rule tables (WHERE NOT shipped: a subscriber that
#      has the extension has the shipped rows);
#  (b) the inbox alone (and the user's rule rows), the pipeline triggers enabled ALWAYS on the
#      subscriber, which derives its own state.
#
# The publisher then receives about 2,000 deliveries in a shuffled order
# (late ones, duplicates), a user's status_map row, force_status()
# overrides, direct UPDATEs of state rows and a rebuild().  Proves: (a)
# equals the publisher row for row, every column; (b) equals it row for
# row, the ids of history aside (it numbers its own); verify() is empty on
# all three.  The slots are made beforehand: a subscription to a database
# of its own cluster cannot make its slot while it is created.  (b) starts
# from an empty inbox (copy_data = false): it derives the deliveries in the
# order the publisher committed them.
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

pub=onboarding_repl_pub
suba=onboarding_repl_all
subb=onboarding_repl_inbox
if [ "$LONG" = 1 ]; then scale=100; else scale=24; fi
out="$ONBOARDING_WORK/replication"
mkdir -p "$out"
cleanup() {
	for d in $suba $subb; do
		q -d $d -c "ALTER SUBSCRIPTION ob_sub DISABLE" -c "ALTER SUBSCRIPTION ob_sub SET (slot_name = NONE)" \
			-c "DROP SUBSCRIPTION ob_sub" >/dev/null 2>&1 || true
	done
	for s in ob_all ob_inbox; do
		q -d $pub -c "SELECT pg_drop_replication_slot('$s')" >/dev/null 2>&1 || true
	done
	for d in $pub $suba $subb; do drop_db $d >/dev/null 2>&1 || true; done
	rm -rf "$out"
}
trap cleanup EXIT
cleanup
mkdir -p "$out"

[ "$(q -c 'SHOW wal_level')" = logical ] || fail "the test cluster needs wal_level = logical (test/run.sh)"
for d in $pub $suba $subb; do fresh_db $d >/dev/null; done
conn="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$pub"

rules="status_map transition provider_rule event_rule effect_rule value_rule code_map status_guard
       settled_status settled_by_proposal"
filtered=$(for t in $rules; do printf 'TABLE onboarding.%s WHERE (NOT shipped)\n' "$t"; done | paste -sd, -)
q -d $pub >/dev/null <<SQL
CREATE PUBLICATION ob_all FOR TABLE onboarding.inbox, onboarding.account, onboarding.proposal,
    onboarding.document, onboarding.closure, onboarding.history, onboarding.daily_tally,
    onboarding.status_tally, onboarding.open_entity, onboarding.refused_entity, onboarding.stage_span, onboarding.stage_tally, onboarding.group_partition, onboarding.checkpoint;
CREATE PUBLICATION ob_rules FOR $filtered;
CREATE PUBLICATION ob_inbox FOR TABLE onboarding.inbox;
SELECT count(*) FROM (SELECT pg_create_logical_replication_slot('ob_all', 'pgoutput')
                      UNION ALL SELECT pg_create_logical_replication_slot('ob_inbox', 'pgoutput')) s;
SQL
q -d $suba -c "CREATE SUBSCRIPTION ob_sub CONNECTION '$conn' PUBLICATION ob_all, ob_rules
               WITH (create_slot = false, slot_name = 'ob_all')"
q -d $subb <<SQL
ALTER TABLE onboarding.inbox ENABLE ALWAYS TRIGGER inbox_pipeline;
ALTER TABLE onboarding.inbox ENABLE ALWAYS TRIGGER inbox_settle;
ALTER TABLE onboarding.inbox ENABLE ALWAYS TRIGGER inbox_immutable;
CREATE SUBSCRIPTION ob_sub CONNECTION '$conn' PUBLICATION ob_inbox, ob_rules
    WITH (create_slot = false, slot_name = 'ob_inbox', copy_data = false);
SQL

# the publisher's day: a user's rule, the corpus shuffled in four
# statements (and a fifth by ingest()), overrides, direct UPDATEs, a rebuild
q -d $pub -v scale="$scale" -v seed=0.23 -f "$RELIABILITY/corpus.sql" >/dev/null
q -d $pub <<'SQL' >/dev/null
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data');
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 5 = 0 ORDER BY md5(n::text);
INSERT INTO onboarding.inbox (raw) SELECT raw FROM corpus WHERE n % 5 = 1 ORDER BY md5(n::text);
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 5 = 2 ORDER BY md5(n::text);
SELECT count(onboarding.force_status('account', 'qitech', 'qi-' || a, 'blocked', 'replication test ' || a))
  FROM generate_series(1, 8) a
 WHERE EXISTS (SELECT FROM onboarding.account WHERE provider = 'qitech' AND account_key = 'qi-' || a);
UPDATE onboarding.account SET status = 'active', reason = 'unblocked by hand'
 WHERE provider = 'qitech' AND account_key IN ('qi-1', 'qi-2') AND status = 'blocked';
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 5 = 3 ORDER BY md5(n::text);
SELECT count(onboarding.ingest(body)) FROM (SELECT body FROM corpus WHERE n % 5 = 4 ORDER BY n DESC) c;
SELECT onboarding.rebuild();
UPDATE onboarding.account SET holder_name = 'Titular corrigido'
 WHERE provider = 'qitech' AND account_key = 'qi-3';
SQL

# wait until both slots have confirmed everything the publisher wrote
target=$(q -d $pub -c "SELECT pg_current_wal_lsn()")
for i in $(seq 1 300); do
	behind=$(q -d $pub -c "SELECT count(*) FROM pg_replication_slots
	                        WHERE slot_name IN ('ob_all', 'ob_inbox')
	                          AND (confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < '$target')")
	[ "$behind" = 0 ] && break
	sleep 0.5
done
[ "$behind" = 0 ] || { tail -30 "$ONBOARDING_SERVER_LOG" >&2; fail "the subscribers did not catch up in 150 s"; }

# every table, row for row, in key order, as text
dump() {	# database, file, history without id?
	local noid=$3
	{
		q -d "$1" -c "COPY (SELECT * FROM onboarding.inbox ORDER BY id) TO STDOUT"
		for t in account:account_key proposal:proposal_key document:document_key closure:account_key; do
			q -d "$1" -c "COPY (SELECT * FROM onboarding.${t%%:*} ORDER BY provider, ${t#*:}) TO STDOUT"
		done
		if [ "$noid" = 1 ]; then
			q -d "$1" -c "COPY (SELECT provider, entity, entity_key, from_status, to_status, event_at, inbox_id, reason
			                      FROM onboarding.history
			                     ORDER BY provider, entity, entity_key, event_at, inbox_id, to_status) TO STDOUT"
		else
			q -d "$1" -c "COPY (SELECT * FROM onboarding.history ORDER BY id) TO STDOUT"
		fi
		q -d "$1" -c "COPY (SELECT * FROM onboarding.status_map WHERE NOT shipped ORDER BY 1, 2, 3, 4) TO STDOUT"
	} >"$2"
}
dump $pub "$out/pub.txt" 0
dump $suba "$out/all.txt" 0
dump $pub "$out/pub_noid.txt" 1
dump $subb "$out/inbox.txt" 1

read -r deliveries late dups forced direct history <<<"$(q -F ' ' -d $pub -c "
    SELECT count(*), count(*) FILTER (WHERE outcome = 'stale'), count(*) FILTER (WHERE outcome = 'duplicate'),
           count(*) FILTER (WHERE event_type = 'force_status'),
           count(*) FILTER (WHERE payload ->> 'kind' = 'direct_update'),
           (SELECT count(*) FROM onboarding.history)
      FROM onboarding.inbox")"
rows=$(wc -l <"$out/pub.txt")
diff_a=$(diff "$out/pub.txt" "$out/all.txt" | grep -c '^[<>]' || true)
diff_b=$(diff "$out/pub_noid.txt" "$out/inbox.txt" | grep -c '^[<>]' || true)
verify_pub=$(q -d $pub -c "SELECT count(*) FROM onboarding.verify()")
verify_a=$(q -d $suba -c "SELECT count(*) FROM onboarding.verify()")
verify_b=$(q -d $subb -c "SELECT count(*) FROM onboarding.verify()")
echo "replication: publisher: $deliveries deliveries ($late stale, $dups duplicates, $forced overrides," \
	"$direct direct UPDATEs recorded), $history history rows, a rebuild(); $rows rows compared"
echo "replication: (a) every table: $diff_a lines differing; (b) the inbox alone, derived there:" \
	"$diff_b lines differing; verify(): publisher $verify_pub, (a) $verify_a, (b) $verify_b"
[ "$deliveries" -ge 1900 ] || fail "only $deliveries deliveries"
[ "$late" -gt 0 ] && [ "$dups" -gt 0 ] && [ "$forced" -gt 0 ] && [ "$direct" -gt 0 ] \
	|| fail "the workload lacks late ones, duplicates, overrides or direct UPDATEs"
[ "$diff_a" -eq 0 ] || { diff "$out/pub.txt" "$out/all.txt" | head -20 >&2; fail "(a) differs from the publisher"; }
[ "$diff_b" -eq 0 ] || { diff "$out/pub_noid.txt" "$out/inbox.txt" | head -20 >&2; fail "(b) differs from the publisher"; }
[ "$verify_pub" -eq 0 ] && [ "$verify_a" -eq 0 ] && [ "$verify_b" -eq 0 ] || fail "verify() is not empty"
