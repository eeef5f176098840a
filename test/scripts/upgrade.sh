#!/usr/bin/env bash
# Upgrade from 0.1.0: a database made with CREATE EXTENSION onboarding
# VERSION '0.1.0' (the scripts of 0.1.0 with the library of this build, as
# after a package upgrade) is populated — a corpus of every provider
# through INSERT (payload), INSERT (raw) with headers and ingest(), a user
# status_map row — and updated the documented way (CREATE EXTENSION taxid;
# ALTER EXTENSION onboarding UPDATE).  A second database gets a fresh
# install of the current version (CREATE EXTENSION onboarding CASCADE) and the same deliveries.
# Proves: the update refuses to run without taxid and changes nothing then;
# after it, the evidence (id, received_at, provider, payload, raw, headers,
# forced_by) is byte-identical, every state table, history and the inbox's
# derived columns are identical, verify() is empty; a force_status()
# override made then is alike in both; the schema (pg_dump --schema-only
# --binary-upgrade, which lists every member of the extensions, with OIDs
# and transaction ids masked) equals the fresh install's; tax ids compare
# and use their index in a session with the default search_path; and new
# deliveries get the same outcomes and the same state in both databases.
#
#   ONBOARDING_LONG=1   a corpus about 5 times larger
#
# The same test runs from each released version (0.1.0, then 0.2.0: a
# database made with CREATE EXTENSION onboarding VERSION '0.2.0' CASCADE,
# which needs no new extension to update); UPGRADE_FROM=0.2.0 runs one.
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

if [ -z "${UPGRADE_FROM:-}" ]; then
	for from in 0.1.0 0.2.0; do
		UPGRADE_FROM=$from bash "$0" || exit 1
	done
	exit 0
fi
from=$UPGRADE_FROM

old=onboarding_upgrade_old
new=onboarding_upgrade_new
if [ "$LONG" = 1 ]; then scale=150; else scale=30; fi
out="$ONBOARDING_WORK/upgrade"
mkdir -p "$out"
trap 'rm -rf "$out"; drop_db $old >/dev/null 2>&1 || true; drop_db $new >/dev/null 2>&1 || true;
      q -d postgres -c "DROP ROLE IF EXISTS ob_upgrade_app" >/dev/null 2>&1 || true' EXIT

# the corpus, made once and loaded into both databases; n % 5 = 0 is held
# back and delivered after the update (it includes late, out-of-order events)
drop_db $old; drop_db $new
q -d postgres -c "CREATE DATABASE $old" -c "CREATE DATABASE $new"
if [ "$from" = 0.1.0 ]; then
	q -d $old -c "CREATE EXTENSION onboarding VERSION '0.1.0'"
else
	q -d $old -c "CREATE EXTENSION onboarding VERSION '$from' CASCADE"
fi
q -d $new -c "CREATE EXTENSION onboarding CASCADE"
# an application's role: INSERT and SELECT on the inbox, a column grant,
# ingest() and rebuild(); the same grants in both databases (the schemas,
# initial privileges included, are compared: the update's carried-over
# grants must be dumped as the user's)
q -d postgres -c "DO \$\$ BEGIN CREATE ROLE ob_upgrade_app; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
for d in $old $new; do
	q -d $d -c "GRANT USAGE ON SCHEMA onboarding TO ob_upgrade_app" \
		-c "GRANT INSERT, SELECT ON onboarding.inbox TO ob_upgrade_app" \
		-c "GRANT UPDATE (detail) ON onboarding.inbox TO ob_upgrade_app" \
		-c "GRANT EXECUTE ON FUNCTION onboarding.ingest(jsonb, onboarding.provider, jsonb) TO ob_upgrade_app"
