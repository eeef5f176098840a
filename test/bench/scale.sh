#!/usr/bin/env bash
# test/bench/scale.sh — years of deliveries on one machine (`make bench-scale`,
# issue 25; not run by CI: at its default size it takes about an hour).
#
# Runs against the throwaway cluster that test/run.sh started. What it does:
#
#   1. generates one chunk of SCALE_DELIVERIES / SCALE_CHUNKS deliveries with
#      the benchmark's generator (corpus.sql: realistic flows of the three
#      providers, about 10.6 deliveries per customer, ~2% of them arriving
#      out of order and ~5% delivered twice);
#   2. loads SCALE_CHUNKS chunks into onboarding.inbox, one COPY each, every
#      chunk addressing other customers (their entity keys rewritten, as
#      `make bench`'s stream does, and their tax ids another set of valid
#      ones, generated again for each chunk: other people), and prints each
#      chunk's ingest rate (per second, and per second of the loading
#      backend's own CPU: the two are close when it waited on nothing).  Each
#      chunk is a month of deliveries
#      (received_at from 2031-01 on, a second apart), loaded into a range
#      partition of its own, made ahead as pg_partman makes them: before a
#      chunk, its month's partition and the next SCALE_PREMAKE months' exist
#      (pg_partman's premake, 4 by default; 0: each made just before its
#      chunk, as until 2026-12-07) (SCALE_PARTITIONS=0: every chunk received
#      now, into the default partition);
#   3. prints the sizes of the tables, in all and per delivery;
#   4. times every report view and function as a dashboard asks it (the
#      aggregates whole; the lists as a count and as their first page of
#      100 rows; timeline() of one person; entity_status for one key), every
#      row fetched: the first run and the best of the next two;
#   5. a scoped rebuild() (the deliveries of the last chunk: `since`) and a
#      one-subject one; then a whole rebuild_concurrently() while one session
#      delivers every 20 ms (its longest wait); with range partitions, the
#      first month archived (archive_partition()) and a late delivery into
#      one of its groups; verify() (from the checkpoints), and the month
#      restored (restore_partition(): its groups folded from every delivery).
#
# Last, one table: figure, value, target, met?  The targets are issue 25's:
# each report < 500 ms and timeline() < 50 ms at 10M deliveries, the last
# chunk's ingest rate >= 80% of the first's, a delivery during the whole
# rebuild waits < 1 s.
#
# Knobs (environment):
#   SCALE_DELIVERIES  deliveries in all                         (10000000)
#   SCALE_CHUNKS      chunks they are loaded in                 (10)
#   SCALE_VERIFY      0: skip verify() (minutes at 10M)         (1)
#   SCALE_PARTITIONS  0: no range partitions (see 2)            (1)
#   SCALE_PREMAKE     range partitions made ahead of the current
#                     month, as pg_partman's premake (see 2)  (4)
#   SCALE_PERSONS     "shared": one corpus for every chunk, its tax ids
#                     the first chunk's (one person gets an account, a
#                     proposal, documents... per chunk, and the groups keyed
#                     by a tax id grow with every chunk; before 2026-12-07
#                     the only way)                           (per chunk)
#   SCALE_MEMORY      shared_buffers, e.g. 6GB (a quarter of this machine's
#                     memory, as a DBA would size it), with max_wal_size 8GB;
#                     "default" keeps the throwaway cluster's 128MB (default)
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PGHOST:?run through 'make bench-scale' (test/run.sh exports the cluster)}"
: "${ONBOARDING_WORK:?run through 'make bench-scale'}"

TOTAL=${SCALE_DELIVERIES:-10000000}
CHUNKS=${SCALE_CHUNKS:-10}
VERIFY=${SCALE_VERIFY:-1}
PARTITIONS=${SCALE_PARTITIONS:-1}
PREMAKE=${SCALE_PREMAKE:-4}
CHUNK=$((TOTAL / CHUNKS))
[ "$CHUNKS" -ge 1 ] && [ "$CHUNKS" -le 500 ] || { echo "SCALE_CHUNKS must be 1 to 500" >&2; exit 2; }
[ "$CHUNK" -ge 1000 ] || { echo "SCALE_DELIVERIES / SCALE_CHUNKS must be at least 1000" >&2; exit 2; }
[[ "$PREMAKE" =~ ^[0-9]+$ ]] || { echo "SCALE_PREMAKE must be a number of months (0 or more)" >&2; exit 2; }

DB=onboarding_scale
CHUNK_FILE=$ONBOARDING_WORK/scale-chunk.copy
trap 'rm -f "$CHUNK_FILE"' EXIT
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
START=$SECONDS

