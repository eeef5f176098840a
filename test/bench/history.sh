#!/usr/bin/env bash
# test/bench/history.sh — what a delivery costs as its entity's history grows
# (issue 24; `make bench` runs it as section g, `make bench BENCH=history`
# alone).
#
# One Celcoin account receives N account-status deliveries (blocks and
# unblocks, a minute apart, each a body of its own), one INSERT per
# transaction, in four arrival orders:
#
#   inorder   oldest first
#   newest    newest first: every delivery is late, its place the first
#   random    a random permutation (seeded): most deliveries late
#   resent    the N in order, then the same N bodies again (duplicates)
#
# For N in BENCH_HISTORY_SIZES (100 1,000 10,000) it measures, for the last
# deliveries of each sequence (so that the entity already holds N minus
# them):
#
#   time          the server's time per delivery of the last
#                 min(N, BENCH_HISTORY_TIMED) deliveries, one session on the
#                 throwaway cluster, its caches warmed by another entity's
#                 delivery first (best of BENCH_REPEAT)
#   instructions  per delivery of the last min(N, BENCH_HISTORY_COUNTED),
#                 counted by callgrind in a single-user backend that replayed
#                 the rest of the sequence natively (executor run and finish,
#                 where the inbox's triggers run, and the commit), unless
#                 BENCH_CALLGRIND=0
#
# and prints a table: per order, the figures at each N and the ratio of the
# largest N to the smallest; the target (SPEC §10) is a ratio of at most 2
# for every order, in time and in instructions. verify() must be empty
# after each sequence.
#
# Knobs (environment):
#   BENCH_HISTORY_SIZES     the history lengths            (100 1000 10000)
#   BENCH_HISTORY_TIMED     deliveries timed at the end of each sequence (1000)
#   BENCH_HISTORY_COUNTED   deliveries counted by callgrind  (100)
#   BENCH_REPEAT            runs of each timed sequence (best kept)  (2)
#   BENCH_CALLGRIND         0: time only                     (1)
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PGHOST:?run through 'make bench' (test/run.sh exports the cluster)}"
: "${ONBOARDING_WORK:?run through 'make bench'}"

SIZES=${BENCH_HISTORY_SIZES:-100 1000 10000}
TIMED=${BENCH_HISTORY_TIMED:-1000}
COUNTED=${BENCH_HISTORY_COUNTED:-100}
REPEAT=${BENCH_REPEAT:-2}
CALLGRIND=${BENCH_CALLGRIND:-1}
ORDERS="inorder newest random resent"
DB=onboarding_bench_history
BINDIR=${ONBOARDING_BINDIR:-$(pg_config --bindir)}
HW=$ONBOARDING_WORK/history
START=$SECONDS

log() { printf '== %s\n' "$*" >&2; }
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
run_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$ONBOARDING_RUNAS" -- "$@"; else "$@"; fi; }
calc() { awk "BEGIN { x = ($1); if (x == int(x)) printf \"%d\", x; else printf \"%.6f\", x }"; }
num() {
	awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = ""
		while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) }
		print s n }'
}

mkdir -p "$HW"
[ "$(id -u)" -eq 0 ] && chown "$ONBOARDING_RUNAS" "$HW"
trap 'rm -rf "$HW"' EXIT

fresh_db() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	q -c "CREATE EXTENSION onboarding CASCADE" >/dev/null
}

# sequence N order: the INSERT statements of one sequence, one per line
# (single-user mode ends a statement at the newline), in arrival order
sequence() {
	q -c "WITH b AS (
	        SELECT g, format('INSERT INTO onboarding.inbox (payload) VALUES (%L);', jsonb_build_object(
	                 'entity', 'account-status',
	                 'createTimestamp', to_char(timestamp '2026-01-01' + g * interval '1 minute',
	                                            'YYYY-MM-DD\"T\"HH24:MI:SS'),
	                 'status', CASE WHEN g % 2 = 1 THEN 'BLOQUEIO-JUDICIAL' ELSE 'DESBLOQUEIO-JUDICIAL' END,
	                 'body', jsonb_build_object('account', '300541273', 'clientCode', 'CLI-history',
	                                            'documentNumber', '381.083.807-15',
	                                            'onboardingId', 'history-acct', 'reason', 'r' || g),
	                 'webhookId', 'history-' || g)::text) AS stmt
	          FROM generate_series(1, $1) g)
	      SELECT stmt FROM (
	        SELECT stmt, CASE '$2' WHEN 'newest' THEN -g WHEN 'random' THEN hashint4(g * 7919) ELSE g END AS k,
	               0 AS pass FROM b
	        UNION ALL
	        SELECT stmt, g, 1 FROM b WHERE '$2' = 'resent') s
	      ORDER BY pass, k"
}
# another entity's delivery, to warm a session's caches first
WARM="INSERT INTO onboarding.inbox (payload) VALUES ('{\"entity\": \"account-status\", \"createTimestamp\": \"2025-01-01T00:00:00\", \"status\": \"ATIVO\", \"body\": {\"onboardingId\": \"history-warm\"}}');"

