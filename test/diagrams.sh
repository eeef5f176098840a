#!/usr/bin/env bash
# test/diagrams.sh — regenerate docs/diagrams from the rule tables
# (make diagrams): one Graphviz DOT file per graph, straight from
# onboarding.transition_graph(), and the SVG drawn from it.  Each SVG
# carries the SHA-256 of its DOT source, so test/scripts/diagrams.sh can
# tell when a committed drawing no longer matches the rules.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq graphviz >/dev/null
	else sudo apt-get install -y -qq graphviz >/dev/null; fi
fi

export PGDATABASE=onboarding_diagrams PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE" -c "CREATE DATABASE $PGDATABASE"
psql -X -q -c "CREATE EXTENSION onboarding CASCADE"
for g in account proposal check document closure; do
	psql -X -At -c "SELECT onboarding.transition_graph('$g')" > "docs/diagrams/$g.dot"
	sum=$(sha256sum "docs/diagrams/$g.dot" | cut -d' ' -f1)
	dot -Tsvg "docs/diagrams/$g.dot" |
		sed "0,/<svg/s//<!-- source docs\/diagrams\/$g.dot sha256 $sum -->\n<svg/" > "docs/diagrams/$g.svg"
	echo "docs/diagrams/$g.svg"
done
psql -X -q -d postgres -c "DROP DATABASE $PGDATABASE"
