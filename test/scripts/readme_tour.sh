#!/usr/bin/env bash
# The README, run: every SQL block under "## A five-minute tour", then
# every SQL block under "## Teaching a new provider" (the recipe), then
# every SQL block of docs/reference.md must run without an error against a
# fresh database, so that none of them can rot; the
# recipe must end with an empty check_rules() for the provider it taught,
# and verify() must be empty.  Then the reference: every table, view,
# function and type of the extension is named in docs/reference.md and has
# a COMMENT ON (row and array types, listed as members from PostgreSQL 17,
# are described by their table and element type, as in the suite comments).
# Needs PGHOST/PGPORT/PGUSER (test/run.sh sets them).
set -euo pipefail
cd "$(dirname "$0")/../.."

# blocks "heading" -> the SQL blocks of that level-2 section of README.md
blocks() {
	awk -v h="## $1" '$0 == h { ins = 1; next }
	                  /^## / { ins = 0 }
	                  ins && /^[ \t]*```sql/ { inblock = 1; next }
	                  inblock && /^[ \t]*```/ { inblock = 0; next }
	                  inblock { print }' README.md
}
tour=$(blocks "A five-minute tour")
recipe=$(blocks "Teaching a new provider")
[ -n "$tour" ] || { echo "no SQL found in the README tour"; exit 1; }
lines=$(wc -l <README.md)
[ "$lines" -le 700 ] || { echo "README.md has $lines lines: it is for users, keep it under 700"; exit 1; }
[ -n "$recipe" ] || { echo "no SQL found in the README recipe"; exit 1; }

db=onboarding_tour
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
printf '%s\n' "$tour" | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
statements=$(printf '%s\n' "$tour" | grep -c ';$' || true)
printf '%s\n' "$recipe" | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
rstatements=$(printf '%s\n' "$recipe" | grep -c ';$' || true)
# the reference's SQL examples, against the same database
reference=$(awk '/^[ \t]*```sql/ { inblock = 1; next }
                 inblock && /^[ \t]*```/ { inblock = 0; next }
                 inblock { print }' docs/reference.md)
printf '%s\n' "$reference" | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
fstatements=$(printf '%s\n' "$reference" | grep -c ';' || true)
taught=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_enum WHERE enumtypid = 'onboarding.provider'::regtype AND enumlabel NOT IN ('celcoin', 'qitech', 'fitbank')")
problems=$(psql -X -At -d "$db" -c "SELECT count(*) FROM onboarding.check_rules()")
diff=$(psql -X -At -d "$db" -c "SELECT count(*) FROM onboarding.verify()")
echo "readme tour: $statements statements ran; recipe: $rstatements statements ran, $taught provider taught;" \
	"reference examples: $fstatements statements ran;" \
	"check_rules() problems: $problems; verify() differences: $diff"
[ "$taught" -ge 1 ] && [ "$problems" = 0 ] && [ "$diff" = 0 ] || exit 1

# the reference: every member of the extension named, and commented
members=$(psql -X -At -d "$db" <<-'SQL'
	WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'onboarding'),
	m AS (SELECT d.classid, d.objid FROM pg_depend d, ext
	       WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
	SELECT kind || ' ' || name || ' ' || CASE WHEN descr IS NULL THEN 'no' ELSE 'yes' END FROM (
	  SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END AS kind, c.relname::text AS name,
	         obj_description(c.oid, 'pg_class') AS descr
	    FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
	   WHERE c.relkind IN ('r', 'p', 'v', 'm')
	  UNION
	  SELECT 'function', p.proname::text, obj_description(p.oid, 'pg_proc')
	    FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
	   WHERE p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
	  UNION
	  SELECT 'type', t.typname::text, obj_description(t.oid, 'pg_type')
	    FROM m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
	   WHERE t.typrelid = 0 AND t.typcategory <> 'A'   -- not a table's row type or an array type
	) x ORDER BY 1
SQL
)
missing=0 total=0
while read -r kind name commented; do
	total=$((total + 1))
	if ! grep -q "onboarding\.$name\b" docs/reference.md; then
		echo "docs/reference.md does not name the $kind onboarding.$name"; missing=$((missing + 1))
	fi
	if [ "$commented" != yes ]; then
		echo "the $kind onboarding.$name has no COMMENT ON"; missing=$((missing + 1))
	fi
done <<<"$members"
echo "reference: $total tables, views, functions and types; $missing missing from docs/reference.md or without a comment"
[ "$total" -gt 50 ] && [ "$missing" = 0 ]
