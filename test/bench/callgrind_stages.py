#!/usr/bin/env python3
"""test/bench/callgrind_stages.py — instructions per delivery, by stage.

Usage: callgrind_stages.py DELIVERIES LABEL=callgrind.out [LABEL=callgrind.out ...]

Reads callgrind output files (one per load: the plain table, the inbox) and
prints, for each, the instructions (Ir) per delivery in total and by stage,
side by side.

Why not sum callgrind_annotate's inclusive column: inclusive costs nest (the
trigger includes derive, which includes store, which includes WAL), so sums
of them count instructions several times. Instead each instruction is given
to the innermost stage on its call stack:

  * a function of a stage file or a stage's named function opens that stage
    for itself and all it calls (until another stage's function is called);
  * heap and index writing functions (heap_insert, ExecInsertIndexTuples,
    _bt_doinsert, ...) open `store` -- unless they run inside `history`,
    which keeps them (a history row's heap and index entries are history's);
  * every other function (palloc, hash_search, the executor, libc, ...)
    belongs to the stage of its callers: callgrind keeps call edges, not
    stacks, so a function called from several stages has its self cost
    shared between them in proportion to the instructions each call edge
    spent in it (what gprof does);
  * what runs under no stage is `other` (COPY's own loop, the executor's
    per-row work, trigger dispatch, the commit).

The sum over stages is the total that callgrind counted.
"""
import re
import sys
from collections import defaultdict

# (stage, heading) in the order printed
STAGES = [
    ("input", "COPY input: read the file, jsonb_in"),
    ("parse", "parse (parse.c)"),
    ("detect", "detect and extract (detect.c, extract.c; jsonutil/timeparse/taxid when they call them)"),
    ("dedupe", "dedupe (dedupe.c)"),
    ("classify", "classify (rules.c)"),
    ("derive", "derive (derive.c, fold.c, lock.c, group.c, window.c, but history)"),
    ("store", "store and index maintenance (store.c, heap_*, index inserts)"),
    ("history", "history (fold_write_history, group_write_history, onboarding_store_append)"),
    ("wal", "WAL (XLog*)"),
    ("glue", "trigger glue (inbox.c, delivery.c, onboarding.c, catalog.c, spi.c, state.c, explain.c)"),
    ("other", "other (COPY loop, executor, trigger dispatch, commit)"),
]

# extension source files -> stage (files not listed belong to their callers)
FILE_STAGE = {
    "parse.c": "parse", "detect.c": "detect", "extract.c": "detect", "dedupe.c": "dedupe", "rules.c": "classify",
    "derive.c": "derive", "fold.c": "derive", "lock.c": "derive", "group.c": "derive", "window.c": "derive",
    "store.c": "store", "inbox.c": "glue", "delivery.c": "glue", "onboarding.c": "glue",
    "catalog.c": "glue", "spi.c": "glue", "state.c": "glue", "explain.c": "glue",
}
# named functions -> stage (win over their file)
FUNC_STAGE = {
    "fold_write_history": "history", "group_write_history": "history", "onboarding_store_append": "history",
    "NextCopyFrom": "input",
}
# heap and index writers: store, or history inside history
PRIMITIVES = {
    "heap_insert", "heap_multi_insert", "heap_update", "heap_delete", "heap_lock_tuple",
    "simple_heap_insert", "simple_heap_update", "simple_heap_delete", "heap_prepare_insert",
    "RelationGetBufferForTuple", "ExecInsertIndexTuples", "index_insert", "btinsert",
    "_bt_doinsert", "CatalogTupleInsert", "CatalogTupleUpdate",
}
WAL_RE = re.compile(r"^(XLog|XLOG|xlog)")
SRC_RE = re.compile(r"(?:^|/)src/(\w+\.c)$")


