#!/usr/bin/env python3
"""Every relative link of the project's Markdown resolves: the file exists,
and an #anchor names a heading of it (GitHub's anchors: lower case,
punctuation dropped, spaces as hyphens).  Links inside code blocks and to
other sites are not checked.  Prints each broken link; exit status 1 if any.

    python3 test/tools/md_links.py README.md CONTRIBUTING.md CHANGELOG.md docs/*.md
"""
import os
import re
import sys


def anchor(title):
    title = re.sub(r'[^\w\- ]', '', title.strip().lower())
    return title.replace(' ', '-')


def headings(path):
    found, block = set(), False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('```'):
                block = not block
            m = re.match(r'^(#{1,6}) (.*)', line)
            if m and not block:
                found.add(anchor(m.group(2)))
    return found


def main(files):
    cache, bad, links = {}, 0, 0
    for f in files:
        text = re.sub(r'```.*?```', '', open(f, encoding='utf-8').read(), flags=re.S)
        for m in re.finditer(r'\]\(([^)\s]+)\)', text):
            target = m.group(1)
            if re.match(r'^[a-z]+:', target):
                continue
            links += 1
            path, _, frag = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.exists(dest):
                print(f'{f}: {target}: no such file')
                bad += 1
                continue
            if frag and dest.endswith('.md'):
                if dest not in cache:
                    cache[dest] = headings(dest)
                if frag not in cache[dest]:
                    print(f'{f}: {target}: no such heading')
                    bad += 1
    print(f'links: {links} relative links in {len(files)} files, {bad} broken')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