fresh_db
declare -A MS INS
for n in $SIZES; do
	for o in $ORDERS; do
		sequence "$n" "$o" >"$HW/seq.sql"
		total=$(wc -l <"$HW/seq.sql")
		t=$(( n < TIMED ? n : TIMED ))
		head -n $((total - t)) "$HW/seq.sql" >"$HW/head.sql"
		tail -n "$t" "$HW/seq.sql" >"$HW/tail.sql"
		best=
		for _ in $(seq 1 "$REPEAT"); do
			fresh_db
			q -f "$HW/head.sql" >/dev/null
			ms=$( { echo "$WARM"; echo "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset";
			        cat "$HW/tail.sql";
			        echo "SELECT 1000 * (extract(epoch FROM clock_timestamp()) - :t0) / $t;"; } | q | tail -n 1)
			[ -z "$best" ] || [ "$(calc "$ms < $best")" = 1 ] && best=$ms
		done
		diffs=$(q -c "SELECT count(*) FROM onboarding.verify()")
		[ "$diffs" = 0 ] || { echo "history: N=$n $o: verify() found $diffs differences" >&2; exit 1; }
		MS[$n,$o]=$best
		log "history: N=$n $o: $(printf '%.3f' "$best") ms per delivery over the last $t (verify() 0)"
	done
done

if [ "$CALLGRIND" = 1 ]; then
	command -v valgrind >/dev/null || { echo "valgrind is needed (BENCH_CALLGRIND=0 to skip)" >&2; exit 1; }
	run_as "$BINDIR/initdb" -D "$HW/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
	printf 'fsync = off\nhuge_pages = off\n' >>"$HW/data/postgresql.conf"
	single() {
		run_as "$BINDIR/postgres" --single -D "$HW/data" -c log_min_messages=warning postgres >"$HW/single.log" 2>&1
		if grep -q 'ERROR:' "$HW/single.log"; then grep -m 3 'ERROR:' "$HW/single.log" >&2; exit 1; fi
	}
	for n in $SIZES; do
		for o in $ORDERS; do
			sequence "$n" "$o" >"$HW/seq.sql"
			total=$(wc -l <"$HW/seq.sql")
			c=$(( n < COUNTED ? n : COUNTED ))
			head -n $((total - c)) "$HW/seq.sql" >"$HW/head.sql"
			tail -n "$c" "$HW/seq.sql" >"$HW/tail.sql"
			chmod 644 "$HW"/*.sql
			{ echo "DROP EXTENSION IF EXISTS onboarding CASCADE;"; echo "CREATE EXTENSION onboarding CASCADE;";
			  cat "$HW/head.sql"; } | single
			{ echo "$WARM"; cat "$HW/tail.sql"; } \
				| run_as valgrind --tool=callgrind --collect-atstart=no \
					--toggle-collect=standard_ExecutorRun --toggle-collect=standard_ExecutorFinish \
					--toggle-collect=CommitTransactionCommand \
					--callgrind-out-file="$HW/callgrind.out" \
					"$BINDIR/postgres" --single -D "$HW/data" -c log_min_messages=warning postgres \
					>"$HW/cg.stdout" 2>"$HW/cg.valgrind" \
				|| { tail -n 20 "$HW/cg.valgrind" >&2; exit 1; }
			! grep -q 'ERROR:' "$HW/cg.stdout" || { grep -m 3 'ERROR:' "$HW/cg.stdout" >&2; exit 1; }
			ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$HW/callgrind.out")
			# (the warm-up delivery is counted too: one of c + 1)
			INS[$n,$o]=$(calc "$ir / ($c + 1)")
			log "history: N=$n $o: $(num "${INS[$n,$o]}") instructions per delivery over the last $c"
			rm -f "$HW/callgrind.out"
		done
	done
fi

first=${SIZES%% *}
last=${SIZES##* }
echo
echo "g. history length: one Celcoin account, N account-status deliveries, one INSERT per transaction;"
echo "   per delivery, over the last deliveries of each sequence; ratio = N=$(num "$last") / N=$(num "$first") (target <= 2)"
{
	printf 'order'
	for n in $SIZES; do printf '|ms N=%s' "$(num "$n")"; done
	printf '|ratio'
	if [ "$CALLGRIND" = 1 ]; then
		for n in $SIZES; do printf '|instr. N=%s' "$(num "$n")"; done
		printf '|ratio'
	fi
	printf '|met?\n'
	for o in $ORDERS; do
		rt=$(calc "${MS[$last,$o]} / ${MS[$first,$o]}")
		met=$(awk -v r="$rt" 'BEGIN { print (r <= 2 ? "yes" : "NO") }')
		printf '%s' "$o"
		for n in $SIZES; do printf '|%.3f' "${MS[$n,$o]}"; done
		printf '|%.2f' "$rt"
		if [ "$CALLGRIND" = 1 ]; then
			ri=$(calc "${INS[$last,$o]} / ${INS[$first,$o]}")
			for n in $SIZES; do printf '|%s' "$(num "${INS[$n,$o]}")"; done
			printf '|%.2f' "$ri"
			met=$(awk -v a="$rt" -v b="$ri" 'BEGIN { print (a <= 2 && b <= 2 ? "yes" : "NO") }')
		fi
		printf '|%s\n' "$met"
	done
} | column -t -s '|' | sed 's/^/   /'
echo "   ($((SECONDS - START)) s)"
