#!/usr/bin/env bash
# Dump/restore: a populated database — a corpus of every provider delivered
# through INSERT (payload), INSERT (raw) and ingest(), a rebuild() in the
# middle, range partitions of the inbox and of history added by the DBA
# (deliveries and history rows in them and in the default partitions),
# user-added rows in onboarding.status_map
# and onboarding.transition
# that change outcomes (and in onboarding.value_rule and onboarding.code_map),
# a force_status() override, and deliveries for every
# provider whose keys (direct and derived) are over 1024 bytes of 2-, 3- and
# 4-byte UTF-8 characters cut inside a character at byte 40 and at byte
# 1024, each delivered twice, plus multibyte values that details quote — is
# dumped with
# pg_dump -Fc and restored with pg_restore into a new database (leaving out
# the dump's indexes and triggers of the inbox's and history's range
# partitions, which PostgreSQL and the extension make when the dump creates
# and attaches them, as docs/partitioning.md says).
# Proves: pg_restore succeeds; every count is equal (inbox, each state table,
# history, user rule rows, overrides); the evidence (id, received_at,
# provider, payload, raw, headers, forced_by) and every derived row
# (onboarding.derived_rows(): state, history, the inbox's derived columns)
# are identical, the whole inbox byte for byte, each delivery in the same
# partition, each history row in its partition (the partitioned inbox and
# history and their member default partitions come from CREATE EXTENSION,
# the DBA's partitions and their rows from the dump);
# verify() is empty in both
# databases; and ingestion
# goes on there: new deliveries are applied, an older event is stale, the
# user rule still applies, and a body delivered before the dump is a
# duplicate of its original.
#
#   ONBOARDING_LONG=1   a corpus about 5 times larger
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

src=onboarding_dump_src
dst=onboarding_dump_dst
if [ "$LONG" = 1 ]; then scale=300; else scale=60; fi
dump="$ONBOARDING_WORK/onboarding.dump"
trap 'rm -f "$dump" "$ONBOARDING_WORK"/dump_*.txt "$ONBOARDING_WORK"/dump_restore.list; drop_db $src >/dev/null 2>&1 || true; drop_db $dst >/dev/null 2>&1 || true' EXIT

fresh_db $src
drop_db $dst
q -d $src -v scale="$scale" -v seed=0.42 -f "$RELIABILITY/corpus.sql"
q -d $src >/dev/null <<'SQL'
-- user rules: a QI Tech status the release does not know, and a second chance
-- after a rejection; both change what the corpus derives
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data');
INSERT INTO onboarding.transition (entity, provider, from_status, to_status)
VALUES ('account', 'qitech', 'rejected', 'in_analysis');
-- user rules of extraction: a second place for the QI Tech holder's name, and
-- a code of a shipped code table
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform)
VALUES ('qitech', '*', 'account', 'holder_name', 51, '{data.account_owner.full_name}', 'text');
INSERT INTO onboarding.code_map (code_table, code, value)
VALUES ('celcoin_file_type', 'PASSPORT', 'identity');

-- range partitions of the DBA's: the backfill below lands in one, some of
-- the corpus in the other
CREATE TABLE onboarding.inbox_p20241201 PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2024-12-01 00:00+00') TO ('2025-01-01 00:00+00');
CREATE TABLE onboarding.inbox_p20310101 PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2031-01-01 00:00+00') TO ('2031-02-01 00:00+00');
-- and of history: the rows of the first thousand deliveries in one, of the
-- next thousand in another, the rest in the default partition
CREATE TABLE onboarding.history_p0 PARTITION OF onboarding.history FOR VALUES FROM (0) TO (1000);
CREATE TABLE onboarding.history_p1000 PARTITION OF onboarding.history FOR VALUES FROM (1000) TO (2000);
INSERT INTO onboarding.inbox (received_at, payload)
SELECT timestamptz '2031-01-01 00:00+00' + n * interval '1 minute', body
  FROM corpus WHERE n % 16 = 5 ORDER BY n;