def parse(path):
    """-> (total Ir, self[fn], file[fn], edges[callee] = {caller: inclusive Ir})"""
    names = {"fl": {}, "fn": {}, "ob": {}}
    kind_of = {"fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
               "fn": "fn", "cfn": "fn", "ob": "ob", "cob": "ob"}
    self_cost = defaultdict(int)
    file_of = {}            # the function's source file: a src/*.c among its blocks
    edges = defaultdict(lambda: defaultdict(int))
    cur_fl = cur_fn = callee = None
    in_call = False
    total = None
    ir_index = 0

    def name(kind, rest):
        rest = rest.strip()
        table = names[kind_of[kind]]
        m = re.match(r"^\((\d+)\)(?:\s+(.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), rest)

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                cost = int(fields[1 + ir_index]) if len(fields) > 1 + ir_index else 0
                if in_call:
                    edges[callee][cur_fn] += cost
                    in_call = False
                else:
                    self_cost[cur_fn] += cost
                continue
            key, _, rest = line.partition("=")
            if key in ("fl",):
                cur_fl = name(key, rest)
            elif key in ("fi", "fe", "cfi", "cfl", "ob", "cob"):
                name(key, rest)
            elif key == "fn":
                cur_fn = name(key, rest)
                # a function comes in one block per source file its code is
                # from (inlined headers: compat.h, PostgreSQL's); keep its .c
                if cur_fn not in file_of or (SRC_RE.search(cur_fl or "") and not SRC_RE.search(file_of[cur_fn] or "")):
                    file_of[cur_fn] = cur_fl
            elif key == "cfn":
                callee = name(key, rest)
            elif key == "calls":
                in_call = True
            elif key == "events":
                ir_index = rest.split().index("Ir")
            elif key in ("summary", "totals"):
                total = int(rest.split()[ir_index])
    if total is None:
        total = sum(self_cost.values())
    return total, self_cost, file_of, edges


def stage_of(fn, fl):
    """'hard' stage name, 'prim', or None (inherits)"""
    fn = fn.split("'")[0]   # callgrind names recursion levels f'2, f'3, ...
    if fn in FUNC_STAGE:
        return FUNC_STAGE[fn]
    if WAL_RE.match(fn):
        return "wal"
    if fn in PRIMITIVES:
        return "prim"
    m = SRC_RE.search(fl or "")
    if m and m.group(1) in FILE_STAGE:
        return FILE_STAGE[m.group(1)]
    return None


def attribute(path):
    total, self_cost, file_of, edges = parse(path)
    fns = set(self_cost) | set(edges) | {g for e in edges.values() for g in e}
    kind = {f: stage_of(f, file_of.get(f)) for f in fns}
    ctx = {}
    for f in fns:
        k = kind[f]
        ctx[f] = {k: 1.0} if k not in (None, "prim") else {"other": 1.0}
    for _ in range(200):
        changed = 0.0
        for f in fns:
            k = kind[f]
            if k not in (None, "prim"):
                continue
            inc = edges.get(f)
            weight = sum(inc.values()) if inc else 0
            dist = defaultdict(float)
            if weight > 0:
                for g, w in inc.items():
                    for s, x in ctx[g].items():
                        dist[s] += x * w / weight
            else:
                dist["other"] = 1.0
            if k == "prim":
                h = dist.get("history", 0.0)
                dist = {"history": h, "store": 1.0 - h} if h > 0 else {"store": 1.0}
            for s in set(dist) | set(ctx[f]):
                changed = max(changed, abs(dist.get(s, 0.0) - ctx[f].get(s, 0.0)))
            ctx[f] = dict(dist)
        if changed < 1e-9:
            break
    by_stage = defaultdict(float)
    for f, c in self_cost.items():
        for s, x in ctx[f].items():
            by_stage[s] += c * x
    return total, by_stage


def main():
    n = int(sys.argv[1])
    runs = []
    for arg in sys.argv[2:]:
        label, _, path = arg.partition("=")
        total, by_stage = attribute(path)
        runs.append((label, total, by_stage))
    width = max(len(h) for _, h in STAGES) + 2
    head = "stage".ljust(width) + "".join(f"{label:>12}" for label, _, _ in runs)
    if len(runs) == 2:
        head += f"{runs[1][0] + ' - ' + runs[0][0]:>18}"
    print(head)
    for s, h in STAGES:
        vals = [b.get(s, 0.0) / n for _, _, b in runs]
        line = h.ljust(width) + "".join(f"{v:12,.0f}" for v in vals)
        if len(vals) == 2:
            line += f"{vals[1] - vals[0]:18,.0f}"
        print(line)
    tots = [t / n for _, t, _ in runs]
    line = "total".ljust(width) + "".join(f"{v:12,.0f}" for v in tots)
    if len(tots) == 2:
        line += f"{tots[1] - tots[0]:18,.0f}"
    print(line)
    for label, total, b in runs:
        gap = total - sum(b.values())
        if abs(gap) > 0.001 * total:
            print(f"({label}: {gap:,.0f} instructions not attributed)")


if __name__ == "__main__":
    main()
