#!/usr/bin/env bash
# Every relative link in README.md, CONTRIBUTING.md, CHANGELOG.md and docs/
# resolves to a file and, with an #anchor, to a heading of it
# (test/tools/md_links.py): the docs were split across files in 0.3.0, and a
# moved section must not leave a dead link behind.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 test/tools/md_links.py README.md CONTRIBUTING.md CHANGELOG.md docs/*.md