-- half the corpus as jsonb, a quarter as text (with headers), then a rebuild
-- (which rewrites rows and so scatters their physical order), then the rest
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus WHERE n % 4 IN (0, 1) ORDER BY n;
INSERT INTO onboarding.inbox (raw, headers)
SELECT raw, jsonb_build_object('X-Request-Id', 'req-' || n) FROM corpus WHERE n % 4 = 2 ORDER BY n;
SELECT onboarding.rebuild() AS replayed \gset
SELECT count(onboarding.ingest(body)) FROM corpus WHERE n % 4 = 3;
-- a backfill that supplies its own received_at
INSERT INTO onboarding.inbox (received_at, payload)
VALUES ('2024-12-31 23:00:00+00', '{"webhook_type": "account", "key": "backfill-1",
        "status": "account_opened", "event_datetime": "2024-12-31 20:00:00"}');
-- an operator's override
SELECT outcome FROM onboarding.force_status('account', 'qitech', 'qi-3', 'blocked',
                                            'court order 123; "quoted" and \back\slashed');
SQL
q -d $src -f "$RELIABILITY/multibyte.sql" >/dev/null

# what the source holds
counts="SELECT (SELECT count(*) FROM onboarding.inbox) || ' ' || (SELECT count(*) FROM onboarding.account)
               || ' ' || (SELECT count(*) FROM onboarding.proposal) || ' ' || (SELECT count(*) FROM onboarding.document)
               || ' ' || (SELECT count(*) FROM onboarding.closure) || ' ' || (SELECT count(*) FROM onboarding.history)
               || ' ' || (SELECT count(*) FROM onboarding.status_map WHERE NOT shipped)
               || ' ' || (SELECT count(*) FROM onboarding.transition WHERE NOT shipped)
               || '+' || (SELECT count(*) FROM onboarding.value_rule WHERE NOT shipped)
               || '+' || (SELECT count(*) FROM onboarding.code_map WHERE NOT shipped)
               || ' ' || (SELECT count(*) FROM onboarding.inbox WHERE forced_by IS NOT NULL)
               || ' ' || (SELECT last_value FROM onboarding.inbox_id_seq)"
evidence="COPY (SELECT id, received_at, provider, payload, raw, headers, forced_by, tableoid::regclass
                  FROM onboarding.inbox ORDER BY id) TO STDOUT"
inbox_all="COPY (SELECT * FROM onboarding.inbox ORDER BY id) TO STDOUT"
derived="COPY (SELECT * FROM onboarding.derived_rows() ORDER BY kind, key) TO STDOUT"
partitions="SELECT string_agg(p || '=' || n, ' ' ORDER BY p)
              FROM (SELECT tableoid::regclass::text AS p, count(*) AS n FROM onboarding.inbox GROUP BY 1
                    UNION ALL
                    SELECT tableoid::regclass::text, count(*) FROM onboarding.history GROUP BY 1) x"
# the indexes of the inbox's partitions, each attached to the inbox's
part_indexes="SELECT string_agg(i.indexrelid::regclass || '<' || p.inhparent::regclass, ' ' ORDER BY 1)
                FROM pg_index i JOIN pg_inherits t ON t.inhrelid = i.indrelid
                LEFT JOIN pg_inherits p ON p.inhrelid = i.indexrelid
               WHERE t.inhparent = 'onboarding.inbox'::regclass"
parts_src=$(q -d $src -c "$partitions")
pidx_src=$(q -d $src -c "$part_indexes")
before=$(q -d $src -c "$counts")
q -d $src -c "$evidence" >"$ONBOARDING_WORK/dump_evidence_src.txt"
q -d $src -c "$derived" >"$ONBOARDING_WORK/dump_derived_src.txt"
q -d $src -c "$inbox_all" >"$ONBOARDING_WORK/dump_inbox_src.txt"
src_diffs=$(q -d $src -c "SELECT count(*) FROM onboarding.verify()")
read -r mb_sent mb_invalid mb_applied <<<"$(q -F ' ' -d $src -c "SELECT count(*), count(*) FILTER (WHERE outcome = 'invalid'),
       count(*) FILTER (WHERE outcome = 'applied') FROM onboarding.inbox WHERE headers ? 'mb'")"

