#!/usr/bin/env bash
# A hot standby made with pg_basebackup from the test cluster (SPEC §10):
# every report, timeline(), stuck() and explain() answer there, read-only,
# exactly as on the primary.
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_standby
standby="$ONBOARDING_WORK/standby"
sport=$((PGPORT + 1))
stop_standby() {
	[ -d "$standby" ] && as_owner "$ONBOARDING_BINDIR/pg_ctl" -D "$standby" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$standby" "$ONBOARDING_WORK/standby.log"
	drop_db $db >/dev/null 2>&1 || true
}
trap stop_standby EXIT
stop_standby

fresh_db $db >/dev/null
q -d $db -v scale=4 -v seed=0.31 -f "$RELIABILITY/corpus.sql" >/dev/null
q -d $db -c "INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n" >/dev/null

as_owner "$ONBOARDING_BINDIR/pg_basebackup" -D "$standby" -R -X stream -c fast \
	-h "$PGHOST" -p "$PGPORT" -U "$PGUSER"
cat >>"$standby/postgresql.conf" <<EOF
port = $sport
hot_standby = on
EOF
as_owner "$ONBOARDING_BINDIR/pg_ctl" -D "$standby" -l "$ONBOARDING_WORK/standby.log" -w -t 120 start >/dev/null
qs() { q -p "$sport" "$@"; }
[ "$(qs -d $db -c 'SELECT pg_is_in_recovery()')" = t ] || fail "the copy is not a standby"

# the standby has replayed what the primary wrote
target=$(q -d $db -c "SELECT pg_current_wal_lsn()")
for i in $(seq 1 120); do
	[ "$(qs -d $db -c "SELECT pg_last_wal_replay_lsn() >= '$target'")" = t ] && break
	sleep 0.5
done

checks=(
	"SELECT * FROM onboarding.funnel ORDER BY 1, 2, 3"
	"SELECT * FROM onboarding.daily ORDER BY 1, 2"
	"SELECT * FROM onboarding.stage_durations ORDER BY 1, 2, 3"
	"SELECT * FROM onboarding.rejection_reasons ORDER BY 1, 2, 3"
	"SELECT * FROM onboarding.pending_documents ORDER BY 1, 2"
	"SELECT * FROM onboarding.anomalies ORDER BY id"
	"SELECT provider, entity, entity_key, status FROM onboarding.stuck('1 day') ORDER BY 1, 2, 3"
	"SELECT * FROM onboarding.timeline('615.120.612-63')"
	"SELECT onboarding.explain(body) FROM corpus ORDER BY n LIMIT 200"
	"SELECT onboarding.explain('{\"webhook_type\": \"account\", \"key\": \"standby-new\", \"status\": \"account_opened\"}')"
)
answered=0
for c in "${checks[@]}"; do
	q -d $db -c "$c" >"$ONBOARDING_WORK/primary.txt" 2>&1 || { cat "$ONBOARDING_WORK/primary.txt" >&2; fail "primary: $c"; }
	qs -d $db -c "$c" >"$ONBOARDING_WORK/standby.txt" 2>&1 || { cat "$ONBOARDING_WORK/standby.txt" >&2; fail "standby: $c"; }
	cmp -s "$ONBOARDING_WORK/primary.txt" "$ONBOARDING_WORK/standby.txt" \
		|| { diff "$ONBOARDING_WORK/primary.txt" "$ONBOARDING_WORK/standby.txt" | head >&2; fail "standby answers differently: $c"; }
	answered=$((answered + $(wc -l <"$ONBOARDING_WORK/standby.txt")))
done
# and a write is refused there, as on any standby
if qs -d $db -c "INSERT INTO onboarding.inbox (payload) VALUES ('{}')" >/dev/null 2>&1; then
	fail "the standby accepted a delivery"
fi
echo "standby: pg_basebackup copy in recovery on port $sport; ${#checks[@]} queries (reports, stuck(), timeline(), explain()) answered as on the primary, $answered rows; a delivery there is refused"
rm -f "$ONBOARDING_WORK/primary.txt" "$ONBOARDING_WORK/standby.txt"
