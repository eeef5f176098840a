#!/usr/bin/env bash
# Change data capture (SPEC §10): a real test_decoding slot read while a
# late delivery refolds an entity.  The transaction that stored the late
# delivery shows, in commit order, every change it made: the delivery, the
# account's new version, the history rows it deleted and those it wrote
# (only the rows its arrival changes: the bounded refold), and the outcomes
# of the later deliveries it revised; and the rows decoded are the rows the
# tables hold afterwards.  (Decoding names the partition a delivery is
# stored in, onboarding.inbox_default here: the inbox is partitioned; and
# the partition of history a row is in, onboarding.history_default here,
# whose key is (id, inbox_id).)
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_cdc
cleanup() {
	q -d $db -c "SELECT pg_drop_replication_slot('ob_cdc')" >/dev/null 2>&1 || true
	drop_db $db >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
fresh_db $db >/dev/null
[ "$(q -c 'SHOW wal_level')" = logical ] || fail "the test cluster needs wal_level = logical (test/run.sh)"

body() {	# key status time
	printf '{"webhook_type": "account_request.status_change", "key": "%s", "status": "%s", "event_datetime": "%s"}' "$1" "$2" "$3"
}
q -d $db -c "INSERT INTO onboarding.inbox (payload) VALUES ('$(body cdc-1 pending_bacen_validation '2025-05-01 10:00:00')')" \
	-c "INSERT INTO onboarding.inbox (payload) VALUES ('$(body cdc-1 pending_additional_data '2025-05-01 12:00:00')')" \
	-c "INSERT INTO onboarding.inbox (payload) VALUES ('$(body cdc-1 account_opened '2025-05-01 13:00:00')')" >/dev/null
q -d $db -c "SELECT 1 FROM pg_create_logical_replication_slot('ob_cdc', 'test_decoding')" >/dev/null
before=$(q -d $db -c "SELECT max(id) FROM onboarding.history")
# the KYC analysis, between the reservation and the request for data, arrives last
q -d $db -c "INSERT INTO onboarding.inbox (payload) VALUES ('$(body cdc-1 pending_kyc_analysis '2025-05-01 11:00:00')')" >/dev/null

q -d $db -c "SELECT data FROM pg_logical_slot_get_changes('ob_cdc', NULL, NULL, 'include-xids', '0',
                                                           'skip-empty-xacts', '1')" >"$ONBOARDING_WORK/cdc.txt"
kinds=$(sed -E -n 's/^table onboarding\.([a-z_]+): ([A-Z]+):.*/\1 \2/p' "$ONBOARDING_WORK/cdc.txt" | uniq -c |
	awk '{printf "%s%s %s x%d", sep, $2, $3, $1; sep = ", "}')
echo "cdc: the late delivery's transaction, as decoded: $kinds"
[ "$(grep -c '^BEGIN' "$ONBOARDING_WORK/cdc.txt")" = 1 ] && [ "$(grep -c '^COMMIT' "$ONBOARDING_WORK/cdc.txt")" = 1 ] \
	|| { cat "$ONBOARDING_WORK/cdc.txt" >&2; fail "not one transaction"; }
grep -q '^table onboarding.inbox[a-z0-9_]*: INSERT:.*pending_kyc_analysis' "$ONBOARDING_WORK/cdc.txt" || fail "no inbox INSERT decoded"
grep -q '^table onboarding.account: UPDATE:' "$ONBOARDING_WORK/cdc.txt" || fail "no account UPDATE decoded"
grep -q '^table onboarding.history[a-z0-9_]*: DELETE:' "$ONBOARDING_WORK/cdc.txt" || fail "no history DELETE decoded"
grep -q '^table onboarding.history[a-z0-9_]*: INSERT:' "$ONBOARDING_WORK/cdc.txt" || fail "no history INSERT decoded"
grep -q "^table onboarding.inbox[a-z0-9_]*: INSERT:.*outcome\[onboarding.outcome\]:'stale'" "$ONBOARDING_WORK/cdc.txt" \
	|| fail "the late delivery is not decoded as stale"

# the last decoded version of each row is the row as stored: the account,
# and history as its inserted rows less its deleted ones
decoded_status=$(grep '^table onboarding.account: UPDATE:' "$ONBOARDING_WORK/cdc.txt" | tail -1 |
	sed -E "s/.* status\[onboarding.account_status\]:'([a-z_]+)'.*/\1/")
stored_status=$(q -d $db -c "SELECT status FROM onboarding.account WHERE account_key = 'cdc-1'")
decoded_history=$(sed -E -n "s/^table onboarding.history[a-z0-9_]*: INSERT: id\[bigint\]:([0-9]+) .* to_status\[text\]:'([a-z_]+)'.*/\1 \2/p" "$ONBOARDING_WORK/cdc.txt")
deleted=$(sed -E -n 's/^table onboarding.history[a-z0-9_]*: DELETE: id\[bigint\]:([0-9]+) inbox_id\[bigint\]:[0-9]+$/\1/p' "$ONBOARDING_WORK/cdc.txt" | paste -sd, -)
stored_history=$(q -F ' ' -d $db -c "SELECT id, to_status FROM onboarding.history
                                      WHERE entity_key = 'cdc-1' AND id > $before ORDER BY id")
gone=$(q -d $db -c "SELECT count(*) FROM onboarding.history WHERE id IN (${deleted:-0})")
echo "cdc: account decoded as $decoded_status, stored as $stored_status; history rows deleted: $deleted;" \
	"written again: $(tr '\n' ' ' <<<"$decoded_history")"
[ "$decoded_status" = "$stored_status" ] || fail "the decoded account is not the stored one"
[ "$decoded_history" = "$stored_history" ] || { echo "$stored_history" >&2; fail "the decoded history is not the stored one"; }
[ "$gone" = 0 ] || fail "$gone history rows decoded as deleted are still stored"
rm -f "$ONBOARDING_WORK/cdc.txt"