. test/bench/lib.sh

# The server as a DBA sizes it for this much data (restarted with it)
MEMORY=${SCALE_MEMORY:-default}
PERSONS=${SCALE_PERSONS:-chunk}
if [ "$MEMORY" != default ]; then
	: "${ONBOARDING_PGDATA:?run through 'make bench-scale'}"
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER SYSTEM SET shared_buffers = '$MEMORY'" \
		-c "ALTER SYSTEM SET max_wal_size = '8GB'"
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$ONBOARDING_RUNAS" -- "$ONBOARDING_BINDIR/pg_ctl" -D "$ONBOARDING_PGDATA" -w -m fast restart -l "$ONBOARDING_SERVER_LOG" >/dev/null
	else
		"$ONBOARDING_BINDIR/pg_ctl" -D "$ONBOARDING_PGDATA" -w -m fast restart -l "$ONBOARDING_SERVER_LOG" >/dev/null
	fi
fi

log "scale: $(num "$TOTAL") deliveries in $CHUNKS chunks of $(num "$CHUNK")"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION onboarding CASCADE"

# ---------------------------------------------------------------------------
# 1-2. The chunks: a generated corpus (each chunk's own people, unless
#      SCALE_PERSONS=shared), its keys rewritten per chunk.
# ---------------------------------------------------------------------------
log "scale: generating a chunk's corpus"
q -v scale="$CHUNK" -f test/bench/corpus.sql >/dev/null
IFS='|' read -r C_ROWS C_ENTITIES C_REDELIVERED C_SWAPPED C_BYTES C_TYPES < <(q -c "TABLE bench.corpus_info")

# The first instant of the bench's month m (0: the first chunk's)
month_start() { echo "timestamptz '2031-01-01 00:00+00' + make_interval(months => $1)"; }

declare -a RATE CPU_RATE
LAST_START=
for ((r = 0; r < CHUNKS; r++)); do
	if [ "$r" -gt 0 ] && [ "$PERSONS" != shared ]; then
		log "scale: generating chunk $((r + 1))'s corpus (other people)"
		q -v scale="$CHUNK" -v persons="$r" -f test/bench/corpus.sql >/dev/null
	fi
	month=$(month_start "$r")
	if [ "$PARTITIONS" = 1 ]; then
		received="$month + n * interval '1 second'"
		# this month's partition and the next PREMAKE months', as pg_partman
		# keeps them made ahead (those that exist are left alone)
		ddl=
		for ((m = r; m <= r + PREMAKE; m++)); do
			ddl+="CREATE TABLE IF NOT EXISTS onboarding.inbox_chunk$((m + 1)) PARTITION OF onboarding.inbox
			        FOR VALUES FROM ($(month_start "$m")) TO ($(month_start $((m + 1))));"
		done
		q -c "$ddl" >/dev/null
	else
		received="now()"
	fi
	if [ "$r" -eq $((CHUNKS - 1)) ]; then
		if [ "$PARTITIONS" = 1 ]; then LAST_START=$(q -c "SELECT $month"); else LAST_START=$(q -c "SELECT now()"); fi
	fi
	q -c "COPY (SELECT $received,
	                   CASE WHEN $r = 0 THEN body
	                        ELSE replace(replace(body::text,
	                                 '-4e00-', '-4' || lpad(to_hex(3584 + $r), 3, '0') || '-'),
	                                 '\"860590-', '\"' || (860590 + $r) || '-')::jsonb END
	              FROM bench.corpus ORDER BY n) TO '$CHUNK_FILE'"
	read -r t c < <(timed "COPY onboarding.inbox (received_at, payload) FROM '$CHUNK_FILE';")
	RATE[$r]=$(calc "$CHUNK / $t")
	# per second of the backend's own CPU (close to the wall rate unless
	# the backend waited: on I/O, on the machine's other load)
	CPU_RATE[$r]=$(calc "$CHUNK / ($c > 0.01 ? $c : 0.01)")
	echo "chunk $((r + 1))/$CHUNKS: $(num "$CHUNK") deliveries in ${t} s, $(num "${RATE[$r]}") deliveries/s;" \
		"backend CPU ${c} s, $(num "${CPU_RATE[$r]}") deliveries a CPU second; inbox $(num "$(q -c "SELECT count(*) FROM onboarding.inbox")") rows"
done
rm -f "$CHUNK_FILE"
q -c "VACUUM ANALYZE" >/dev/null

echo
echo "outcomes: $(q -c "SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY outcome)
                         FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")"
