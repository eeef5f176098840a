#!/usr/bin/env bash
# The README's five-minute tour, run against a fresh database: every SQL
# block under "## A five-minute tour" must run without an error, so the tour
# can never rot.  Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).
set -euo pipefail
cd "$(dirname "$0")/../.."

sql=$(awk '/^## A five-minute tour/ { intour = 1; next }
           /^## / { intour = 0 }
           intour && /^```sql/ { inblock = 1; next }
           inblock && /^```/ { inblock = 0; next }
           inblock { print }' README.md)
[ -n "$sql" ] || { echo "no SQL found in the README tour"; exit 1; }

db=onboarding_tour
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
printf '%s\n' "$sql" | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
statements=$(printf '%s\n' "$sql" | grep -c ';$' || true)
diff=$(psql -X -At -d "$db" -c "SELECT count(*) FROM onboarding.verify()")
psql -X -q -d postgres -c "DROP DATABASE $db"
echo "readme tour: $statements statements ran, verify() differences: $diff"
[ "$diff" = 0 ]
