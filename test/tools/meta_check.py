#!/usr/bin/env python3
"""META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/).

Checks what the spec requires of a distribution's META.json: the required
keys and their types, semantic versions (SemVer 1.0.0, as PGXN uses), the
license names it enumerates, provides (each extension with its file and
version), prereqs (phases, relations, version ranges), release_status, tags,
resources, no_index, and that every other top-level key starts with x_ or
X_.  Then what PGXN does not know but we do: the version is onboarding's
default_version, and every file named exists.  Exit status 1 and one line
per problem when anything is wrong.

    python3 test/tools/meta_check.py [META.json]
"""
import json
import os
import re
import sys

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[A-Za-z][0-9A-Za-z-]*)?$")
RANGE = re.compile(r"^\s*(?:(?:==|!=|>=|<=|>|<)\s*)?(0|[1-9][0-9]*\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[A-Za-z][0-9A-Za-z-]*)?|0)\s*$")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
    "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1",
    "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted",
    "unrestricted", "unknown"}
KNOWN = {"name", "abstract", "description", "version", "maintainer", "license", "provides", "meta-spec",
         "prereqs", "release_status", "resources", "tags", "no_index", "generated_by"}
REQUIRED = ["name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"]
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
RESOURCES = {"homepage", "bugtracker", "repository"}

problems = []


def bad(msg):
    problems.append(msg)


def is_text(v):
    return isinstance(v, str) and v.strip() != ""


def check_name(where, v):
    if not isinstance(v, str) or len(v) < 2 or re.search(r"[\s/\\:\x00-\x1f]", v):
        bad(f"{where}: not a PGXN name (two or more characters, no space, slash, backslash or colon)")


def check_version(where, v):
    if not isinstance(v, str) or not SEMVER.match(v):
        bad(f"{where}: {v!r} is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])")


def check_range(where, v):
    if not isinstance(v, str) or not all(RANGE.match(p) for p in v.split(",")):
        bad(f"{where}: {v!r} is not a version range")


def main(path):
    top = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: {e}")
        return 1
    if not isinstance(meta, dict):
        print(f"{path}: not a JSON object")
        return 1
    for k in REQUIRED:
        if k not in meta:
            bad(f"{k}: required")
    for k in meta:
        if k not in KNOWN and not k.startswith(("x_", "X_")):
            bad(f"{k}: not a key of the spec (custom keys start with x_)")
    if "name" in meta:
        check_name("name", meta["name"])
    for k in ("abstract", "description", "generated_by"):
        if k in meta and not is_text(meta[k]):
            bad(f"{k}: must be a non-empty string")
    if "version" in meta:
        check_version("version", meta["version"])
    m = meta.get("maintainer")
    if m is not None and not (is_text(m) or (isinstance(m, list) and m and all(is_text(x) for x in m))):
        bad("maintainer: a string or a non-empty array of strings")
    lic = meta.get("license")
    if isinstance(lic, str):
        if lic not in LICENSES:
            bad(f"license: {lic!r} is not one of the spec's names")
    elif isinstance(lic, list):
        for x in lic:
            if x not in LICENSES:
                bad(f"license: {x!r} is not one of the spec's names")
    elif isinstance(lic, dict):
        if not lic or not all(is_text(u) for u in lic.values()):
            bad("license: an object of names to URLs")
    elif lic is not None:
        bad("license: a string, an array or an object")
    prov = meta.get("provides")
    if prov is not None:
        if not isinstance(prov, dict) or not prov:
            bad("provides: a non-empty object")
        else:
            for ext, p in prov.items():
                check_name(f"provides.{ext}", ext)
                if not isinstance(p, dict):
                    bad(f"provides.{ext}: an object")
                    continue
                for k in ("file", "version"):
                    if k not in p:
                        bad(f"provides.{ext}.{k}: required")
                for k in p:
                    if k not in {"file", "version", "abstract", "docfile"} and not k.startswith(("x_", "X_")):
                        bad(f"provides.{ext}.{k}: not a key of the spec")
                if "version" in p:
                    check_version(f"provides.{ext}.version", p["version"])
                for k in ("file", "docfile"):
                    if k in p and not os.path.isfile(os.path.join(top, p[k])):
                        bad(f"provides.{ext}.{k}: {p[k]} does not exist")
    ms = meta.get("meta-spec")
    if ms is not None:
        if not isinstance(ms, dict) or ms.get("version") != "1.0.0":
            bad("meta-spec: an object with version \"1.0.0\"")
        elif set(ms) - {"version", "url"}:
            bad("meta-spec: only version and url")
    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        bad("release_status: stable, testing or unstable")
    if "tags" in meta:
        t = meta["tags"]
        if not isinstance(t, list) or not all(is_text(x) and len(x) <= 255 for x in t):
            bad("tags: an array of non-empty strings of at most 255 characters")
    if "no_index" in meta:
        n = meta["no_index"]
        if not isinstance(n, dict) or set(n) - {"file", "directory"}:
            bad("no_index: an object of file and directory")
    if "resources" in meta:
        r = meta["resources"]
        if not isinstance(r, dict) or any(k not in RESOURCES and not k.startswith(("x_", "X_")) for k in r):
            bad("resources: homepage, bugtracker, repository")
    if "prereqs" in meta:
        pr = meta["prereqs"]
        if not isinstance(pr, dict):
            bad("prereqs: an object")
        else:
            for phase, rels in pr.items():
                if phase not in PHASES:
                    bad(f"prereqs.{phase}: not a phase")
                    continue
                if not isinstance(rels, dict):
                    bad(f"prereqs.{phase}: an object")
                    continue
                for rel, deps in rels.items():
                    if rel not in RELATIONS or not isinstance(deps, dict):
                        bad(f"prereqs.{phase}.{rel}: not a relation")
                        continue
                    for dep, rng in deps.items():
                        check_range(f"prereqs.{phase}.{rel}.{dep}", rng)

    # what PGXN does not know: the extension's own files
    control = os.path.join(top, "onboarding.control")
    if os.path.isfile(control):
        dv = re.search(r"^default_version\s*=\s*'([^']*)'", open(control).read(), re.M)
        if dv and meta.get("version") != dv.group(1):
            bad(f"version: {meta.get('version')!r}, but onboarding.control's default_version is {dv.group(1)!r}")
        p = (prov or {}).get("onboarding", {}) if isinstance(prov, dict) else {}
        if dv and isinstance(p, dict) and p.get("version") != dv.group(1):
            bad("provides.onboarding.version: not onboarding.control's default_version")

    for p in problems:
        print(f"{path}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "META.json"))
