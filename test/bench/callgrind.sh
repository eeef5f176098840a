#!/usr/bin/env bash
# test/bench/callgrind.sh — the benchmark in instructions (`BENCH_MODE=callgrind
# make bench`, or `make bench BENCH=callgrind`): repeatable where time is not.
#
# Runs through test/run.sh, like test/bench/run.sh, against its throwaway
# cluster (which only generates the corpus and times the same loads): alone
# (BENCH_MODE=callgrind), or at the end of test/bench/run.sh, which calls it
# after its table unless BENCH_CALLGRIND=0. The measured backend is a
# single-user one, `postgres --single`, on a data directory of its own, run
# under valgrind --tool=callgrind: the backend process itself, nothing
# between it and the COPY. For each of
#
#   plain   the table plain (id bigint identity primary key, payload jsonb)
#   inbox   onboarding.inbox, in a fresh extension
#
# it COPYs BENCH_CALLGRIND_ROWS deliveries of the benchmark corpus (corpus.sql,
# same bytes for both) from a file, and counts the instructions of the COPY
# and of its commit (--toggle-collect=DoCopy, CommitTransactionCommand; the
# backend's start-up and shut-down are not counted). Before the COPY the
# inbox's backend runs onboarding.explain() on one delivery, so that loading
# the library, the rule caches and the relation caches is not counted either.
# Then onboarding.rebuild() of what the inbox's COPY loaded (figure 3), counted
# from the function's start to its commit (--toggle-collect=onboarding_rebuild),
# against the COPY: rebuild() should cost no more per delivery.
#
# It prints the instructions per delivery, in total and by stage (see
# callgrind_stages.py for how instructions are given to stages), and the
# instruction ratio plain/inbox next to the time ratio of the same loads on
# the throwaway cluster (figure 1 of `make bench` measures the same ratio on
# 100,000 deliveries). PostgreSQL's own functions are named only where its
# binary exports them (Debian strips the rest); the extension is built with
# -g, so its functions and files are all known.
#
# Knobs (environment):
#   BENCH_CALLGRIND_ROWS   deliveries loaded under callgrind        (20000)
#   BENCH_CALLGRIND_KEEP   1: keep the callgrind.out files (in the
#                          cluster's directory, see ONBOARDING_KEEP)    (0)
#   BENCH_CALLGRIND_ORDER  the arrival order: corpus (as generated, ~2%
#                          swapped), or a share out of order as in
#                          figure 7 (disorder.sql): 0 = in order, 0.2   (corpus)
#   BENCH_CALLGRIND_HISTORY_PARTITIONS  history's range partitions for
#                          the COPY's rows: N partitions of ROWS/N inbox
#                          ids each (1: the default partition alone, as
#                          installed); the price of a partition      (1)
#   BENCH_CALLGRIND_SINGLE single-row INSERT statements counted after the
#                          COPYs (0: none): figure 2's kind of load, each
#                          statement its own transaction, into a fresh plain
#                          table and a fresh extension; counted: executor
#                          start, run and end, and the commit (not parse and
#                          plan, which pgbench -M prepared skips too)   (2000)
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PGHOST:?run through 'make bench' (test/run.sh exports the cluster)}"
: "${ONBOARDING_WORK:?run through 'make bench'}"

ROWS=${BENCH_CALLGRIND_ROWS:-20000}
SINGLE=${BENCH_CALLGRIND_SINGLE:-2000}
DB=onboarding_bench_cg
BINDIR=$ONBOARDING_BINDIR
CG=$ONBOARDING_WORK/callgrind
START=$SECONDS

log() { printf '== %s\n' "$*" >&2; }
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
run_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$ONBOARDING_RUNAS" -- "$@"; else "$@"; fi; }
calc() { awk "BEGIN { x = ($1); if (x == int(x)) printf \"%d\", x; else printf \"%.6f\", x }"; }
num() {
	awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = ""
		while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) }
		print s n }'
}
pct() { calc "100 * $1 / $2" | awk '{ printf "%.1f%%", $1 }'; }

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
	log "installing valgrind"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 is needed (test/run.sh installs it)" >&2; exit 1; }

