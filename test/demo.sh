#!/usr/bin/env bash
# test/demo.sh — what `make demo` shows, against the cluster test/run.sh
# started (PGHOST, PGPORT and PGUSER are set by it).
#
# Every fixture under test/fixtures is delivered as received, in name order,
# provider by provider; then the resulting state is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS onboarding_demo" -c "CREATE DATABASE onboarding_demo"
export PGDATABASE=onboarding_demo
psql -X -q -c "CREATE EXTENSION onboarding"

{
	echo '\set QUIET on'
	echo "SET timezone = 'UTC';"
	echo "CREATE TEMP TABLE demo_order (fixture text, id bigint);"
	for dir in qitech fitbank celcoin bad; do
		for f in test/fixtures/"$dir"/*.json; do
			case "$f" in */headers-*) continue ;; esac
			printf '\\set body `cat %s`\n' "$f"
			printf "INSERT INTO demo_order SELECT '%s', id FROM onboarding.ingest_text(:'body');\n" "${f#test/fixtures/}"
		done
	done
	cat <<'SQL'
\echo
\echo '== Every delivery: what it was and what it did'
SELECT o.fixture, i.provider, i.event_type, i.subject, i.status_raw, i.outcome
  FROM demo_order o JOIN onboarding.inbox i USING (id) ORDER BY i.id;
\echo
\echo '== Deliveries by outcome'
SELECT coalesce(provider::text, '(none)') AS provider, outcome, count(*)
  FROM onboarding.inbox GROUP BY 1, 2 ORDER BY 1, 2;
\echo
\echo '== Accounts'
SELECT provider, account_key, status, tax_id, holder_name, reason
  FROM onboarding.account ORDER BY provider, account_key;
\echo
\echo '== Proposals'
SELECT provider, proposal_key, status, background_check, documentscopy, flow, tax_id
  FROM onboarding.proposal ORDER BY provider, proposal_key;
\echo
\echo '== Documents'
SELECT provider, document_key, status, document_type, signer
  FROM onboarding.document ORDER BY provider, document_key;
\echo
\echo '== Closure requests'
SELECT provider, account_key, status, message FROM onboarding.closure ORDER BY 1, 2;
\echo
\echo '== What was refused or set aside, and why'
SELECT id, provider, event_type, subject, outcome, detail
  FROM onboarding.inbox WHERE outcome NOT IN ('applied', 'duplicate') ORDER BY id;
\echo
\echo '== verify(): live state against a rebuild (no rows: consistent)'
SELECT * FROM onboarding.verify();
SQL
} | psql -X -v ON_ERROR_STOP=1 --pset=pager=off
