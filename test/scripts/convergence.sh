#!/usr/bin/env bash
# Convergence (SPEC §1.3, §6): the same deliveries give the same state, the
# same history and the same outcomes, whatever order they arrive in.
#
# test/reliability/convergence.py writes 13 realistic flows, shaped on the
# fixtures (real bodies where there are some, keys varied): QI Tech (the two
# real samples sharing 2022-09-02 22:39:39, a KYC event with the holder's
# name and tax id followed by a rejection; ties in one second; every time
# format), Fitbank (UpdateAccount with .NET seven-digit, rounding and naive
# times; UpdateAccount keyed by the CPF with the .NET sentinel; documents
# without times: sent, validated, resubmitted, and validated, suspended,
# validated again as byte-identical re-sends; a closure disapproved,
# requested again and approved, which closes the account, with
# UpdateAccount Terminated; a person rejected and approved on
# re-application, without times), Celcoin (both checks in flow options 1
# and 2, files, create CONFIRMED moving the proposal to account_created,
# blocks and unblocks; create ERROR then CONFIRMED; a proposal PENDING after
# its background check started; account statuses with a tie), with exact
# re-sends and same-second ties.  Each flow is delivered in every order when
# there are at most 720, else in 100 orders drawn at random (ONBOARDING_LONG=1:
# 1,000), always including the flow's own order, one INSERT per delivery,
# each order ("run") on keys of its own (a key suffix -runNNNN, and a valid
# CPF of its own where the key is a taxpayer number), all runs of a flow in
# one fresh database.
#
# Orders and time-less deliveries: a body without an event time has no
# event order of its own; it takes its place right after the latest event
# of its group (same provider and subject) that arrived before it (arrival
# is the only order there is for it).  So only ADMISSIBLE orders are run:
# each time-less delivery arrives after the timed delivery of its group it
# follows in the flow (the latest-timed one before it), before every timed
# delivery of its group that is later than that, and in its place among the
# time-less deliveries of its group; timed deliveries earlier than its
# anchor, and deliveries of other groups, arrive anywhere.  Flows with times
# only are permuted freely.
#
# Proves, for every flow: (1) the state rows (every column but
# last_inbox_id, last_seen_id and last_received_at: arrival ids and times),
# (2) the history (every column but id and inbox_id; one entity's rows in
# event order: event_at, then id, a row without a time right after the
# latest event before it in id order) and (3) the outcomes of
# each body (as a multiset; stale counted as applied, since it now means
# "applied at its place, arrived late"), with the run's key suffix and CPF
# put back to placeholders, are identical across all runs: ONE distinct
# result (where two bodies of one entity share time and status, SPEC §6
# orders them by a function of the body, which may see the run's keys: runs
# are then compared within the classes the tied field's values make, and
# the shuffled copy shows, run by run, that the order of one run's bodies
# does not matter); (4) every run ends where the provider meant (the status of the
# flow's main entities, convergence.py ENDS: e.g. the retried Celcoin
# creation ends active / account_created, the re-sent validation ends
# validated); verify() is empty after the runs; (5) a shuffled copy of the
# inbox — the bodies of (at most 100 of) the runs, each run's in the
# arrival order of another run, the runs interleaved at random, INSERTed
# with their provider, payload, raw and headers into a second database —
# derives the same state, history and outcomes for those runs live, and
# again after rebuild(), with verify() empty; (6) in_progress_entities and
# pending_documents, which decide with joins, list the rows their
# definitions give (in_progress() and document_settled() asked of every
# row: reports_recompute.sql), in the runs' database and in the rebuilt copy.
#
# Each flow runs three times, in three layouts of the inbox: `default` (the
# default partition alone, as after CREATE EXTENSION), `months` (36
# monthly range partitions, made by pg_partman where Debian's is version 5
# (17, 18; by hand on 15), every delivery received six hours after the one
# before it from 2030 on, so that a run's deliveries, its late ones and its
# duplicates lie in several partitions, and the later ones in the default
# partition again; and history in 30 partitions of ten deliveries each by
# inbox_id, made the same way, so that an entity's rows lie in several and
# the later ones in history's default partition) and `archive` (120
# monthly partitions, a delivery a day:
# before each delivery every month that is over but the last is archived
# with archive_partition(), so that about a third of the runs are cut by an
# archive, their later deliveries, late ones included, folded after the
# checkpoint, and the checkpoints cover deliveries still in the inbox too; verify() must then be empty, and after restore_partition() of
# every month, oldest first, each run must derive what every other run
# does, as in the other layouts: the full replay).
#
#   ONBOARDING_LONG=1               1,000 random orders per large flow
#   ONBOARDING_CONVERGENCE_LAYOUTS  the layouts (default: "default months archive")
#   ONBOARDING_CONVERGENCE_SEED     the seed (orders, copy)
#   ONBOARDING_CONVERGENCE_FLOWS    a regular expression: run only those flows
#   ONBOARDING_CONVERGENCE_JOBS     flows run at a time, each in databases of its own (2)
#   ONBOARDING_CONVERGENCE_CONTROL=1  the harness's own check: 20 runs of each flow, all
#                                   in the flow's own order; one distinct result per flow
#                                   on any engine whose state does not depend on ids or
#                                   times of arrival (where it ends may still be wrong)
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

