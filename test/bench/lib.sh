#!/usr/bin/env bash
# test/bench/lib.sh — helpers shared by the benchmarks (run.sh: `make bench`;
# scale.sh: `make bench-scale`), sourced by them. Each reads DB (the
# database measured) and the cluster that test/run.sh exported.

log() { printf '== %s\n' "$*" >&2; }

# psql on the benchmark database: unaligned, tuples only, stop at the first error.
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# "wall cpu": seconds the given SQL took, measured by the server around it
# (one session, each statement committed on its own, as a loader would), and
# the CPU seconds the backend spent meanwhile (/proc/self/stat of the backend:
# utime + stime). CPU well below wall means the backend waited (I/O, or
# another process on the machine took the CPU).
TICKS=$(getconf CLK_TCK)
BACKEND_CPU="(SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint
                FROM pg_read_file('/proc/self/stat') s)"
timed() {
	q <<-EOF | tail -n 1
		SELECT clock_timestamp() AS bench_t0, $BACKEND_CPU AS bench_c0 \gset
		$1
		SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0')::numeric, 3) || ' '
		       || round(($BACKEND_CPU - :bench_c0) / $TICKS::numeric, 2);
	EOF
}

# Arithmetic on decimals: calc 'expression' (awk syntax).
calc() { awk "BEGIN { x = ($1); if (x == int(x)) printf \"%d\", x; else printf \"%.6f\", x }"; }
# 1234567.8 -> 1,234,568
num() {
	awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = ""
		while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) }
		print s n }'
}

met() { [ "$(calc "$1")" = 1 ] && echo yes || echo NO; }
pct() { calc "100 * $1 / $2" | awk '{ printf "%.1f%%", $1 }'; }

# A session that delivers a new QI Tech account every 20 ms, printing how
# long each INSERT took ("wait MS"), until the table bench_race_on is empty.
racer() {
	{
		echo "SET client_min_messages = warning;"
		for i in $(seq 1 5000); do
			cat <<-EOF
				SELECT clock_timestamp() AS t0 \gset
				INSERT INTO onboarding.inbox (payload) VALUES (jsonb_build_object(
				    'webhook_type', 'account_request.status_change', 'key', 'race-$1-$i',
				    'status', 'pending_kyc_analysis', 'event_datetime', '2025-03-01 10:00:00'));
				SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric * 1000, 1) AS ms,
				       NOT EXISTS (SELECT FROM bench_race_on) AS stop \gset
				\echo wait :ms
				\if :stop
				\q
				\endif
				SELECT pg_sleep(0.02);
			EOF
		done
	} | psql -X -q -At -d "$DB" 2>/dev/null
}
# race NAME SQL: "seconds longest_ms median_ms deliveries" of a rebuild raced
race() {
	q -c "CREATE TABLE IF NOT EXISTS bench_race_on (x int); TRUNCATE bench_race_on; INSERT INTO bench_race_on VALUES (1)"
	racer "$1" >"$ONBOARDING_WORK/race-$1.out" &
	local pid=$! t c
	sleep 1
	read -r t c < <(timed "$2" 2>/dev/null)
	q -c "TRUNCATE bench_race_on"
	wait "$pid" || true
	awk '/^wait / { if (++n > 5) print $2 }' "$ONBOARDING_WORK/race-$1.out" | sort -n |
		awk -v t="$t" '{ w[++k] = $1 } END { printf "%s %.1f %.1f %d\n", t, w[k], w[int((k + 1) / 2)], k + 5 }'
}
