#!/usr/bin/env bash
# test/tools/fixture-suite.sh PROVIDER — print the SQL that ingests every
# fixture of test/fixtures/PROVIDER (in name order) and shows what each
# delivery became.  The regression suites sql/<provider>.sql hold its
# output between the "-- fixtures" and "-- end of fixtures" markers, then
# include test/regress/provider_checks.sql; rerun it when fixtures change:
#
#   bash test/tools/fixture-suite.sh qitech
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$1
for f in test/fixtures/"$dir"/*.json; do
	name=${f#test/fixtures/}
	case "$name" in qitech/headers-*) continue ;; esac
	printf '\\set f %s\n' "$name"
	printf '\\set body `cat %s`\n' "$f"
	printf "SELECT :'f' AS fixture, provider, event_type, subject, status_raw, event_at, outcome, detail\n"
	printf "  FROM onboarding.ingest_text(:'body', NULL, pg_catalog.jsonb_build_object('fixture', :'f'));\n"
done