read -r inbox account proposal document closure history rules transitions forced seq <<<"$before"
echo "dump_restore: source inbox $inbox, account $account, proposal $proposal, document $document," \
	"closure $closure, history $history, user rules $rules + $transitions, overrides $forced;" \
	"$mb_sent multibyte deliveries ($mb_invalid invalid, $mb_applied applied); verify() $src_diffs"

"$ONBOARDING_BINDIR/pg_dump" -Fc -d $src -f "$dump"
q -d postgres -c "CREATE DATABASE $dst"
# as docs/partitioning.md says: the indexes of the inbox's partitions are
# made by PostgreSQL when the dump attaches them (the inbox, made by CREATE
# EXTENSION, has its indexes already), and their triggers (TRUNCATE for the
# inbox's, stage_span's for history's) by the extension's event trigger
# when the dump creates them, so the dump's own are left out
"$ONBOARDING_BINDIR/pg_restore" -l "$dump" \
	| grep -Ev ' (INDEX|CONSTRAINT|INDEX ATTACH|TRIGGER) onboarding (inbox|history)_p[0-9]' >"$ONBOARDING_WORK/dump_restore.list"
if ! "$ONBOARDING_BINDIR/pg_restore" --exit-on-error -L "$ONBOARDING_WORK/dump_restore.list" -d $dst "$dump" \
	2>"$ONBOARDING_WORK/dump_restore_err.txt"; then
	echo "dump_restore: pg_restore failed:" >&2
	cut -c1-300 "$ONBOARDING_WORK/dump_restore_err.txt" >&2
	echo "dump_restore: restored inbox rows: $(q -d $dst -c "SELECT count(*) FROM onboarding.inbox" 2>&1) of $inbox" >&2
	fail "pg_restore of a populated database"
fi

after=$(q -d $dst -c "$counts")
parts_dst=$(q -d $dst -c "$partitions")
pidx_dst=$(q -d $dst -c "$part_indexes")
q -d $dst -c "$evidence" >"$ONBOARDING_WORK/dump_evidence_dst.txt"
q -d $dst -c "$derived" >"$ONBOARDING_WORK/dump_derived_dst.txt"
q -d $dst -c "$inbox_all" >"$ONBOARDING_WORK/dump_inbox_dst.txt"
inbox_identical=$(cmp -s "$ONBOARDING_WORK/dump_inbox_src.txt" "$ONBOARDING_WORK/dump_inbox_dst.txt" && echo yes || echo no)
evidence_diff=$(diff "$ONBOARDING_WORK/dump_evidence_src.txt" "$ONBOARDING_WORK/dump_evidence_dst.txt" | grep -c '^[<>]' || true)
derived_diff=$(diff "$ONBOARDING_WORK/dump_derived_src.txt" "$ONBOARDING_WORK/dump_derived_dst.txt" | grep -c '^[<>]' || true)
compared=$(wc -l <"$ONBOARDING_WORK/dump_derived_src.txt")
dst_diffs=$(q -d $dst -c "SELECT count(*) FROM onboarding.verify()")

# ingestion goes on in the restored database
read -r maxid original original_body <<<"$(q -F ' ' -d $dst -c "SELECT (SELECT max(id) FROM onboarding.inbox), id, payload
     FROM onboarding.inbox WHERE outcome = 'applied' AND forced_by IS NULL AND payload IS NOT NULL ORDER BY id LIMIT 1")"
