#!/usr/bin/env bash
# Crash: two clients deliver corpus bodies one per transaction (autocommit),
# through onboarding.ingest and ingest_text, and log every delivery they send
# and every one the server acknowledged (psql prints a result only once the
# server has committed it).  Mid-stream the whole server is killed with
# SIGKILL — the postmaster and all its processes at once, as a power cut
# would — with fsync on, then restarted (crash recovery replays the WAL).
# Proves: every acknowledged delivery is in the inbox under the id it was
# acknowledged with, nothing that was not sent is there, at most the
# deliveries in flight at the kill were stored unacknowledged, the providers'
# re-deliveries after the restart are taken, and onboarding.verify() is empty.
#
#   ONBOARDING_LONG=1   kill after 20,000 acknowledgements (default 3,000)
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_crash
clients=2
if [ "$LONG" = 1 ]; then kill_after=20000 scale=400; else kill_after=3000 scale=100; fi
dir="$ONBOARDING_WORK/crash"

cleanup() {
	for pid in ${client_pids:-}; do kill "$pid" 2>/dev/null || true; done
	server_is_up || server_start || true
	q -d postgres -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
	drop_db $db >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$dir" && mkdir -p "$dir"
fresh_db $db
q -d $db -v scale="$scale" -v seed=0.3 -f "$RELIABILITY/corpus.sql"
bodies=$(q -d $db -c "SELECT count(*) FROM public.corpus")
# one delivery: body k of the corpus, tagged with k in its headers
q -d $db <<'SQL'
CREATE FUNCTION public.deliver(k int) RETURNS text LANGUAGE sql AS $$
    SELECT 'ack ' || k || ' ' ||
           CASE WHEN k % 4 = 0
                THEN (onboarding.ingest_text(c.raw, NULL, jsonb_build_object('delivery', k))).id
                ELSE (onboarding.ingest(c.body, NULL, jsonb_build_object('delivery', k))).id END
      FROM public.corpus c WHERE c.n = k
$$;
SQL

# the real thing: every commit flushed to disk
q -d postgres -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(q -d $db -c 'SHOW fsync')" = on ] && break; sleep 0.1; done
[ "$(q -d $db -c 'SHOW fsync')" = on ] || fail "fsync could not be turned on"
[ "$(q -d $db -c 'SHOW synchronous_commit')" = on ] || fail "synchronous_commit is not on"

# client c sends bodies c, c + clients, c + 2 clients, ... each as its own transaction
client_pids=
for c in $(seq 1 $clients); do
	awk -v c="$c" -v step=$clients -v n="$bodies" \
		'BEGIN { for (k = c; k <= n; k += step) printf "\\echo send %d\nSELECT public.deliver(%d);\n", k, k }' \
		>"$dir/client$c.sql"
	psql -X -q -At -d $db -f "$dir/client$c.sql" >"$dir/client$c.log" 2>"$dir/client$c.err" &
	client_pids="$client_pids $!"
done

acked() { cat "$dir"/client*.log | grep -c '^ack ' || true; }
for _ in $(seq 600); do [ "$(acked)" -ge "$kill_after" ] && break; sleep 0.1; done
[ "$(acked)" -ge "$kill_after" ] || fail "only $(acked) acknowledgements after 60 s"

# the crash: SIGKILL to the postmaster and every process it started, at once
mark=$(log_mark)
postmaster=$(head -1 "$ONBOARDING_PGDATA/postmaster.pid")
children=$(ps -o pid= --ppid "$postmaster" | tr -d ' ' | tr '\n' ' ')
killed_at=$(date +%s)
kill -KILL "$postmaster" $children
midstream=0
for pid in $client_pids; do wait "$pid" || midstream=$((midstream + 1)); done
client_pids=
[ "$midstream" -eq $clients ] || fail "a client finished before the kill: the crash was not mid-stream"
for pid in $postmaster $children; do
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
server_start
recovery=$(($(date +%s) - killed_at))
recovered=$(log_since "$mark" | grep -c 'automatic recovery in progress' || true)
[ "$recovered" -ge 1 ] || fail "the server did not go through crash recovery"

# what the clients saw: deliveries sent, and acknowledged with their inbox id
cat "$dir"/client*.log | sed -n 's/^send //p' | sort -n >"$dir/sent"
cat "$dir"/client*.log | sed -n 's/^ack //p' | sort -n >"$dir/acked"
sent=$(wc -l <"$dir/sent")
ack=$(wc -l <"$dir/acked")

# what the database kept
q -d $db <<SQL
CREATE TABLE public.sent (k int);
CREATE TABLE public.acked (k int, id bigint);
\copy public.sent FROM '$dir/sent'
\copy public.acked FROM '$dir/acked' WITH (DELIMITER ' ')
SQL
read -r stored lost wrong_id unsent twice unacked <<<"$(q -F ' ' -d $db <<'SQL'
WITH stored AS (SELECT id, (headers->>'delivery')::int AS k FROM onboarding.inbox WHERE headers ? 'delivery')
SELECT (SELECT count(*) FROM stored),
       (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT FROM stored s WHERE s.k = a.k)),
       (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT FROM stored s WHERE s.k = a.k AND s.id = a.id)),
       (SELECT count(*) FROM stored s WHERE NOT EXISTS (SELECT FROM sent t WHERE t.k = s.k)),
       (SELECT count(*) - count(DISTINCT k) FROM stored),
       (SELECT count(*) FROM stored s WHERE NOT EXISTS (SELECT FROM acked a WHERE a.k = s.k));
SQL
)"

# the providers deliver again what was never acknowledged (at-least-once)
redelivered=$(q -d $db -c "SELECT count(public.deliver(k)) FROM public.sent
                            WHERE k NOT IN (SELECT k FROM public.acked)")
diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")

echo "crash: $sent deliveries sent, $ack acknowledged, $stored stored before the kill" \
	"($unacked stored unacknowledged, in flight); back up ${recovery}s after the SIGKILL"
echo "crash: lost $lost, under another id $wrong_id, never sent $unsent, stored twice $twice;" \
	"$redelivered re-delivered after restart; verify() differences: $diffs"

[ "$lost" -eq 0 ] || fail "$lost acknowledged deliveries are not in the inbox"
[ "$wrong_id" -eq 0 ] || fail "$wrong_id acknowledged deliveries are stored under another id"
[ "$unsent" -eq 0 ] || fail "$unsent stored deliveries were never sent"
[ "$twice" -eq 0 ] || fail "$twice deliveries stored twice"
[ "$unacked" -le $clients ] || fail "$unacked deliveries stored but not acknowledged (at most $clients were in flight)"
[ "$stored" -eq $((ack + unacked)) ] || fail "stored $stored != acknowledged $ack + in flight $unacked"
[ "$diffs" -eq 0 ] || { q -d $db -c "SELECT * FROM onboarding.verify() LIMIT 10" >&2; fail "verify() found $diffs differences"; }
