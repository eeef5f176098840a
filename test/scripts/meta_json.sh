#!/usr/bin/env bash
# test/scripts/meta_json.sh — META.json (PGXN) passes the PGXN Meta Spec
# 1.0.0 checks of test/tools/meta_check.py, and each of a handful of broken
# copies fails them (so that the check can fail): a required key missing, a
# version that is not semantic, a license the spec does not name, a file
# that does not exist, a version other than onboarding.control's.
set -euo pipefail
cd "$(dirname "$0")/../.."

check=test/tools/meta_check.py
python3 "$check" META.json
echo "META.json: valid"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp onboarding.control "$tmp/"
mkdir -p "$tmp/sql"
cp sql/onboarding--0.3.0.sql sql/taxid--1.0.sql "$tmp/sql/"
cp README.md "$tmp/"
broken() { # name python-expression-on-m
	python3 - "$2" <<-'PY' >"$tmp/META.json"
		import json, sys
		m = json.load(open("META.json"))
		exec(sys.argv[1])
		print(json.dumps(m))
	PY
	if python3 "$check" "$tmp/META.json" >"$tmp/out"; then
		echo "META.json broken by '$1' still passes" >&2
		return 1
	fi
	echo "broken ($1): $(head -1 "$tmp/out" | sed 's|^.*META.json: ||')"
}
broken "no version" 'del m["version"]'
broken "version 0.3" 'm["version"] = "0.3"'
broken "license GPL" 'm["license"] = "GPL"'
broken "missing file" 'm["provides"]["onboarding"]["file"] = "sql/nothing.sql"'
broken "other version" 'm["version"] = "0.4.0"; m["provides"]["onboarding"]["version"] = "0.4.0"'
broken "custom key" 'm["homepage"] = "x"'
broken "prereq range" 'm["prereqs"]["runtime"]["requires"]["PostgreSQL"] = "fifteen"'