mkdir -p "$CG"
[ "$(id -u)" -eq 0 ] && chown "$ONBOARDING_RUNAS" "$CG"
[ "${BENCH_CALLGRIND_KEEP:-0}" = 1 ] || trap 'rm -rf "$CG"' EXIT

# ---------------------------------------------------------------------------
# The corpus: the first ROWS deliveries of corpus.sql, written to a file the
# single-user backend reads (and one delivery for explain()).
# ---------------------------------------------------------------------------
log "corpus: generating $ROWS deliveries"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -v scale="$ROWS" -f test/bench/corpus.sql >/dev/null
ORDER=${BENCH_CALLGRIND_ORDER:-corpus}
if [ "$ORDER" = corpus ]; then
	q -c "COPY (SELECT body FROM bench.corpus ORDER BY n) TO '$CG/corpus.copy'"
else
	log "corpus: reordered, $(q -v share="$ORDER" -f test/bench/disorder.sql | tail -n 1 | cut -d'|' -f2) out of order"
	q -c "COPY (SELECT body FROM bench.reordered ORDER BY n) TO '$CG/corpus.copy'"
fi
q -c "COPY (SELECT body FROM bench.corpus WHERE n = 1) TO '$CG/warm.copy'"
if [ "$SINGLE" -gt 0 ]; then
	# one INSERT per line (single-user mode ends a statement at the newline)
	for t in plain onboarding.inbox; do
		q -c "SELECT format('INSERT INTO $t (payload) VALUES (%L);', body::text)
		        FROM bench.corpus ORDER BY n LIMIT $SINGLE" >"$CG/single.$t.sql"
		chmod 644 "$CG/single.$t.sql"
	done
fi

# ---------------------------------------------------------------------------
# Time, for the record: the same loads on the throwaway cluster (best of 3).
# ---------------------------------------------------------------------------
timed() {
	q <<-EOF | tail -n 1
		SELECT clock_timestamp() AS bench_t0 \gset
		$1
		SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0')::numeric, 3);
	EOF
}
T_PLAIN=0
T_INBOX=0
for i in 1 2 3; do
	log "time: COPY of $ROWS deliveries, run $i of 3"
	q -c "DROP TABLE IF EXISTS plain" \
	  -c "CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb)" -c "CHECKPOINT"
	t=$(timed "COPY plain (payload) FROM '$CG/corpus.copy';")
	T_PLAIN=$(calc "$ROWS / $t > $T_PLAIN ? $ROWS / $t : $T_PLAIN")
	q -c "DROP EXTENSION IF EXISTS onboarding" -c "CREATE EXTENSION onboarding CASCADE" -c "CHECKPOINT"
	t=$(timed "COPY onboarding.inbox (payload) FROM '$CG/corpus.copy';")
	T_INBOX=$(calc "$ROWS / $t > $T_INBOX ? $ROWS / $t : $T_INBOX")
done
psql -X -q -d postgres -c "DROP DATABASE $DB"

# ---------------------------------------------------------------------------
# The single-user backend's data directory, with the cluster's settings.
# ---------------------------------------------------------------------------
log "callgrind: a data directory for the single-user backend"
run_as "$BINDIR/initdb" -D "$CG/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
cat >>"$CG/data/postgresql.conf" <<-EOF
	fsync = off
	huge_pages = off
	max_prepared_transactions = 10
EOF

# single-user backend, commands one per line on stdin
single() {
	run_as "$BINDIR/postgres" --single -D "$CG/data" -c log_min_messages=warning postgres >"$CG/single.log" 2>&1
	if grep -q 'ERROR:' "$CG/single.log"; then cat "$CG/single.log" >&2; exit 1; fi
}

