#!/usr/bin/env bash
# Privileges: an ingest role and a reporting role set up exactly as README.md
# says (its "Security and grants" SQL block is run as is, only the role names
# made unique), then, logged in as each role:
# - the ingest role delivers through INSERT (payload and raw), ingest() and
#   ingest_text(), and state is derived; it cannot UPDATE, DELETE or TRUNCATE
#   the inbox, write any state, history or rule table, call rebuild(),
#   verify() or force_status(), set forced_by, fake the derived columns, take
#   an id ahead of the sequence (which would make later deliveries fail), turn
#   the triggers off, or change the settings that change derived state;
# - with functions and operators planted under the names of built-ins (and of
#   the extension's own functions) in a schema ahead of onboarding and
#   pg_catalog in its search_path, and temporary tables named like the
#   extension's, its deliveries derive exactly what a clean superuser session
#   derives from the same bodies, and nothing planted is ever called;
# - values full of quotes and SQL fragments are stored and read back verbatim
#   in payload, raw, subject and the state columns;
# - the reporting role reads every table but cannot deliver, by INSERT or by
#   ingest()/ingest_text().
# Prints the number of checks passed; the roles are dropped at the end.
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"
cd "$RELIABILITY/../.."

db=onboarding_priv
ref=onboarding_priv_ref
suffix=$$_$RANDOM
ingest=onboarding_ingest_$suffix
report=onboarding_report_$suffix