done
# (rebuild() took its arguments in 0.3.0)
q -d $old -c "GRANT EXECUTE ON FUNCTION onboarding.rebuild() TO ob_upgrade_app"
q -d $new -c "GRANT EXECUTE ON FUNCTION onboarding.rebuild(onboarding.provider, text, text, timestamptz) TO ob_upgrade_app"
q -d $old -v scale="$scale" -v seed=0.17 -f "$RELIABILITY/corpus.sql"
q -d $old -c "COPY corpus TO STDOUT" >"$out/corpus.txt"
q -d $new -c "CREATE TABLE public.corpus (n int, body jsonb NOT NULL, raw text)" \
	-c "\\copy public.corpus FROM '$out/corpus.txt'"

versions="SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname)
            FROM pg_extension WHERE extname IN ('onboarding', 'taxid')"
echo "upgrade from $from: before: $old has $(q -d $old -c "$versions"); $new has $(q -d $new -c "$versions")"

# batch A: the same deliveries, the same way, in both databases
deliver_a=$(cat <<'SQL'
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data');
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 5 IN (1, 2) ORDER BY n;
INSERT INTO onboarding.inbox (raw, headers)
SELECT raw, jsonb_build_object('X-Request-Id', 'req-' || n) FROM corpus WHERE n % 5 = 3 ORDER BY n;
SELECT count(onboarding.ingest(body)) FROM (SELECT body FROM corpus WHERE n % 5 = 4 ORDER BY n) c;
INSERT INTO onboarding.inbox (received_at, payload)
VALUES ('2024-12-31 23:00:00+00', '{"webhook_type": "account", "key": "backfill-1",
        "status": "account_opened", "event_datetime": "2024-12-31 20:00:00"}');
SQL
)
# an operator's override, made once the update has run (a 0.1.0 schema has
# no rule tables of extraction: this library stores its deliveries, and
# the update's rebuild() derives them, so there is no entity to override
# before it)
deliver_force=$(cat <<'SQL'
SELECT outcome FROM onboarding.force_status('account', 'qitech', 'qi-3', 'blocked',
                                            'court order 123; "quoted" and \back\slashed');
SQL
)
q -d $old >/dev/null <<<"$deliver_a"
q -d $new >/dev/null <<<"$deliver_a"

# what the 0.1.0 database holds: evidence, state, and the sequences
evidence="COPY (SELECT id, received_at, provider, payload, raw, headers, forced_by
                  FROM onboarding.inbox ORDER BY id) TO STDOUT"
snapshot() {	# database, file: every table's rows in key order, as text
	{
		# (last_received_at, new in 0.2.0, is when each database received a
		# delivery: not compared)
		q -d "$1" -c "COPY (SELECT to_jsonb(t) - 'last_received_at' FROM onboarding.account t ORDER BY provider, account_key) TO STDOUT"
		q -d "$1" -c "COPY (SELECT to_jsonb(t) - 'last_received_at' FROM onboarding.proposal t ORDER BY provider, proposal_key) TO STDOUT"
		q -d "$1" -c "COPY (SELECT to_jsonb(t) - 'last_received_at' FROM onboarding.document t ORDER BY provider, document_key) TO STDOUT"
		q -d "$1" -c "COPY (SELECT to_jsonb(t) - 'last_received_at' FROM onboarding.closure t ORDER BY provider, account_key) TO STDOUT"
		# (history ids follow the order rows were written, live or replayed)
		q -d "$1" -c "COPY (SELECT to_jsonb(h) - 'id' FROM onboarding.history h
		                    ORDER BY provider, entity, entity_key, inbox_id, to_status) TO STDOUT"
		# (an override's body says when it was made, so its hash is not
		# compared: the two databases made theirs at different times)
		q -d "$1" -c "COPY (SELECT id, event_type, subject, status_raw, event_at, outcome, detail,
		                           CASE WHEN forced_by IS NULL THEN body_hash END, duplicate_of
		                      FROM onboarding.inbox ORDER BY id) TO STDOUT"
		q -d "$1" -c "COPY (SELECT * FROM onboarding.status_map ORDER BY 1, 2, 3, 4) TO STDOUT"
		# (0.3.0's transition.id numbers rows in the order they were made)
		q -d "$1" -c "COPY (SELECT entity, provider, from_status, to_status, shipped
		                      FROM onboarding.transition ORDER BY 1, 2, 3, 4) TO STDOUT"
		q -d "$1" -c "SELECT last_value, is_called FROM onboarding.inbox_id_seq"
	} >"$2"
}
q -d $old -c "$evidence" >"$out/evidence_before.txt"
snapshot $old "$out/state_before.txt"
snapshot $new "$out/state_fresh_before.txt"
read -r inbox accounts history <<<"$(q -F ' ' -d $old -c "SELECT (SELECT count(*) FROM onboarding.inbox),
    (SELECT count(*) FROM onboarding.account), (SELECT count(*) FROM onboarding.history)")"