HPARTS=${BENCH_CALLGRIND_HISTORY_PARTITIONS:-1}
history_partitions() {	# one statement a line: HPARTS ranges over the COPY's ids
	local k width=$(( (ROWS + HPARTS - 1) / HPARTS ))
	[ "$HPARTS" -gt 1 ] || return 0
	for ((k = 0; k < HPARTS; k++)); do
		echo "CREATE TABLE onboarding.history_p$k PARTITION OF onboarding.history FOR VALUES FROM ($((k * width))) TO ($(((k + 1) * width)));"
	done
}
{
	printf '%s\n' "CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb);" \
		"CREATE TABLE warm (body jsonb);" "COPY warm FROM '$CG/warm.copy';" "CREATE EXTENSION onboarding CASCADE;"
	history_partitions
	echo "CHECKPOINT;"
} | single
[ "$HPARTS" -le 1 ] || log "history: $HPARTS range partitions of the COPY's inbox ids"

# under_callgrind label toggle...: the single-user backend under callgrind,
# its commands on stdin, counting only inside the named functions; output in
# $CG/callgrind.<label>.out, and the run fails on any ERROR
under_callgrind() {
	local label=$1 toggles=() f
	shift
	for f in "$@"; do toggles+=("--toggle-collect=$f"); done
	run_as valgrind --tool=callgrind --collect-atstart=no "${toggles[@]}" \
		--callgrind-out-file="$CG/callgrind.$label.out" \
		"$BINDIR/postgres" --single -D "$CG/data" -c log_min_messages=warning postgres \
		>"$CG/$label.stdout" 2>"$CG/$label.valgrind" \
		|| { tail -n 20 "$CG/$label.valgrind" "$CG/$label.stdout" >&2; exit 1; }
	if grep -q 'ERROR:' "$CG/$label.stdout" "$CG/$label.valgrind"; then
		grep -m 3 'ERROR:' "$CG/$label.stdout" "$CG/$label.valgrind" >&2; exit 1
	fi
}
# grind label warm-up-sql table: COPY the corpus into table
grind() {
	log "callgrind: COPY of $ROWS deliveries into $3 (a single-user backend under valgrind)"
	printf '%s\n' "$2" "COPY $3 (payload) FROM '$CG/corpus.copy';" \
		| under_callgrind "$1" DoCopy CommitTransactionCommand
}
# grind_rebuild: onboarding.rebuild() of what the inbox's COPY loaded (figure 3)
grind_rebuild() {
	log "callgrind: onboarding.rebuild() of the $ROWS deliveries (a single-user backend under valgrind)"
	printf '%s\n' "SELECT count(*) FROM onboarding.history;" "SELECT onboarding.rebuild();" \
		| under_callgrind rebuild onboarding_rebuild CommitTransactionCommand
}
# grind_single label warm-up-sql table: SINGLE one-row INSERT statements
grind_single() {
	log "callgrind: $SINGLE single-row INSERT statements into $3 (a single-user backend under valgrind)"
	{ printf '%s\n' "$2"; cat "$CG/single.$3.sql"; } \
		| under_callgrind "single-$1" PortalStart PortalRun CommitTransactionCommand
}

t0=$SECONDS
grind plain "SELECT count(*) FROM plain;" plain
grind inbox "SELECT onboarding.explain(body) FROM warm;" onboarding.inbox
OUTCOMES=$(printf '%s\n' "SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY outcome) FROM (SELECT outcome::text, count(*) n FROM onboarding.inbox GROUP BY 1) o;" \
	| run_as "$BINDIR/postgres" --single -D "$CG/data" -c log_min_messages=warning postgres 2>/dev/null \
	| sed -n 's/.*string_agg = "\(.*\)".*/\1/p')
grind_rebuild
if [ "$SINGLE" -gt 0 ]; then
	single <<-EOF
		DROP TABLE plain;
		CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb);
		DROP EXTENSION onboarding;
		CREATE EXTENSION onboarding CASCADE;
		CHECKPOINT;
	EOF
	grind_single plain "SELECT count(*) FROM plain;" plain
	grind_single inbox "SELECT onboarding.explain(body) FROM warm;" onboarding.inbox
fi
T_GRIND=$((SECONDS - t0))

ir() { awk '/^(summary|totals):/ { print $2; exit }' "$CG/callgrind.$1.out"; }
IR_PLAIN=$(ir plain)
IR_INBOX=$(ir inbox)
IR_REBUILD=$(ir rebuild)

