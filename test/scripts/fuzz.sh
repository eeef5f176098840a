#!/usr/bin/env bash
# Bad input: at least 10,000 hostile bodies generated from the fixtures by
# test/reliability/fuzz.py — every field the pipeline reads set to the wrong
# JSON type or removed, times and tax ids that are not, unknown providers and
# events, 1 MB strings, keys over 1024 bytes made of multibyte characters
# (direct and derived keys, for every provider, cut inside a character at
# byte 40 and at byte 1024), nesting just under and over 1000 levels,
# numbers numeric cannot hold, truncated JSON, invalid escapes and \u0000,
# text that is not JSON at all, and every 8th delivery an exact re-send of an
# earlier body (through the same door or another) — delivered through
# onboarding.ingest (jsonb), INSERT (payload), onboarding.ingest_text and
# INSERT (raw), each in its own transaction, in 10 batches.  Every body jsonb
# can hold is first put to onboarding.explain() in the delivery's own
# transaction.
# Proves: no statement fails, the server never crashes (same postmaster start
# time, no crash in its log), every body is stored exactly once with an
# outcome, text bodies byte for byte (MD5); after EVERY batch, every text
# column of the inbox and of the state tables and history holds valid UTF-8
# and even this state is a pure function of the log (onboarding.verify() is
# empty); and explain() predicted the outcome each delivery got.
#
#   ONBOARDING_LONG=1   100,000 bodies (default 10,000); ONBOARDING_FUZZ_SEED,
#   ONBOARDING_FUZZ_COUNT, ONBOARDING_FUZZ_BATCHES override
set -euo pipefail
. "$(dirname "$0")/../reliability/lib.sh"

db=onboarding_fuzz
if [ "$LONG" = 1 ]; then count=100000; else count=10000; fi
count=${ONBOARDING_FUZZ_COUNT:-$count}
batches=${ONBOARDING_FUZZ_BATCHES:-10}
seed=${ONBOARDING_FUZZ_SEED:-20261123}
prefix="$ONBOARDING_WORK/fuzz"
trap 'rm -f "$prefix".*.sql "$ONBOARDING_WORK"/fuzz.err.* "$ONBOARDING_WORK"/fuzz.check.*; drop_db $db >/dev/null 2>&1 || true' EXIT
command -v python3 >/dev/null || fail "python3 is needed to generate the bodies"
t0=$(date +%s)

python3 "$RELIABILITY/fuzz.py" "$RELIABILITY/../fixtures" "$count" "$seed" "$prefix" "$batches" >"$ONBOARDING_WORK/fuzz.plan"
sent=$(sed -n 's/^total //p' "$ONBOARDING_WORK/fuzz.plan")
fresh_db $db
q -d $db -f "$RELIABILITY/utf8_check.sql"
q -d $db <<'SQL'
-- what explain() predicted, and the outcome the delivery got, per body
CREATE TABLE public.fz_explain (n int PRIMARY KEY, predicted text);
CREATE TABLE public.fz_got (n int PRIMARY KEY, outcome text);
SQL

# the UTF-8 check must see an invalid byte sequence stored in a text column:
# plant some (a cast with no function lets bytea through as text) and look
planted=$(q -d $db <<'SQL'
BEGIN;
CREATE CAST (bytea AS text) WITHOUT FUNCTION;
CREATE TABLE public.fz_planted AS
SELECT v::text AS v FROM (VALUES ('\x61e282'::bytea), ('\xe2'), ('\x41c3'), ('\xc3a9e282ac'), ('\xf09f98'), (NULL)) x(v);
SELECT string_agg(col || '=' || bad, ' ') FROM public.utf8_bad_columns(ARRAY['public.fz_planted'::regclass]);
ROLLBACK;
SQL
)
[ "$planted" = "fz_planted.v=4" ] || fail "the UTF-8 check does not see planted invalid text (got '$planted', want 4 bad)"

started=$(q -d $db -c "SELECT pg_postmaster_start_time()")
mark=$(log_mark)

errors=0
bad_batches=""
for b in $(seq 1 "$batches"); do
	# one statement (or explain + delivery) per body; an error is a failure,
	# but keep going to count them all (a lost connection ends psql)
	tb=$(date +%s%N)
	PGCLIENTENCODING=UTF8 psql -X -q -d $db -f "$prefix.$b.sql" >/dev/null 2>"$ONBOARDING_WORK/fuzz.err.$b" || true
	tc=$(date +%s%N)
	server_is_up || fail "the server is down after batch $b"
	e=$(grep -c 'ERROR:' "$ONBOARDING_WORK/fuzz.err.$b" || true)
	errors=$((errors + e))
	# any check that raises counts as a failure of the batch, with its message
	bad_utf8=$(q -d $db -c "SELECT coalesce(string_agg(col || '=' || bad, ' '), '') FROM public.utf8_bad_columns()" \
		2>"$ONBOARDING_WORK/fuzz.check.$b") || bad_utf8="ERROR($(head -c 200 "$ONBOARDING_WORK/fuzz.check.$b"))"
	diffs=$(q -d $db -c "SELECT count(*) FROM onboarding.verify()" 2>"$ONBOARDING_WORK/fuzz.check.$b") \
		|| diffs="ERROR($(head -c 200 "$ONBOARDING_WORK/fuzz.check.$b"))"
	stored_now=$(q -d $db -c "SELECT count(*) FROM onboarding.inbox")
	td=$(date +%s%N)
	echo "fuzz: batch $b/$batches: $stored_now stored, errors $e, invalid UTF-8 ${bad_utf8:-none}," \
		"verify() $diffs ($(((tc - tb) / 1000000)) ms delivering, $(((td - tc) / 1000000)) ms checking)"
	if [ "$e" -gt 0 ] || [ -n "$bad_utf8" ] || [ "$diffs" != 0 ]; then
		# the first one that fails shows a few differences
		if [ -z "$bad_batches" ] && [ "$diffs" != 0 ] && [ "${diffs#ERROR}" = "$diffs" ]; then
			q -d $db -c "SELECT kind, key, left(live::text, 200), left(rebuilt::text, 200)
			               FROM onboarding.verify() LIMIT 3" >&2 || true
		fi
		bad_batches="$bad_batches $b"
	fi
