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
psql -X -q -c "CREATE EXTENSION onboarding CASCADE"

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
\echo '== 1. Every sample delivery, as received, and what it did'
SELECT o.fixture, i.provider, i.event_type, i.subject, i.status_raw, i.outcome
  FROM demo_order o JOIN onboarding.inbox i USING (id) ORDER BY i.id;
\echo
\echo '== 2. Nothing was lost: deliveries by provider and outcome'
SELECT coalesce(provider::text, '(none)') AS provider, outcome, count(*)
  FROM onboarding.inbox GROUP BY 1, 2 ORDER BY 1, 2;
\echo
\echo '== 3. The funnel: where the entities of each provider stand'
SELECT provider, entity, status, how_many, share FROM onboarding.funnel
 ORDER BY provider, entity, how_many DESC, status;
\echo
\echo '== 4. Anomalies: deliveries that changed nothing, and why'
SELECT id, coalesce(provider::text, '') AS provider, outcome, left(detail, 110) AS detail
  FROM onboarding.anomalies ORDER BY id;
\echo
\echo '== 5. Why customers were refused'
SELECT provider, entity, left(reason, 70) AS reason, how_many FROM onboarding.rejection_reasons
 ORDER BY provider, entity, how_many DESC;
\echo
\echo '== 6. Documents still waiting, and on whom'
SELECT provider, document_key, document_type, status, waiting_on FROM onboarding.pending_documents
 ORDER BY waiting_on, provider, document_key;
\echo
\echo '== 7. One customer across providers: the person with the most history'
SELECT tax_id AS customer FROM onboarding.entity_status WHERE tax_id IS NOT NULL
 GROUP BY tax_id ORDER BY count(DISTINCT provider) DESC, count(*) DESC, tax_id LIMIT 1 \gset
SELECT onboarding.taxid_format(:'customer') AS customer;
SELECT at, provider, coalesce(entity, '-') AS entity, entity_key,
       coalesce(from_status || ' -> ', '') || coalesce(to_status, outcome::text) AS what
  FROM onboarding.timeline(:'customer');
\echo
\echo '== 8. verify(): live state against a rebuild from the log (no rows: consistent)'
SELECT * FROM onboarding.verify();
SQL
} | psql -X -v ON_ERROR_STOP=1 --pset=pager=off