echo "corpus chunk: $C_ROWS deliveries, $C_ENTITIES entities, $C_REDELIVERED delivered twice, $C_SWAPPED swapped with the previous of their entity, $C_TYPES event types"

# ---------------------------------------------------------------------------
# 3. Sizes.
# ---------------------------------------------------------------------------
echo
echo "sizes (heap, indexes and TOAST), in all and per delivery:"
q -F ' | ' -c "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)),
                      round(pg_total_relation_size(c.oid)::numeric / $TOTAL) || ' B',
                      (SELECT reltuples::bigint FROM pg_class WHERE oid = c.oid) || ' rows'
                 FROM pg_class c
                WHERE c.relnamespace = 'onboarding'::regnamespace AND c.relkind IN ('r', 'p')
                  AND pg_total_relation_size(c.oid) > 65536
                ORDER BY pg_total_relation_size(c.oid) DESC"
SIZE_ALL=$(q -c "SELECT sum(pg_total_relation_size(oid)) FROM pg_class
                  WHERE relnamespace = 'onboarding'::regnamespace AND relkind IN ('r', 'p')")
echo "all tables: $(calc "$SIZE_ALL / 1048576" | cut -d. -f1) MB, $(calc "$SIZE_ALL / $TOTAL" | cut -d. -f1) B per delivery"

# ---------------------------------------------------------------------------
# 4. Reports: as a dashboard asks them.
# ---------------------------------------------------------------------------
TAX_ID=$(q -c "SELECT tax_id FROM onboarding.account WHERE tax_id IS NOT NULL ORDER BY account_key LIMIT 1")
KEY=$(q -c "SELECT account_key FROM onboarding.account ORDER BY account_key LIMIT 1")
q <<-'EOF'
	CREATE FUNCTION bench.report_ms(query text, OUT first_ms numeric, OUT best_ms numeric, OUT nrows bigint)
	LANGUAGE plpgsql AS $$
	DECLARE
	    t0 timestamptz;
	    ms numeric;
	    r record;
	BEGIN
	    FOR i IN 1 .. 3 LOOP
	        t0 := clock_timestamp();
	        nrows := 0;
	        FOR r IN EXECUTE query LOOP
	            nrows := nrows + 1;
	        END LOOP;
	        ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	        IF i = 1 THEN first_ms := ms; ELSIF best_ms IS NULL OR ms < best_ms THEN best_ms := ms; END IF;
	    END LOOP;
	END
	$$;
EOF
REPORTS=(
	"funnel|500|SELECT * FROM onboarding.funnel"
	"daily|500|SELECT * FROM onboarding.daily"
	"stage_durations|500|SELECT * FROM onboarding.stage_durations"
	"rejection_reasons|500|SELECT * FROM onboarding.rejection_reasons"
	"entity_status, one key|500|SELECT * FROM onboarding.entity_status WHERE entity_key = '$KEY'"
	"pending_documents, count|500|SELECT count(*) FROM onboarding.pending_documents"
	"pending_documents, newest 100|500|SELECT * FROM onboarding.pending_documents ORDER BY since DESC LIMIT 100"
	"anomalies, count|500|SELECT count(*) FROM onboarding.anomalies"
	"anomalies, newest 100|500|SELECT * FROM onboarding.anomalies ORDER BY id DESC LIMIT 100"
	"in_progress_entities, count|500|SELECT count(*) FROM onboarding.in_progress_entities"
	"stuck('7 days'), count|500|SELECT count(*) FROM onboarding.stuck('7 days')"
	"stuck('7 days'), longest idle 100|500|SELECT * FROM onboarding.stuck('7 days') ORDER BY idle DESC LIMIT 100"
	"timeline(one person)|50|SELECT * FROM onboarding.timeline('$TAX_ID')"
)
echo
echo "reports (ms: first run, best of the next two; rows returned):"
declare -a TABLE
for r in "${REPORTS[@]}"; do
	IFS='|' read -r name target sql <<<"$r"
	IFS='|' read -r first best rows < <(q -c "SELECT * FROM bench.report_ms(\$q\$$sql\$q\$)")
	echo "  $name: ${first} ms, ${best} ms; $rows rows"
	TABLE+=("$name|${best} ms|< $target ms|$(met "$best < $target")")
done

# ---------------------------------------------------------------------------
# 5. Rebuilds and verify().
# ---------------------------------------------------------------------------
echo
SUBJECT=$(q -c "SELECT subject FROM onboarding.inbox WHERE provider = 'celcoin' AND subject IS NOT NULL ORDER BY id DESC LIMIT 1")
read -r t _ < <(timed "SELECT onboarding.rebuild(subject => '$SUBJECT');")
echo "rebuild(subject => one Celcoin proposal): ${t} s"
TABLE+=("rebuild(), one subject|${t} s||")
read -r t _ < <(timed "SELECT onboarding.rebuild(since => '$LAST_START');")
echo "rebuild(since => the last chunk's start): ${t} s, $(num "$(calc "$CHUNK / $t")") deliveries/s"
TABLE+=("rebuild(), the last chunk (since)|${t} s||")
log "scale: a whole rebuild_concurrently(), one session delivering every 20 ms"
read -r RT RMAX RMED RN < <(race concurrently "CALL onboarding.rebuild_concurrently();")
echo "rebuild_concurrently(), whole: ${RT} s, $(num "$(calc "$TOTAL / $RT")") deliveries/s; a delivery every 20 ms meanwhile: $RN sent, median ${RMED} ms, longest ${RMAX} ms"
TABLE+=("rebuild_concurrently(), whole|${RT} s||")
TABLE+=("longest wait of a delivery during it|${RMAX} ms|< 1000 ms|$(met "$RMAX < 1000")")

# ---------------------------------------------------------------------------
# 6. Archive: the first month archived, a late delivery into one of its
#    groups, verify() (below) from the checkpoints, then the month restored.
# ---------------------------------------------------------------------------
if [ "$PARTITIONS" = 1 ]; then
	PART=onboarding.inbox_chunk1
	read -r t _ < <(timed "SELECT onboarding.archive_partition('$PART');")
	CKPT=$(q -c "SELECT checkpoints FROM onboarding.archived_partition WHERE partition = '$PART'")
	echo "archive_partition($PART): ${t} s, $(num "$CKPT") state rows checkpointed"
	TABLE+=("archive_partition(), the first month|${t} s, $(num "$CKPT") rows checkpointed||")
	# a body of the archived month, changed so that it is no copy: a late
	# delivery whose group folds from its checkpoints
	read -r t _ < <(timed "INSERT INTO onboarding.inbox (payload)
	                        SELECT payload || '{\"resent\": 1}' FROM $PART
	                         WHERE provider = 'qitech' AND outcome = 'applied' ORDER BY id DESC LIMIT 1;")
	echo "a late delivery into an archived group: $(calc "$t * 1000") ms"
	TABLE+=("a late delivery into an archived group|$(calc "$t * 1000") ms||")
fi
if [ "$VERIFY" = 1 ]; then
	read -r t _ < <(timed "SELECT count(*) FROM onboarding.verify();")
	V=$(q -c "SELECT count(*) FROM onboarding.verify()")
	echo "verify(): ${t} s (and again for its rows), $V differences"
	TABLE+=("verify()|${t} s, $V rows|0 rows|$(met "$V == 0")")
fi
if [ "$PARTITIONS" = 1 ]; then
	read -r t _ < <(timed "SELECT onboarding.restore_partition('$PART');")
	echo "restore_partition($PART): ${t} s"
	TABLE+=("restore_partition(), the first month|${t} s||")
fi

FIRST=${RATE[0]}
LAST=${RATE[$((CHUNKS - 1))]}
echo
echo "| figure | value | target | met? |"
echo "|---|---|---|---|"
echo "| ingest, first chunk | $(num "$FIRST") deliveries/s | | |"
echo "| ingest, last chunk | $(num "$LAST") deliveries/s ($(pct "$LAST" "$FIRST") of the first) | >= 80% of the first | $(met "$LAST >= 0.8 * $FIRST") |"
echo "| the same per second of the backend's CPU | $(num "${CPU_RATE[$((CHUNKS - 1))]}") against $(num "${CPU_RATE[0]}") ($(pct "${CPU_RATE[$((CHUNKS - 1))]}" "${CPU_RATE[0]}")) | | |"
echo "| all tables | $(calc "$SIZE_ALL / $TOTAL" | cut -d. -f1) B per delivery | | |"
for row in "${TABLE[@]}"; do
	IFS='|' read -r a b c d <<<"$row"
	echo "| $a | $b | $c | $d |"
done
echo
echo "$(num "$TOTAL") deliveries in $CHUNKS chunks; $(nproc) CPUs; $(psql -X -At -d "$DB" -c "SELECT version()" | cut -d, -f1);" \
	"fsync $(q -c "SHOW fsync"), shared_buffers $(q -c "SHOW shared_buffers"), max_wal_size $(q -c "SHOW max_wal_size"); people: $PERSONS; partitions made ahead: $PREMAKE; $((SECONDS - START)) s in all"