done
if [ "$errors" -gt 0 ]; then
	echo "fuzz: $errors statements raised an error (seed $seed):" >&2
	cat "$ONBOARDING_WORK"/fuzz.err.* | grep 'ERROR:' | sed 's/^psql:[^:]*:[0-9]*: //; s/[0-9][0-9]*/N/g' \
		| cut -c1-200 | sort | uniq -c | sort -rn | head -5 >&2
fi

[ "$(q -d $db -c "SELECT pg_postmaster_start_time()")" = "$started" ] \
	|| fail "the server restarted during the run"
crashes=$(crash_lines "$mark")
[ -z "$crashes" ] || fail "crash in the server log: $crashes"

read -r stored tagged no_outcome not_verbatim no_payload bad_hash <<<"$(q -F ' ' -d $db <<'SQL'
SELECT count(*),
       count(DISTINCT headers->>'fuzz'),
       count(*) FILTER (WHERE outcome IS NULL),
       count(*) FILTER (WHERE headers ? 'md5' AND md5(raw) IS DISTINCT FROM headers->>'md5'),
       count(*) FILTER (WHERE headers->>'door' IN ('ingest', 'insert_payload') AND payload IS NULL),
       -- dedupe.c hashes bodies itself: bit for bit jsonb's own hash
       count(*) FILTER (WHERE payload IS NOT NULL
                          AND body_hash IS DISTINCT FROM jsonb_hash_extended(payload, 0))
  FROM onboarding.inbox
SQL
)"
outcomes=$(q -d $db -c "SELECT string_agg(outcome || '=' || n, ' ' ORDER BY outcome)
                          FROM (SELECT outcome, count(*) n FROM onboarding.inbox GROUP BY 1) o")
doors=$(sed -n 's/^door_\([a-z_]*\) \([0-9]*\)$/\1=\2/p' "$ONBOARDING_WORK/fuzz.plan" | tr '\n' ' ')
mb=$(sed -n 's/^kind_mb_keys //p' "$ONBOARDING_WORK/fuzz.plan")
resent=$(sed -n 's/^kind_resend //p' "$ONBOARDING_WORK/fuzz.plan")
# explain() against what the delivery got, body by body
read -r explained disagree <<<"$(q -F ' ' -d $db -c "SELECT count(*), count(*) FILTER (WHERE e.predicted IS DISTINCT FROM g.outcome)
                                                   FROM public.fz_explain e LEFT JOIN public.fz_got g USING (n)")"
disagreements=$(q -d $db <<'SQL'
SELECT string_agg(format('%s %s: explain %s, stored %s', n, kind, predicted, outcome), '; ')
  FROM (SELECT count(*) n, i.headers->>'kind' kind, e.predicted, coalesce(g.outcome, '(none)') outcome
          FROM public.fz_explain e LEFT JOIN public.fz_got g USING (n)
          LEFT JOIN onboarding.inbox i ON (i.headers->>'fuzz')::int = e.n
         WHERE e.predicted IS DISTINCT FROM g.outcome
         GROUP BY 2, 3, 4 ORDER BY 1 DESC LIMIT 12) d
SQL
)
t1=$(date +%s)

echo "fuzz: $sent bodies fuzzed ($mb multibyte long keys, $resent re-sent; ${doors}), $stored stored, server up throughout, $((t1 - t0)) s"
echo "fuzz: outcomes $outcomes; not verbatim $not_verbatim; body_hash other than jsonb_hash_extended $bad_hash"
echo "fuzz: explain() before $explained deliveries: $disagree predicted another outcome than stored${disagreements:+ ($disagreements)}"

[ "$errors" -eq 0 ] || fail "$errors deliveries raised an error"
[ "$stored" -eq "$sent" ] || fail "$sent bodies sent, $stored stored"
[ "$tagged" -eq "$sent" ] || fail "$sent bodies sent, $tagged distinct ones stored"
[ "$no_outcome" -eq 0 ] || fail "$no_outcome deliveries without an outcome"
[ "$not_verbatim" -eq 0 ] || fail "$not_verbatim raw bodies not stored byte for byte"
[ "$no_payload" -eq 0 ] || fail "$no_payload jsonb deliveries stored without their payload"
[ "$bad_hash" -eq 0 ] || fail "$bad_hash bodies stored with a body_hash other than jsonb_hash_extended(payload, 0)"
[ -z "$bad_batches" ] || fail "invalid UTF-8, verify() differences or errors after batch(es)$bad_batches"
[ "$disagree" -eq 0 ] || fail "explain() mispredicted $disagree of $explained outcomes"
