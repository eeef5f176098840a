#!/usr/bin/env bash
# The committed transition diagrams (docs/diagrams) match the rule tables:
# each DOT file is exactly what onboarding.transition_graph() returns for a
# fresh install, and each SVG was drawn from that DOT file (it carries the
# file's SHA-256).  When the shipped graphs change, run `make diagrams`.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PGDATABASE=onboarding_diagrams_check PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE" -c "CREATE DATABASE $PGDATABASE"
psql -X -q -c "CREATE EXTENSION onboarding CASCADE"
failed=0
checked=0
for g in account proposal check document closure; do
	dotfile=docs/diagrams/$g.dot
	svg=docs/diagrams/$g.svg
	if ! psql -X -At -c "SELECT onboarding.transition_graph('$g')" | diff -u "$dotfile" - ; then
		echo "$dotfile does not match transition_graph('$g'): run make diagrams"
		failed=1
	fi
	sum=$(sha256sum "$dotfile" | cut -d' ' -f1)
	if ! grep -q "sha256 $sum" "$svg"; then
		echo "$svg was not drawn from $dotfile: run make diagrams"
		failed=1
	fi
	checked=$((checked + 1))
done
psql -X -q -d postgres -c "DROP DATABASE $PGDATABASE"
echo "diagrams: $checked graphs checked against transition_graph()"
exit $failed