cleanup() {
	for _ in $(seq 30); do server_is_up && break; sleep 1; done
	drop_db $db >/dev/null 2>&1 || true
	drop_db $ref >/dev/null 2>&1 || true
	q -d postgres -c "DROP ROLE IF EXISTS $ingest" -c "DROP ROLE IF EXISTS $report" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# README's grants, with this run's role names
grants=$(awk '/^##+ Security and grants/ { in_s = 1; next }
              /^##+ / { in_s = 0 }
              in_s && /^```sql/ { inb = 1; next }
              inb && /^```/ { exit }
              inb { print }' README.md)
grep -q 'CREATE ROLE onboarding_ingest' <<<"$grants" && grep -q 'CREATE ROLE onboarding_report' <<<"$grants" \
	|| fail "README.md has no grants block with onboarding_ingest and onboarding_report"
grants=$(sed -e "s/\bonboarding_ingest\b/$ingest/g" -e "s/\bonboarding_report\b/$report/g" <<<"$grants")
for r in $ingest $report; do
	[ -z "$(q -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$r'")" ] || fail "role $r exists already"
done

fresh_db $db
fresh_db $ref
q -d $db <<<"$grants"

passed=0
failed=0
pass() { passed=$((passed + 1)); }
flunk() { failed=$((failed + 1)); echo "check failed: $1" >&2; }

# as ROLE, run the SQL on stdin in $db; stdout and stderr go to $out and $err
out="$ONBOARDING_WORK/priv.out"
err="$ONBOARDING_WORK/priv.err"
as() {
	local role=$1; shift
	psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$role" -d $db "$@" >"$out" 2>"$err"
}
# succeeds WHAT ROLE SQL [EXPECTED-OUTPUT]
succeeds() {
	if as "$2" <<<"$3"; then
		if [ $# -lt 4 ] || [ "$(cat "$out")" = "$4" ]; then pass; else flunk "$1: got '$(head -c 200 "$out")', expected '$4'"; fi
	else
		flunk "$1: $(grep -m1 ERROR "$err" || head -c 200 "$err")"
	fi
}
# refused WHAT ROLE SQL: fails with 42501 insufficient_privilege
refused() {
	if as "$2" <<<"$3"; then
		flunk "$1: was allowed"
	elif grep -q '42501' "$err"; then
		pass
	else
		flunk "$1: failed otherwise: $(grep -m1 ERROR "$err" || head -c 200 "$err")"
	fi
}
su() { q -d $db "$@"; }

# ---------------------------------------------------------------------------
# 1. search_path hijacking: planted functions, operators and tables change nothing
# ---------------------------------------------------------------------------
# the ingest role gets a schema of its own to plant in (as an application
# that owns its own tables would have)
su -c "CREATE SCHEMA evil AUTHORIZATION $ingest"
as $ingest -f "$RELIABILITY/hijack.sql" || { cat "$err" >&2; fail "could not plant the functions"; }
planted=$(su -c "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'evil'::regnamespace)
                       + (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'evil'::regnamespace)")
for d in $db $ref; do
	q -d $d -v scale=3 -v seed=0.9 -f "$RELIABILITY/corpus.sql" >/dev/null
	q -d $d -c "GRANT SELECT ON public.corpus TO $ingest"
done
deliveries="
INSERT INTO onboarding.inbox (payload) SELECT body FROM public.corpus WHERE n % 4 = 0 ORDER BY n;
INSERT INTO onboarding.inbox (raw) SELECT raw FROM public.corpus WHERE n % 4 = 1 ORDER BY n;
SELECT count(onboarding.ingest(body)) FROM (SELECT body FROM public.corpus WHERE n % 4 = 2 ORDER BY n) c;
SELECT count(onboarding.ingest_text(raw)) FROM (SELECT raw FROM public.corpus WHERE n % 4 = 3 ORDER BY n) c;"
q -d $ref <<<"$deliveries" >/dev/null
# (bounded: a delivery that loops on a planted operator is cancelled)
if PGOPTIONS="$PGOPTIONS -c statement_timeout=5s" as $ingest <<SQL
CREATE TEMP TABLE inbox (x int); CREATE TEMP TABLE account (x int); CREATE TEMP TABLE proposal (x int);
CREATE TEMP TABLE document (x int); CREATE TEMP TABLE closure (x int); CREATE TEMP TABLE history (x int);
CREATE TEMP TABLE status_map (x int); CREATE TEMP TABLE transition (x int);
SET search_path = evil, pg_catalog, public;
$deliveries
SET search_path = pg_temp, evil, pg_catalog, public;
$deliveries
SELECT pg_catalog.count(*) FROM (SELECT 1 FROM pg_temp.inbox UNION ALL SELECT 1 FROM pg_temp.account
    UNION ALL SELECT 1 FROM pg_temp.status_map UNION ALL SELECT 1 FROM pg_temp.transition
    UNION ALL SELECT 1 FROM pg_temp.history UNION ALL SELECT 1 FROM pg_temp.proposal
    UNION ALL SELECT 1 FROM pg_temp.document UNION ALL SELECT 1 FROM pg_temp.closure) t;
SQL
then pass; temp_rows=$(tail -1 "$out"); else flunk "deliveries under a hijacked search_path: $(grep -m1 ERROR "$err")"; temp_rows="(not checked)"; fi
called=$(grep -o 'planted function .*' "$err" | sort -u | tr '\n' ';' || true)
q -d $ref <<<"$deliveries" >/dev/null    # the reference got the same two rounds
calls=$(su -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM evil.calls")
[ "$calls" -eq 0 ] && pass || flunk "planted objects were called $calls times: $called"
[ "$temp_rows" = 0 ] && pass || flunk "temporary look-alike tables written: $temp_rows"
# (last_received_at is when each database received a delivery: not compared)
derived="COPY (SELECT kind, key, row_data - 'last_received_at' FROM onboarding.derived_rows() ORDER BY kind, key) TO STDOUT"
q -d $db -c "$derived" >"$ONBOARDING_WORK/priv_hijacked.txt"
q -d $ref -c "$derived" >"$ONBOARDING_WORK/priv_reference.txt"
hijack_rows=$(wc -l <"$ONBOARDING_WORK/priv_reference.txt")
hijack_diff=$(diff "$ONBOARDING_WORK/priv_hijacked.txt" "$ONBOARDING_WORK/priv_reference.txt" | grep -c '^[<>]' || true)
[ "$hijack_diff" -eq 0 ] && pass || flunk "a hijacked search_path changed $hijack_diff of $hijack_rows derived rows"
rm -f "$ONBOARDING_WORK"/priv_*.txt

# ---------------------------------------------------------------------------
# 2. the ingest role ingests
# ---------------------------------------------------------------------------
succeeds "INSERT (payload)" $ingest \
	"INSERT INTO onboarding.inbox (payload) VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-1\", \"status\": \"account_opened\", \"event_datetime\": \"2026-01-01 10:00:00\"}')"
succeeds "INSERT (raw)" $ingest \
	"INSERT INTO onboarding.inbox (raw) VALUES ('{\"Method\": UpdateAccount, \"AccountKey\": \"priv-2\", \"AccountConditionType\": 2, \"SendDate\": \"2026-01-01T10:00:00\"}')"
succeeds "ingest()" $ingest \
	"SELECT outcome FROM onboarding.ingest('{\"webhook_type\": \"account\", \"key\": \"priv-3\", \"status\": \"account_opened\"}')" applied
succeeds "ingest_text()" $ingest \
	"SELECT outcome FROM onboarding.ingest_text('{\"entity\": \"onboarding-proposal\", \"status\": \"CREATED\", \"body\": {\"proposalId\": \"priv-4\"}}')" applied
succeeds "state derived from the ingest role's deliveries" postgres \
	"SELECT string_agg(status::text, ',' ORDER BY account_key) FROM onboarding.account WHERE account_key IN ('priv-1', 'priv-2', 'priv-3')" \
	"active,active,active"
# the ingest role may not even name a derived column; the owner may, and
# what it gives is recomputed
refused "INSERT naming derived columns" $ingest \
	"INSERT INTO onboarding.inbox (payload, outcome) VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-6\", \"status\": \"account_opened\"}', 'invalid')"
refused "INSERT choosing an id" $ingest \
	"INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE VALUES (99999999, '{\"a\": 1}')"
refused "explain()" $ingest "SELECT onboarding.explain('{\"a\": 1}')"
succeeds "INSERT with made-up derived columns (owner)" postgres \
	"INSERT INTO onboarding.inbox (payload, outcome, subject, event_type, detail, duplicate_of)
	 VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-5\", \"status\": \"account_opened\"}', 'invalid', 'fake', 'fake', 'fake', 1)"
succeeds "made-up derived columns were recomputed" postgres \
	"SELECT outcome || ' ' || subject || ' ' || event_type || ' ' || coalesce(detail, '-') || ' ' || coalesce(duplicate_of::text, '-')
	   FROM onboarding.inbox WHERE payload->>'key' = 'priv-5'" "applied priv-5 account - -"

# ---------------------------------------------------------------------------
# 3. ... and can do nothing else
# ---------------------------------------------------------------------------
refused "UPDATE inbox (derived column)" $ingest "UPDATE onboarding.inbox SET outcome = 'invalid'"
refused "UPDATE inbox (evidence)" $ingest "UPDATE onboarding.inbox SET payload = '{}'"
refused "DELETE inbox" $ingest "DELETE FROM onboarding.inbox"
refused "TRUNCATE inbox" $ingest "TRUNCATE onboarding.inbox"
refused "INSERT ... RETURNING reads the inbox" $ingest \
	"INSERT INTO onboarding.inbox (payload) VALUES ('{\"a\": 1}') RETURNING *"
refused "INSERT with forced_by" $ingest \
	"INSERT INTO onboarding.inbox (payload, forced_by) VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-1\", \"status\": \"rejected\"}', 'me')"
for t in account proposal document closure history status_map transition; do
	refused "INSERT $t" $ingest "INSERT INTO onboarding.$t DEFAULT VALUES"
	refused "UPDATE $t" $ingest "UPDATE onboarding.$t SET provider = provider"
	refused "DELETE $t" $ingest "DELETE FROM onboarding.$t"
	refused "TRUNCATE $t" $ingest "TRUNCATE onboarding.$t"
done
refused "rebuild()" $ingest "SELECT onboarding.rebuild()"
refused "verify()" $ingest "SELECT count(*) FROM onboarding.verify()"
refused "force_status()" $ingest "SELECT onboarding.force_status('account', 'qitech', 'priv-1', 'blocked', 'no')"
refused "force_status_record()" $ingest "SELECT onboarding.force_status_record('account', 'qitech', 'priv-1', 'blocked', 'no')"
refused "setval on the inbox sequence" $ingest "SELECT setval('onboarding.inbox_id_seq', 1)"
refused "ALTER TABLE inbox DISABLE TRIGGER" $ingest "ALTER TABLE onboarding.inbox DISABLE TRIGGER inbox_pipeline"
refused "CREATE TRIGGER on inbox" $ingest \
	"CREATE TRIGGER t BEFORE INSERT ON onboarding.inbox FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_before_insert()"
refused "CREATE FUNCTION in schema onboarding" $ingest \
	"CREATE FUNCTION onboarding.lower(text) RETURNS text LANGUAGE sql AS 'SELECT 1::text'"
# the zone is no session setting (0.1.0's onboarding.timezone): a SET before
# the library loads makes a placeholder, dropped with a warning when it
# loads; deliveries still read naive times in São Paulo
succeeds "SET onboarding.timezone changes nothing" $ingest \
	"SET onboarding.timezone = 'UTC';
	 SELECT (onboarding.ingest('{\"webhook_type\": \"account\", \"key\": \"priv-tz\", \"status\": \"account_opened\",
	                             \"event_datetime\": \"2026-01-01 10:00:00\"}')).event_at AT TIME ZONE 'UTC'" \
	"2026-01-01 13:00:00"
refused "set_timezone()" $ingest "SELECT onboarding.set_timezone('UTC')"
refused "INSERT INTO settings" $ingest "INSERT INTO onboarding.settings (timezone) VALUES ('UTC')"
refused "replay_lock()" $ingest "SELECT onboarding.replay_lock()"
refused "SET session_replication_role" $ingest "SET session_replication_role = replica"
# an id of its choosing, ahead of the sequence, must not make later deliveries fail
next=$(su -c "SELECT last_value + 1 FROM onboarding.inbox_id_seq")
as $ingest <<<"INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
               VALUES ($next, '{\"webhook_type\": \"account\", \"key\": \"priv-6\", \"status\": \"account_opened\"}')" || true
succeeds "deliveries after an INSERT that chose its own id" $ingest \
	"INSERT INTO onboarding.inbox (payload) VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-7\", \"status\": \"account_opened\"}');
	 INSERT INTO onboarding.inbox (payload) VALUES ('{\"webhook_type\": \"account\", \"key\": \"priv-8\", \"status\": \"account_opened\"}')"

# ---------------------------------------------------------------------------
# 4. quotes and SQL fragments are data
# ---------------------------------------------------------------------------
nasty=(
	"'; DROP TABLE onboarding.account; --"
	"Robert'); DELETE FROM onboarding.inbox; --"
	'"'
	'\'
	'\\'"'"'; SELECT pg_sleep(10); --'
	'$$'
	'$fz$ $body$ $1 $2 ::text %s %n {} [] \" \\ \n'
	"' OR '1'='1"
	'"}, "status": "account_opened", "x": {"'
	"ção ☃ 𝄞 $(printf 'tab\there')"
)
i=0
for s in "${nasty[@]}"; do
	i=$((i + 1))
	# built with jsonb_build_object by the ingest role, delivered as jsonb and as text
	if as $ingest -v s="$s" -v i="$i" <<'SQL'
SELECT outcome FROM onboarding.ingest(jsonb_build_object(
    'webhook_type', 'account_request.status_change', 'key', :'s', 'status', 'rejected',
    'rejection_reason', :'s', 'event_datetime', '2026-01-01 10:00:00',
    'data', jsonb_build_object('account_owner', jsonb_build_object('name', :'s'))));
SELECT outcome FROM onboarding.ingest_text(jsonb_pretty(jsonb_build_object(
    'entity', 'account-status', 'status', 'BLOQUEADO',
    'body', jsonb_build_object('onboardingId', :'s', 'reason', :'s'))));
SQL
	then pass; else flunk "delivering value $i: $(grep -m1 ERROR "$err")"; fi
	# payload, raw, subject, account key, reason and holder name, compared as superuser
	if as postgres -v s="$s" <<'SQL'
SELECT count(*) FROM onboarding.inbox i
  JOIN onboarding.account a ON a.provider = i.provider AND a.account_key = i.subject
 WHERE i.subject = :'s' AND a.account_key = :'s'
   AND ((i.provider = 'qitech' AND i.payload->>'key' = :'s' AND a.reason = :'s' AND a.holder_name = :'s')
     OR (i.provider = 'celcoin' AND i.payload->'body'->>'reason' = :'s' AND a.reason = :'s'
         AND i.raw = jsonb_pretty(jsonb_build_object('entity', 'account-status', 'status', 'BLOQUEADO',
                     'body', jsonb_build_object('onboardingId', :'s', 'reason', :'s')))));
SQL
	then
		[ "$(cat "$out")" = 2 ] && pass || flunk "value $i not read back verbatim: $(cat "$out") of 2 rows match"
	else
		flunk "value $i: $(grep -m1 ERROR "$err")"
	fi
done
succeeds "every table is still there" postgres \
	"SELECT count(*) FROM pg_tables WHERE schemaname = 'onboarding'" \
	"$(q -d $ref -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'onboarding'")"

# ---------------------------------------------------------------------------
# 5. the reporting role reads, and cannot deliver
# ---------------------------------------------------------------------------
for t in inbox account proposal document closure history status_map transition; do
	succeeds "report SELECT $t" $report "SELECT count(*) >= 0 FROM onboarding.$t" t
done
refused "report INSERT inbox" $report "INSERT INTO onboarding.inbox (payload) VALUES ('{\"a\": 1}')"
refused "report ingest()" $report "SELECT onboarding.ingest('{\"webhook_type\": \"account\", \"key\": \"priv-r\", \"status\": \"account_opened\"}')"
refused "report ingest_text()" $report "SELECT onboarding.ingest_text('{\"a\": 1}')"
succeeds "report explain()" $report "SELECT onboarding.explain('{\"a\": 1}') ->> 'outcome'" unrecognized
refused "report UPDATE account" $report "UPDATE onboarding.account SET reason = 'x'"
refused "report force_status()" $report "SELECT onboarding.force_status('account', 'qitech', 'priv-1', 'blocked', 'no')"

diffs=$(su -c "SELECT count(*) FROM onboarding.verify()")
[ "$diffs" -eq 0 ] && pass || flunk "verify() found $diffs differences"

echo "privileges: $passed of $((passed + failed)) checks passed ($planted planted functions and operators called $calls times," \
	"$hijack_rows derived rows identical to a clean session's: $([ "$hijack_diff" -eq 0 ] && echo yes || echo no); ${#nasty[@]} hostile values verbatim)"
[ "$failed" -eq 0 ] || fail "$failed checks failed (above)"
