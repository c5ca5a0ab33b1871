#!/usr/bin/env python3
"""Checks that src/ imports point down only: every top-level module sits on a floor, a file may
use modules on lower floors and files of its own module, and no two files import each other,
directly or round a longer cycle. Reads `crate::` paths (in `use` lines and inline paths) and
`super::` paths; prints each violation and exits 1 if there is any.

Run: python3 scripts/check_layers.py [--graph]   (CI runs it before the tests)
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Floors, lowest first: a module may use modules on lower floors only (and itself).
FLOORS = [
    ["error", "text"],
    ["io", "backend", "distributed"],
    ["ops"],
    ["data", "models"],
    ["weights"],
    ["learner"],
    ["report", "bench"],
    ["run_dir"],
    ["run"],
    ["infer"],
    ["vision"],
    ["interpret"],
    ["tabular", "clean", "ensemble", "gan"],
    ["playbook"],
]
FLOOR = {m: i for i, names in enumerate(FLOORS) for m in names}
TOP = {"lib", "main", "cli"}  # may use anything; nothing may use them

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}", re.S)


def module_path(file: Path) -> list[str]:
    """The module path of a source file: src/a/b.rs -> [a, b]; src/a/mod.rs -> [a]."""
    parts = list(file.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def cfg_test_free(text: str) -> str:
    """The text without `#[cfg(test)] mod tests { … }` blocks (tests may import freely)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def targets(file: Path, files: dict) -> set:
    """The source files `file` refers to."""
    here = module_path(file)
    is_mod = file.name in ("mod.rs", "lib.rs", "main.rs")
    text = cfg_test_free(strip_comments(file.read_text()))
    paths = []
    for m in USE_GROUP.finditer(text):
        for item in re.split(r",", m.group(3)):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                first = re.split(r"::|\{", item)[0].strip()
                if first:
                    paths.append((m.group(1), m.group(2) + "::" + first))
    for m in PATH.finditer(text):
        paths.append((m.group(1), m.group(2)))
    found = set()
    for root, rest in paths:
        segs = [s for s in rest.split("::") if s]
        if root == "crate":
            base = []
        else:
            base = here[:] if is_mod else here[:-1]
            while segs and segs[0] == "super":
                segs.pop(0)
                base = base[:-1]
        # The longest prefix that names a file.
        full = base + segs
        for n in range(len(full), 0, -1):
            key = tuple(full[:n])
            if key in files:
                if files[key] != file:
                    found.add(files[key])
                break
    return found


def main() -> int:
    files = {}
    for f in sorted(SRC.rglob("*.rs")):
        files[tuple(module_path(f))] = f
    graph = {f: targets(f, files) for f in files.values()}
    errors = []

    def top(f):
        p = module_path(f)
        return p[0] if p else f.stem

    for f, deps in graph.items():
        a = top(f)
        for d in deps:
            b = top(d)
            if a == b or a in TOP:
                continue
            if b in TOP:
                errors.append(f"{f.relative_to(SRC)} uses {d.relative_to(SRC)}: nothing uses the CLI")
            elif a not in FLOOR or b not in FLOOR:
                missing = a if a not in FLOOR else b
                errors.append(f"module {missing} has no floor in scripts/check_layers.py")
            elif FLOOR[b] >= FLOOR[a]:
                errors.append(
                    f"{f.relative_to(SRC)} (floor {FLOOR[a]}, {a}) uses {d.relative_to(SRC)} "
                    f"(floor {FLOOR[b]}, {b}): imports point down only"
                )
    # Cycles between files (Tarjan's strongly connected components).
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    for comp in comps:
        names = sorted(str(c.relative_to(SRC)) for c in comp)
        errors.append("import cycle between files: " + " <-> ".join(names))
    if "--graph" in sys.argv:
        for f, deps in sorted(graph.items()):
            print(f.relative_to(SRC), "->", ", ".join(sorted(str(d.relative_to(SRC)) for d in deps)))
    for e in sorted(set(errors)):
        print(e)
    if errors:
        print(f"{len(set(errors))} layering problems", file=sys.stderr)
        return 1
    print(f"layers ok: {len(files)} files, imports point down, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