state_rows=$(wc -l <"$out/state_before.txt")
same_as_fresh=$(diff -q "$out/state_before.txt" "$out/state_fresh_before.txt" >/dev/null && echo yes || echo no)
# (for information: 0.2.0 derives differently from 0.1.0 — event order,
# new moves in the graphs — so what must agree is the state after the
# update with what a fresh install derived from the same deliveries)
echo "upgrade from $from: batch A: $inbox deliveries, $accounts accounts, $history history rows;" \
	"0.1.0 derived the same $state_rows rows as a fresh install: $same_as_fresh"

# from 0.1.0 the update needs taxid first: without it ALTER EXTENSION
# refuses and changes nothing
if [ "$from" = 0.1.0 ]; then
if q -d $old -c "ALTER EXTENSION onboarding UPDATE" >"$out/refused.txt" 2>&1; then
	fail "ALTER EXTENSION onboarding UPDATE ran without the extension taxid"
fi
refusal=$(grep -o 'required extension "taxid" is not installed' "$out/refused.txt" || true)
[ -n "$refusal" ] || { cat "$out/refused.txt" >&2; fail "unexpected error from the update without taxid"; }
[ "$(q -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'onboarding'")" = 0.1.0 ] \
	|| fail "a refused update changed the version"
echo "upgrade from $from: without taxid the update is refused: $refusal"
fi

# the update, as README documents it
start=$(date +%s%N)
if [ "$from" = 0.1.0 ]; then
	q -d $old -c "CREATE EXTENSION taxid" -c "ALTER EXTENSION onboarding UPDATE"
else
	q -d $old -c "ALTER EXTENSION onboarding UPDATE"
fi
took=$((($(date +%s%N) - start) / 1000000))
echo "upgrade from $from: after the update ($took ms):" \
	"$old has $(q -d $old -c "$versions")"

q -d $old -c "$evidence" >"$out/evidence_after.txt"
snapshot $old "$out/state_after.txt"
md5_before=$(md5sum <"$out/evidence_before.txt" | cut -c1-32)
md5_after=$(md5sum <"$out/evidence_after.txt" | cut -c1-32)
state_diff=$(diff "$out/state_fresh_before.txt" "$out/state_after.txt" | grep -c '^[<>]' || true)
verify_old=$(q -d $old -c "SELECT count(*) FROM onboarding.verify()")
echo "upgrade from $from: evidence md5 before $md5_before, after $md5_after ($inbox rows);" \
	"state rows compared with the fresh install $state_rows, differing $state_diff; verify() $verify_old"
[ "$md5_before" = "$md5_after" ] || { diff "$out/evidence_before.txt" "$out/evidence_after.txt" | head -20 >&2; fail "the evidence changed in the update"; }
[ "$state_diff" -eq 0 ] || { diff "$out/state_fresh_before.txt" "$out/state_after.txt" | head -20 >&2; fail "the updated state differs from a fresh install's"; }
[ "$verify_old" -eq 0 ] || fail "verify() found $verify_old differences after the update"
q -d $old >/dev/null <<<"$deliver_force"
q -d $new >/dev/null <<<"$deliver_force"

