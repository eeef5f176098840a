#!/usr/bin/env bash
# Bad input: at least 10,000 hostile bodies generated from the fixtures by
# test/reliability/fuzz.py — every field the pipeline reads set to the wrong
# JSON type or removed, times and tax ids that are not, unknown providers and
# events, 1 MB strings, nesting just under and over 1000 levels, numbers
# numeric cannot hold, truncated JSON, invalid escapes and \u0000, text that
# is not JSON at all — delivered through onboarding.ingest (jsonb), INSERT
# (payload), onboarding.ingest_text and INSERT (raw), each in its own
# transaction, and a sample through onboarding.explain().
# Proves: no statement fails, the server never crashes (same postmaster start
# time, no crash in its log), every body is stored exactly once with an
# outcome, text bodies byte for byte (MD5), and even this state is a pure
# function of the log (onboarding.verify() is empty).
#
#   ONBOARDING_LONG=1   100,000 bodies (default 10,000); ONBOARDING_FUZZ_SEED
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_fuzz
if [ "$LONG" = 1 ]; then count=100000; else count=10000; fi
seed=${ONBOARDING_FUZZ_SEED:-20261123}
script="$ONBOARDING_WORK/fuzz.sql"
trap 'rm -f "$script" "$ONBOARDING_WORK/fuzz.err"; drop_db $db >/dev/null 2>&1 || true' EXIT
command -v python3 >/dev/null || fail "python3 is needed to generate the bodies"

python3 "$RELIABILITY/fuzz.py" "$RELIABILITY/../fixtures" "$count" "$seed" "$script" >"$ONBOARDING_WORK/fuzz.plan"
sent=$(sed -n 's/^total //p' "$ONBOARDING_WORK/fuzz.plan")
fresh_db $db
started=$(q -d $db -c "SELECT pg_postmaster_start_time()")
mark=$(log_mark)

# one statement per body, autocommit; an error is a failure, but keep going to
# count them all (a lost connection ends psql)
PGCLIENTENCODING=UTF8 psql -X -q -d $db -f "$script" >/dev/null 2>"$ONBOARDING_WORK/fuzz.err" || true
errors=$(grep -c 'ERROR:' "$ONBOARDING_WORK/fuzz.err" || true)
if [ "$errors" -gt 0 ]; then
	echo "fuzz: $errors statements raised an error (seed $seed):" >&2
	grep 'ERROR:' "$ONBOARDING_WORK/fuzz.err" | sed 's/^psql:[^:]*:[0-9]*: //; s/[0-9][0-9]*/N/g' \
		| sort | uniq -c | sort -rn | head -5 >&2
fi

server_is_up || fail "the server is down"
[ "$(q -d $db -c "SELECT pg_postmaster_start_time()")" = "$started" ] \
	|| fail "the server restarted during the run"
crashes=$(crash_lines "$mark")
[ -z "$crashes" ] || fail "crash in the server log: $crashes"

read -r stored tagged no_outcome not_verbatim no_payload <<<"$(q -F ' ' -d $db <<'SQL'
SELECT count(*),
       count(DISTINCT headers->>'fuzz'),
       count(*) FILTER (WHERE outcome IS NULL),
       count(*) FILTER (WHERE headers ? 'md5' AND md5(raw) IS DISTINCT FROM headers->>'md5'),
       count(*) FILTER (WHERE headers->>'door' IN ('ingest', 'insert_payload') AND payload IS NULL)
  FROM onboarding.inbox
SQL
)"
outcomes=$(q -d $db -c "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
                          FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")
doors=$(sed -n 's/^door_\([a-z_]*\) \([0-9]*\)$/\1=\2/p' "$ONBOARDING_WORK/fuzz.plan" | tr '\n' ' ')
explained=$(sed -n 's/^explained //p' "$ONBOARDING_WORK/fuzz.plan")
diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()")

echo "fuzz: $sent bodies fuzzed (${doors}+ $explained explain), $stored stored, server up throughout"
echo "fuzz: outcomes $outcomes; not verbatim $not_verbatim; verify() differences: $diffs"

[ "$errors" -eq 0 ] || fail "$errors deliveries raised an error"
[ "$stored" -eq "$sent" ] || fail "$sent bodies sent, $stored stored"
[ "$tagged" -eq "$sent" ] || fail "$sent bodies sent, $tagged distinct ones stored"
[ "$no_outcome" -eq 0 ] || fail "$no_outcome deliveries without an outcome"
[ "$not_verbatim" -eq 0 ] || fail "$not_verbatim raw bodies not stored byte for byte"
[ "$no_payload" -eq 0 ] || fail "$no_payload jsonb deliveries stored without their payload"
[ "$diffs" -eq 0 ] || { q -d $db -c "SELECT * FROM onboarding.verify() LIMIT 5" >&2; fail "verify() found $diffs differences"; }