if [ "$LONG" = 1 ]; then orders=1000; else orders=100; fi
seed=${ONBOARDING_CONVERGENCE_SEED:-20261128}
only=${ONBOARDING_CONVERGENCE_FLOWS:-.}
dir="$ONBOARDING_WORK/convergence"
jobs=${ONBOARDING_CONVERGENCE_JOBS:-2}
tmpl=onboarding_conv_tmpl
cleanup() {
	local f
	for f in "$dir"/*.dbs; do
		[ -e "$f" ] || continue
		for d in $(cat "$f"); do drop_db "$d" >/dev/null 2>&1 || true; done
	done
	drop_db $tmpl >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
command -v python3 >/dev/null || fail "python3 is needed to generate the flows"
rm -rf "$dir" && mkdir -p "$dir"
export PGOPTIONS="$PGOPTIONS -c TimeZone=UTC"
t0=$(date +%s)

python3 "$RELIABILITY/convergence.py" plan "$RELIABILITY/../fixtures" "$dir" "$seed" "$orders" >"$dir/plan.txt"
layouts=${ONBOARDING_CONVERGENCE_LAYOUTS:-default months archive}

# the template database of a layout
make_template() {	# layout
	fresh_db $tmpl
	[ "$1" = archive ] && { make_archive_template; return 0; }
	[ "$1" = months ] || return 0
	# the months made by pg_partman where Debian's is version 5 (17, 18);
	# on 15, whose pg_partman 4 insists on a default partition of its own
	# (the inbox has one), by hand, as pg_partman names them
	q -d $tmpl -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman" \
		-c "DO \$\$ BEGIN
		     IF (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') >= '5' THEN
		       PERFORM partman.create_parent('onboarding.inbox', 'received_at', '1 month',
		                                     p_start_partition := '2030-01-01', p_premake := 1,
		                                     p_default_table := false);
		       PERFORM partman.create_partition_time('onboarding.inbox',
		                 ARRAY(SELECT timestamptz '2030-01-01 00:00+00' + m * interval '1 month'
		                         FROM generate_series(1, 35) m));
		     ELSE
		       FOR m IN 0..35 LOOP
		         EXECUTE format('CREATE TABLE onboarding.inbox_p%s PARTITION OF onboarding.inbox
		                         FOR VALUES FROM (%L) TO (%L)',
		                        to_char(timestamptz '2030-01-01 00:00+00' + m * interval '1 month', 'YYYYMMDD'),
		                        timestamptz '2030-01-01 00:00+00' + m * interval '1 month',
		                        timestamptz '2030-01-01 00:00+00' + (m + 1) * interval '1 month');
		       END LOOP;
		     END IF;
		   END \$\$" \
		-c "DO \$\$ BEGIN
		     IF (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') >= '5' THEN
		       PERFORM partman.create_parent('onboarding.history', 'inbox_id', '10',
		                                     p_start_partition := '0', p_premake := 1,
		                                     p_default_table := false);
		       PERFORM partman.create_partition_id('onboarding.history',
		                 ARRAY(SELECT 10 * k FROM generate_series(1, 29) k));
		     ELSE
		       FOR k IN 0..29 LOOP
		         EXECUTE format('CREATE TABLE onboarding.history_p%s PARTITION OF onboarding.history
		                         FOR VALUES FROM (%s) TO (%s)', 10 * k, 10 * k, 10 * (k + 1));
		       END LOOP;
		     END IF;
		   END \$\$" \
		-c "CREATE SEQUENCE public.arrival" \
		-c "ALTER TABLE onboarding.inbox ALTER COLUMN received_at
		      SET DEFAULT timestamptz '2030-01-01 00:00+00' + nextval('public.arrival') * interval '6 hours'" >/dev/null
}

# The archive layout: a month a partition, a delivery a day; archive_due()
# archives, before the next delivery, every month over but the last (whose
# deliveries the checkpoints then cover while they are still in the inbox),
# restore_all() attaches every archived month again, oldest first.
make_archive_template() {
	q -d $tmpl -c "DO \$\$ BEGIN
	                 FOR m IN 0..119 LOOP
	                   EXECUTE format('CREATE TABLE onboarding.inbox_a%s PARTITION OF onboarding.inbox
	                                   FOR VALUES FROM (%L) TO (%L)', m,
	                                  timestamptz '2030-01-01 00:00+00' + m * interval '1 month',
	                                  timestamptz '2030-01-01 00:00+00' + (m + 1) * interval '1 month');
	                 END LOOP;
	               END \$\$" \
		-c "CREATE SEQUENCE public.arrival" \
		-c "ALTER TABLE onboarding.inbox ALTER COLUMN received_at
		      SET DEFAULT timestamptz '2030-01-01 00:00+00' + nextval('public.arrival') * interval '1 day'" \
		-c "CREATE FUNCTION public.archive_due() RETURNS int LANGUAGE plpgsql AS \$\$
		    DECLARE
		      next timestamptz := (SELECT timestamptz '2030-01-01 00:00+00'
		                                  + (last_value + CASE WHEN is_called THEN 1 ELSE 0 END) * interval '1 day'
		                             FROM public.arrival);
		      p regclass;
		      n int := 0;
		    BEGIN
		      FOR p IN SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		                WHERE i.inhparent = 'onboarding.inbox'::regclass
		                  AND timestamptz '2030-01-01 00:00+00'
		                      + (substring(c.relname from '^inbox_a([0-9]+)\$')::int + 2) * interval '1 month' <= next
		                ORDER BY c.oid LOOP
		        PERFORM onboarding.archive_partition(p);
		        n := n + 1;
		      END LOOP;
		      RETURN n;
		    END \$\$" \
		-c "CREATE FUNCTION public.restore_all() RETURNS bigint LANGUAGE plpgsql AS \$\$
		    DECLARE a record; n bigint := 0;
		    BEGIN
		      FOR a IN SELECT partition FROM onboarding.archived_partition ORDER BY archived_at, partition LOOP
		        n := n + onboarding.restore_partition(a.partition::regclass);
		      END LOOP;
		      RETURN n;
		    END \$\$" >/dev/null
}

# What a database derived, one line per row: the state rows without the
# arrival columns; history without id and inbox_id (a row written for a
# delivery without a time shows 'received_at' where its event_at is the time
# the delivery was received: arrival, not event); the outcome of each body.
dump() {	# flow database suffix
	q -d "$2" -c "SELECT (to_jsonb(t) - 'last_inbox_id' - 'last_seen_id' - 'last_received_at'
	                      || jsonb_build_object('table', 'account'))::text FROM onboarding.account t
	              UNION ALL
	              SELECT (to_jsonb(t) - 'last_inbox_id' - 'last_seen_id' - 'last_received_at'
	                      || jsonb_build_object('table', 'proposal'))::text FROM onboarding.proposal t
	              UNION ALL
	              SELECT (to_jsonb(t) - 'last_inbox_id' - 'last_seen_id' - 'last_received_at'
	                      || jsonb_build_object('table', 'document'))::text FROM onboarding.document t
	              UNION ALL
	              SELECT (to_jsonb(t) - 'last_inbox_id' - 'last_seen_id' - 'last_received_at'
	                      || jsonb_build_object('table', 'closure'))::text FROM onboarding.closure t" \
		>"$dir/$1.state.$3"
	q -d "$2" -c "SELECT (to_jsonb(h) - 'id' - 'inbox_id' - 'place'
	                      || CASE WHEN i.event_at IS NULL AND h.event_at = i.received_at
	                              THEN '{\"event_at\": \"received_at\"}'::jsonb ELSE '{}' END)::text
	                 FROM (SELECT h.*, coalesce(h.event_at, max(h.event_at) OVER (PARTITION BY
	                              h.provider, h.entity, h.entity_key ORDER BY h.id)) AS place
	                         FROM onboarding.history h) h LEFT JOIN onboarding.inbox i ON i.id = h.inbox_id
	                ORDER BY h.provider, h.entity, h.entity_key, h.place, h.id" >"$dir/$1.history.$3"
	q -d "$2" -c "SELECT headers->>'run', headers->>'b', outcome FROM onboarding.inbox ORDER BY id" \
		>"$dir/$1.outcomes.$3"
}

# One flow: its runs in a fresh database, then the shuffled copy in
# another.  Writes its report to $dir/<flow>.<layout>.log and its verdict (ok or
# failed) to $dir/<flow>.<layout>.verdict.
run_flow() {	# flow
	local flow=$1 db=onboarding_conv_$1 copydb=onboarding_conv_$1_copy
	local tf td te n nc diffs copy_diffs replayed rebuilt_diffs status=0
	echo "$db $copydb" >"$dir/$flow.dbs"
	tf=$(date +%s%N)
	for d in $db $copydb; do
		drop_db $d >/dev/null
		q -d postgres -c "CREATE DATABASE $d TEMPLATE $tmpl"
	done
	local sql="$dir/$flow.sql" archived="" archive_diffs=0
	if [ "$LAYOUT" = archive ]; then	# before each delivery, archive the months that are over
		sql="$dir/$flow.archive.sql"
		sed 's/^INSERT /SELECT public.archive_due();\nINSERT /' "$dir/$flow.sql" >"$sql"
	fi
	if ! psql -X -q -v ON_ERROR_STOP=1 -d $db -f "$sql" >/dev/null 2>"$dir/$flow.err"; then
		echo "convergence ($LAYOUT): $flow: a delivery raised an error: $(head -c 400 "$dir/$flow.err")"
		echo failed >"$dir/$flow.$LAYOUT.verdict"
		return
	fi
	if [ "$LAYOUT" = archive ]; then	# verify() from the checkpoints, then every month back
		archived=$(q -d $db -c "SELECT count(*) || ' months archived (' || coalesce(sum(checkpoints), 0)
		                               || ' rows checkpointed), '
		                          FROM onboarding.archived_partition")
		archive_diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")
		if [ "$archive_diffs" != 0 ]; then
			echo "convergence ($LAYOUT): $flow: verify() found $archive_diffs differences while archived, e.g.:"
			q -d $db -c "SELECT kind, key, left(live::text, 300), left(rebuilt::text, 300)
			               FROM onboarding.verify() LIMIT 3" || true
		fi
		archived="$archived verify() $archive_diffs then, restored reading $(q -d $db -c "SELECT public.restore_all()"); "
	fi
	td=$(date +%s%N)
	n=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox")
	dump "$flow" $db live
	diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")
	if [ "$diffs" != 0 ]; then
		echo "convergence ($LAYOUT): $flow: verify() found $diffs differences after the runs, e.g.:"
		q -d $db -c "SELECT kind, key, left(live::text, 300), left(rebuilt::text, 300)
		               FROM onboarding.verify() LIMIT 3" || true
	fi
	# the in-progress reports against their definitions
	IFS='|' read -r report_diffs in_progress pending < <(q -d $db -f "$RELIABILITY/reports_recompute.sql")
	[ "$report_diffs" = 0 ] \
		|| echo "convergence ($LAYOUT): $flow: in_progress_entities or pending_documents differ from their definitions in $report_diffs rows"
	# the shuffled copy, live and after rebuild()
	q -d $db -c "SELECT json_build_object('id', id, 'provider', provider, 'payload', payload,
	                                      'raw', raw, 'headers', headers)::text
	               FROM onboarding.inbox ORDER BY id" \
		| python3 "$RELIABILITY/convergence.py" copy "$dir" "$flow" "$seed" >"$dir/$flow.copy.sql"
	if ! psql -X -q -v ON_ERROR_STOP=1 -d $copydb -f "$dir/$flow.copy.sql" >/dev/null 2>"$dir/$flow.err"; then
		echo "convergence ($LAYOUT): $flow: a delivery of the copy raised an error: $(head -c 400 "$dir/$flow.err")"
		echo failed >"$dir/$flow.$LAYOUT.verdict"
		return
	fi
	nc=$(q -d $copydb -c "SELECT count(*) FROM onboarding.inbox")
	dump "$flow" $copydb copy
	copy_diffs=$(q -d $copydb -c "SELECT count(*) FROM onboarding.verify()")
	replayed=$(q -d $copydb -c "SELECT onboarding.rebuild()")
	dump "$flow" $copydb rebuilt
	rebuilt_diffs=$(q -d $copydb -c "SELECT count(*) FROM onboarding.verify()")
	IFS='|' read -r copy_report_diffs _ < <(q -d $copydb -f "$RELIABILITY/reports_recompute.sql")
	report_diffs=$((report_diffs + copy_report_diffs))
	te=$(date +%s%N)
	python3 "$RELIABILITY/convergence.py" check "$dir" "$flow" || status=$?
	echo "convergence ($LAYOUT): $flow: $n deliveries in $(((td - tf) / 1000000)) ms, ${archived}verify() $diffs;" \
		"copy of $nc: verify() $copy_diffs, rebuild() replayed $replayed, then verify() $rebuilt_diffs;" \
		"reports: $in_progress in progress, $pending pending documents, $report_diffs rows unlike their definitions;" \
		"$(((te - tf) / 1000000)) ms in all"
	if [ "$status" != 0 ] || [ "$diffs" != 0 ] || [ "$archive_diffs" != 0 ] || [ "$copy_diffs" != 0 ] || [ "$rebuilt_diffs" != 0 ] \
		|| [ "$replayed" != "$nc" ] || [ "$report_diffs" != 0 ]; then
		echo failed >"$dir/$flow.$LAYOUT.verdict"
	else
		echo ok >"$dir/$flow.$LAYOUT.verdict"
	fi
	for d in $db $copydb; do drop_db $d >/dev/null; done
}

# the flows, $jobs at a time (each in databases of its own), in each
# layout; reports in plan order
failed=""
for LAYOUT in $layouts; do
	make_template "$LAYOUT"
	selected=()
	while read -r flow runs ndeliv mode total; do
		[[ "$flow" =~ $only ]] || continue
		selected+=("$flow")
		run_flow "$flow" >"$dir/$flow.$LAYOUT.log" 2>&1 &
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
	done <"$dir/plan.txt"
	wait
	runs_all=0
	for flow in "${selected[@]}"; do
		cat "$dir/$flow.$LAYOUT.log"
		[ "$(cat "$dir/$flow.$LAYOUT.verdict" 2>/dev/null)" = ok ] || failed="$failed $flow ($LAYOUT)"
		runs_all=$((runs_all + $(awk -v f="$flow" '$1 == f { print $2 }' "$dir/plan.txt")))
	done
done
t1=$(date +%s)
deliveries_all=$(awk -v only="$only" '$1 ~ only { n += $2 * $3 } END { print n + 0 }' "$dir/plan.txt")
echo "convergence: ${#selected[@]} flows, $runs_all orders, $deliveries_all deliveries (and up to 100 runs" \
	"of each again in the copies), in each layout ($layouts), $jobs at a time, $((t1 - t0)) s;" \
	"failed:${failed:- none}"
[ "${#selected[@]}" -gt 0 ] || fail "no flow matches '$only'"
[ -z "$failed" ] || fail "flows that do not converge (or whose verify() is not empty):$failed"