echo
echo "onboarding benchmark in instructions (callgrind) — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "backend:  postgres --single under $(valgrind --version) --tool=callgrind; $("$BINDIR/postgres" --version)"
echo "order:    $ORDER"
echo "counted:  COPY of $(num "$ROWS") deliveries from a file, and its commit (start-up, shut-down, cache warm-up not counted)"
echo "inbox outcomes: ${OUTCOMES:-?}"
echo
echo "instructions per delivery, by stage:"
python3 test/bench/callgrind_stages.py "$ROWS" plain="$CG/callgrind.plain.out" inbox="$CG/callgrind.inbox.out" \
	| sed 's/^/    /'
echo
for t in plain inbox; do
	total=$(ir "$t")
	echo "top of callgrind_annotate --inclusive=yes, $t, below 95% of the total (instructions per delivery):"
	callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$CG/callgrind.$t.out" 2>/dev/null \
		| sed -nE 's/^ *([0-9,]+) +\( *[0-9.]+%\) +(.*)$/\1 \2/p' \
		| sed -E 's/ \[[^]]*\]$//; s/ \?\?\?:/ /; s# /[^ ]*/(src/[^/ ]*:)# \1#' \
		| awk -v n="$ROWS" -v total="$total" '
			{ ir = $1; gsub(",", "", ir); ir += 0; $1 = "" }
			ir < 0.95 * total && shown < 15 && !seen[$0]++ { printf "    %10s  %s\n", sprintf("%.0f", ir / n), substr($0, 2); shown++ }'
done
echo "rebuild() of the same $(num "$ROWS") deliveries (figure 3), against their COPY into the inbox,"
echo "instructions per delivery, by stage:"
python3 test/bench/callgrind_stages.py "$ROWS" inbox="$CG/callgrind.inbox.out" rebuild="$CG/callgrind.rebuild.out" \
	| sed 's/^/    /'
echo
if [ "$SINGLE" -gt 0 ]; then
	echo "single-row INSERT statements ($(num "$SINGLE"), each its own transaction; figure 2's load),"
	echo "instructions per statement, by stage (executor and commit; parse and plan not counted):"
	python3 test/bench/callgrind_stages.py "$SINGLE" plain="$CG/callgrind.single-plain.out" \
		inbox="$CG/callgrind.single-inbox.out" | sed 's/^/    /'
	echo
fi
echo
{
	echo "figure|plain|inbox|ratio plain/inbox|target"
	echo "instructions per delivery (callgrind)|$(num "$(calc "$IR_PLAIN / $ROWS")")|$(num "$(calc "$IR_INBOX / $ROWS")")|$(pct "$IR_PLAIN" "$IR_INBOX")|>= 40% (aim 50%), as figure 1"
	echo "batch COPY rows/s (time, best of 3)|$(num "$T_PLAIN")|$(num "$T_INBOX")|$(pct "$T_INBOX" "$T_PLAIN")|>= 40% (aim 50%), figure 1"
	echo "instructions per delivery, rebuild() (inbox: its COPY)|$(num "$(calc "$IR_INBOX / $ROWS")")|$(num "$(calc "$IR_REBUILD / $ROWS")")|$(pct "$IR_INBOX" "$IR_REBUILD")|>= 100%, as figure 3"
	if [ "$SINGLE" -gt 0 ]; then
		IR_SPLAIN=$(ir single-plain)
		IR_SINBOX=$(ir single-inbox)
		echo "instructions per single-row INSERT (callgrind)|$(num "$(calc "$IR_SPLAIN / $SINGLE")")|$(num "$(calc "$IR_SINBOX / $SINGLE")")|$(pct "$IR_SPLAIN" "$IR_SINBOX")|(figure 2: >= 60% in time)"
	fi
} | awk -F'|' '
	{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
	  if (NF > nf) nf = NF }
	END { for (r = 1; r <= NR; r++) { line = ""
	          for (i = 1; i <= nf; i++) line = line sprintf("%-" (w[i] + 2) "s", cell[r, i])
	          sub(/ +$/, "", line); print line } }'
echo
echo "wall time: $((SECONDS - START)) s (of which under valgrind: $T_GRIND s)"
