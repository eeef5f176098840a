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
# id order, i.e. history written in event order) and (3) the outcomes of
# each body (as a multiset; stale counted as applied, since it now means
# "applied at its place, arrived late"), with the run's key suffix and CPF
# put back to placeholders, are identical across all runs: ONE distinct
# result; (4) verify() is empty after the runs; (5) a shuffled copy of the
# inbox — the bodies of (at most 100 of) the runs, each run's in the
# arrival order of another run, the runs interleaved at random, INSERTed
# with their provider, payload, raw and headers into a second database —
# derives the same state, history and outcomes for those runs live, and
# again after rebuild(), with verify() empty.
#
#   ONBOARDING_LONG=1               1,000 random orders per large flow
#   ONBOARDING_CONVERGENCE_SEED     the seed (orders, copy)
#   ONBOARDING_CONVERGENCE_FLOWS    a regular expression: run only those flows
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

if [ "$LONG" = 1 ]; then orders=1000; else orders=100; fi
seed=${ONBOARDING_CONVERGENCE_SEED:-20261128}
only=${ONBOARDING_CONVERGENCE_FLOWS:-.}
dir="$ONBOARDING_WORK/convergence"
tmpl=onboarding_conv_tmpl
db=onboarding_conv
copydb=onboarding_conv_copy
cleanup() {
	rm -rf "$dir"
	for d in $db $copydb $tmpl; do drop_db $d >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
command -v python3 >/dev/null || fail "python3 is needed to generate the flows"
rm -rf "$dir" && mkdir -p "$dir"
export PGOPTIONS="$PGOPTIONS -c TimeZone=UTC"
t0=$(date +%s)

python3 "$RELIABILITY/convergence.py" plan "$RELIABILITY/../fixtures" "$dir" "$seed" "$orders" >"$dir/plan.txt"
fresh_db $tmpl

# what a database derived, one line per row
dump() {	# database suffix
	q -d "$1" -c "SELECT (to_jsonb(t) - 'last_inbox_id' - 'last_seen_id' - 'last_received_at'
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
		>"$dir/$flow.state.$2"
	q -d "$1" -c "SELECT (to_jsonb(h) - 'id' - 'inbox_id')::text FROM onboarding.history h
	               ORDER BY provider, entity, entity_key, id" >"$dir/$flow.history.$2"
	q -d "$1" -c "SELECT headers->>'run', headers->>'b', outcome FROM onboarding.inbox ORDER BY id" \
		>"$dir/$flow.outcomes.$2"
}

failed=""
flows=0
runs_all=0
deliveries_all=0
while read -r flow runs ndeliv mode total; do
	[[ "$flow" =~ $only ]] || continue
	flows=$((flows + 1))
	tf=$(date +%s%N)
	for d in $db $copydb; do
		drop_db $d >/dev/null
		q -d postgres -c "CREATE DATABASE $d TEMPLATE $tmpl"
	done
	if ! psql -X -q -v ON_ERROR_STOP=1 -d $db -f "$dir/$flow.sql" >/dev/null 2>"$dir/$flow.err"; then
		echo "convergence: $flow: a delivery raised an error: $(head -c 400 "$dir/$flow.err")" >&2
		failed="$failed $flow"
		continue
	fi
	td=$(date +%s%N)
	n=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox")
	runs_all=$((runs_all + runs))
	deliveries_all=$((deliveries_all + n))
	dump $db live
	diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")
	if [ "$diffs" != 0 ]; then
		echo "convergence: $flow: verify() found $diffs differences after the runs, e.g.:" >&2
		q -d $db -c "SELECT kind, key, left(live::text, 300), left(rebuilt::text, 300)
		               FROM onboarding.verify() LIMIT 3" >&2 || true
	fi
	# the shuffled copy, live and after rebuild()
	q -d $db -c "SELECT json_build_object('id', id, 'provider', provider, 'payload', payload,
	                                      'raw', raw, 'headers', headers)::text
	               FROM onboarding.inbox ORDER BY id" \
		| python3 "$RELIABILITY/convergence.py" copy "$dir" "$flow" "$seed" >"$dir/$flow.copy.sql"
	if ! psql -X -q -v ON_ERROR_STOP=1 -d $copydb -f "$dir/$flow.copy.sql" >/dev/null 2>"$dir/$flow.err"; then
		echo "convergence: $flow: a delivery of the copy raised an error: $(head -c 400 "$dir/$flow.err")" >&2
		failed="$failed $flow"
		continue
	fi
	dump $copydb copy
	copy_diffs=$(q -d $copydb -c "SELECT count(*) FROM onboarding.verify()")
	replayed=$(q -d $copydb -c "SELECT onboarding.rebuild()")
	dump $copydb rebuilt
	rebuilt_diffs=$(q -d $copydb -c "SELECT count(*) FROM onboarding.verify()")
	te=$(date +%s%N)
	status=0
	python3 "$RELIABILITY/convergence.py" check "$dir" "$flow" || status=$?
	echo "convergence: $flow: $n deliveries in $(((td - tf) / 1000000)) ms; verify() $diffs;" \
		"copy: verify() $copy_diffs, rebuild() replayed $replayed, then verify() $rebuilt_diffs;" \
		"$(((te - tf) / 1000000)) ms in all"
	if [ "$status" != 0 ] || [ "$diffs" != 0 ] || [ "$copy_diffs" != 0 ] || [ "$rebuilt_diffs" != 0 ] \
		|| [ "$replayed" != "$n" ]; then
		failed="$failed $flow"
	fi
done <"$dir/plan.txt"
t1=$(date +%s)

echo "convergence: $flows flows, $runs_all orders, $deliveries_all deliveries (and as many again in the copies)," \
	"$((t1 - t0)) s; failed:${failed:- none}"
[ "$flows" -gt 0 ] || fail "no flow matches '$only'"
[ -z "$failed" ] || fail "flows that do not converge (or whose verify() is not empty):$failed"