continued=$(q -F ' ' -d $dst -v maxid="$maxid" -v original="$original" -v body="$original_body" <<'SQL'
CREATE TEMP TABLE got (what text, outcome text, ok boolean);
INSERT INTO got
SELECT 'new', outcome, outcome = 'applied' AND id > :maxid
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "after-restore-1",
                           "status": "pending_bacen_validation", "event_datetime": "2026-01-01 10:00:00"}');
INSERT INTO got
SELECT 'next step', outcome, outcome = 'applied'
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "after-restore-1",
                           "status": "pending_kyc_analysis", "event_datetime": "2026-01-01 10:05:00"}');
INSERT INTO got
SELECT 'older event', outcome, outcome = 'stale'
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "after-restore-1",
                           "status": "pending_bacen_validation", "event_datetime": "2026-01-01 09:00:00"}');
INSERT INTO got
SELECT 'user rule', outcome, outcome = 'applied'
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "after-restore-2",
                           "status": "pending_mystery", "event_datetime": "2026-01-01 10:00:00"}');
INSERT INTO got
SELECT 'pre-dump body again', outcome, outcome = 'duplicate' AND duplicate_of = :original
  FROM onboarding.ingest(:'body'::jsonb);
INSERT INTO got
SELECT 'state', status::text, status = 'in_analysis'
  FROM onboarding.account WHERE account_key = 'after-restore-1';
INSERT INTO got
SELECT 'user rule state', status::text, status = 'pending_data'
  FROM onboarding.account WHERE account_key = 'after-restore-2';
INSERT INTO got
SELECT 'override kept', status::text, status = 'blocked'
  FROM onboarding.account WHERE provider = 'qitech' AND account_key = 'qi-3';
SELECT count(*) FILTER (WHERE ok) || ' ' || count(*) || ' '
       || coalesce(string_agg(what || ': ' || outcome, ', ') FILTER (WHERE NOT ok), '-') FROM got;
SQL
)
read -r continued_ok continued_all continued_bad <<<"$continued"
end_diffs=$(q -d $dst -c "SELECT count(*) FROM onboarding.verify()")

echo "dump_restore: deliveries and history rows by partition: source $parts_src; restored $( [ "$parts_src" = "$parts_dst" ] && echo the same || echo "$parts_dst")"
echo "dump_restore: restored counts $( [ "$before" = "$after" ] && echo equal || echo "DIFFERENT ($after)");" \
	"evidence rows differing $evidence_diff; whole inbox byte for byte: $inbox_identical;" \
	"derived rows compared $compared, differing $derived_diff; verify() $dst_diffs;" \
	"then $continued_ok/$continued_all deliveries and checks as expected, verify() $end_diffs"

[ "$src_diffs" -eq 0 ] || fail "verify() found $src_diffs differences in the source database"
[ "$before" = "$after" ] || fail "counts differ: source $before, restored $after"
[ "$parts_src" = "$parts_dst" ] || fail "deliveries are in other partitions after restore"
[ "$pidx_src" = "$pidx_dst" ] || fail "the partitions' indexes differ after restore: $pidx_dst (source: $pidx_src)"
case "$parts_src" in *history_p0=*history_p1000=*inbox_p20241201=*inbox_p20310101=*) ;; *) fail "the range partitions hold no deliveries or history rows: $parts_src" ;; esac
[ "$inbox_identical" = yes ] || fail "the inbox is not byte for byte the same after restore"
[ "$evidence_diff" -eq 0 ] || fail "the evidence differs after restore"
[ "$derived_diff" -eq 0 ] || { diff "$ONBOARDING_WORK/dump_derived_src.txt" "$ONBOARDING_WORK/dump_derived_dst.txt" | head -5 >&2; fail "derived state differs after restore"; }
[ "$dst_diffs" -eq 0 ] || fail "verify() found $dst_diffs differences in the restored database"
[ "$continued_ok" -eq "$continued_all" ] || fail "after restore: $continued_bad"
[ "$end_diffs" -eq 0 ] || fail "verify() found $end_diffs differences after ingesting into the restored database"