# the schema equals a fresh install's: every member of both extensions, as
# pg_dump --binary-upgrade writes them; OIDs and transaction ids masked
schema() {
	"$ONBOARDING_BINDIR/pg_dump" --schema-only --binary-upgrade --exclude-table=public.corpus -d "$1" \
		| grep -v '^\\restrict \|^\\unrestrict ' \
		| sed -E -e '/binary_upgrade_set_next_attribute_versions/d' -e "/setval\('onboarding.(history|rebuild_progress)_id_seq'/d" -e '/binary_upgrade_|relfrozenxid|relminmxid|^WHERE oid = / s/[0-9]+/N/g'
}
schema $old >"$out/schema_upgraded.sql"
schema $new >"$out/schema_fresh.sql"
schema_lines=$(wc -l <"$out/schema_fresh.sql")
members=$(grep '^ALTER EXTENSION .* ADD ' "$out/schema_fresh.sql" | awk '{n[$3]++} END {for (e in n) { printf "%s%d of %s", sep, n[e], e; sep = ", " }}' || true)
schema_diff=$(diff "$out/schema_upgraded.sql" "$out/schema_fresh.sql" | grep -c '^[<>]' || true)
echo "upgrade from $from: schema of the updated database against a fresh install: $schema_lines lines," \
	"extension members $members; $schema_diff lines differing"
[ "$schema_diff" -eq 0 ] || { diff -u "$out/schema_upgraded.sql" "$out/schema_fresh.sql" | head -60 >&2; fail "the updated schema differs from a fresh install"; }

# the application's role still delivers (its grants moved to the new
# inbox); the same two deliveries in the fresh database, so that ids agree
app_deliver() {	# database
	q -d "$1" -c "SET ROLE ob_upgrade_app" \
		-c "INSERT INTO onboarding.inbox (payload) VALUES ('{\"webhook_type\": \"account\", \"key\": \"app-after-update\", \"status\": \"account_opened\"}') RETURNING outcome" \
		-c "SELECT outcome FROM onboarding.ingest('{\"webhook_type\": \"account\", \"key\": \"app-after-update-2\", \"status\": \"account_opened\"}')" \
		2>&1 | tr '\n' ' '
}
app_delivers=$(app_deliver $old)
app_fresh=$(app_deliver $new)
echo "upgrade from $from: the application's role after the update: $app_delivers(fresh install: $app_fresh)"
[ "$app_delivers" = "applied applied " ] || fail "the application's role cannot deliver after the update: $app_delivers"
# its grants are the user's, as in the fresh install: no initial-privilege
# dependency (PostgreSQL 17 on) is left on the role
initdeps="SELECT count(*) FROM pg_shdepend WHERE refobjid = 'ob_upgrade_app'::regrole AND deptype = 'i'
             AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
initdeps_old=$(q -d $old -c "$initdeps")
initdeps_new=$(q -d $new -c "$initdeps")
[ "$initdeps_old" = "$initdeps_new" ] || fail "initial-privilege dependencies on the role: $initdeps_old after the update, $initdeps_new fresh"

# tax ids in a session with the default search_path, on both
taxid_check=$(cat <<'SQL'
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT (SELECT count(*) FROM onboarding.account WHERE tax_id = '615.120.612-63')
       || ' ' || (SELECT count(*) FROM onboarding.proposal p JOIN onboarding.account a ON a.tax_id = p.tax_id)
       || ' ' || (SELECT count(*) FROM onboarding.timeline('615.120.612-63'));
EXPLAIN (COSTS OFF) SELECT account_key FROM onboarding.account WHERE tax_id = '615.120.612-63';
SQL
)
q -d $old <<<"$taxid_check" >"$out/taxid_old.txt"
q -d $new <<<"$taxid_check" >"$out/taxid_new.txt"
read -r by_taxid joined timeline_rows <<<"$(head -1 "$out/taxid_old.txt")"
index_used=$(grep -c 'Index Scan using account_tax_id_idx' "$out/taxid_old.txt" || true)
echo "upgrade from $from: default search_path: $by_taxid accounts WHERE tax_id = '615.120.612-63'" \
	"(index scan: $([ "$index_used" -gt 0 ] && echo yes || echo no)), $joined proposal-account pairs" \
	"joined on tax_id, $timeline_rows timeline rows; same as fresh: $(cmp -s "$out/taxid_old.txt" "$out/taxid_new.txt" && echo yes || echo no)"
[ "$by_taxid" -gt 0 ] || fail "no account found by tax id after the update"
[ "$index_used" -gt 0 ] || { cat "$out/taxid_old.txt" >&2; fail "the tax id lookup does not use its index"; }
cmp -s "$out/taxid_old.txt" "$out/taxid_new.txt" || { diff "$out/taxid_old.txt" "$out/taxid_new.txt" >&2; fail "tax id queries answer differently"; }

# batch B: new deliveries (the held-back fifth of the corpus, out of order
# with what is stored, a duplicate of a batch A body, the user rule, a new
# tax id) behave alike in both databases
deliver_b=$(cat <<'SQL'
CREATE TEMP TABLE before_b AS SELECT coalesce(max(id), 0) AS id FROM onboarding.inbox;
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 5 = 0 AND n % 2 = 0 ORDER BY n;
INSERT INTO onboarding.inbox (raw) SELECT raw FROM corpus WHERE n % 5 = 0 AND n % 2 = 1 ORDER BY n;
SELECT count(onboarding.ingest(body)) AS ingested
  FROM (SELECT body FROM corpus WHERE n % 5 = 1 AND n < 40 ORDER BY n) c \gset
SELECT outcome FROM onboarding.ingest('{"webhook_type": "account_request.status_change",
    "key": "after-update-1", "status": "pending_mystery", "event_datetime": "2026-01-01 10:00:00",
    "data": {"account_owner": {"document_number": "12.abc.345/01de-35"}}}') \gset
COPY (SELECT i.id, i.provider, i.event_type, i.subject, i.outcome, i.detail, i.duplicate_of
        FROM onboarding.inbox i, before_b b WHERE i.id > b.id ORDER BY i.id) TO STDOUT;
SQL
)
q -d $old <<<"$deliver_b" >"$out/batch_b_old.txt"
q -d $new <<<"$deliver_b" >"$out/batch_b_new.txt"
snapshot $old "$out/state_old_end.txt"
snapshot $new "$out/state_new_end.txt"
b_count=$(grep -c . "$out/batch_b_new.txt" || true)
b_outcomes=$(cut -f5 "$out/batch_b_new.txt" | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
b_diff=$(diff "$out/batch_b_old.txt" "$out/batch_b_new.txt" | grep -c '^[<>]' || true)
end_diff=$(diff "$out/state_old_end.txt" "$out/state_new_end.txt" | grep -c '^[<>]' || true)
verify_old_end=$(q -d $old -c "SELECT count(*) FROM onboarding.verify()")
verify_new_end=$(q -d $new -c "SELECT count(*) FROM onboarding.verify()")
echo "upgrade from $from: batch B: $b_count deliveries ($b_outcomes), outcomes differing $b_diff;" \
	"state rows compared $(wc -l <"$out/state_new_end.txt"), differing $end_diff;" \
	"verify() $verify_old_end updated, $verify_new_end fresh"
[ "$b_count" -gt 0 ] || fail "batch B delivered nothing"
[ "$b_diff" -eq 0 ] || { diff "$out/batch_b_old.txt" "$out/batch_b_new.txt" | head -20 >&2; fail "new deliveries have other outcomes after the update than on a fresh install"; }
[ "$end_diff" -eq 0 ] || { diff "$out/state_old_end.txt" "$out/state_new_end.txt" | head -20 >&2; fail "state after new deliveries differs from a fresh install"; }
[ "$verify_old_end" -eq 0 ] && [ "$verify_new_end" -eq 0 ] || fail "verify() is not empty after new deliveries"
