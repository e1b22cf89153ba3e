#!/usr/bin/env python3
"""check_layout.py: the include graph between the rooms runs one way, as docs/layout.md says.

The build already refuses a wrong include (each room sees only the include directories of what it
may use); this test says so in words, for every file, and fails on a cycle between rooms, on an
include that names another room's header from a room that may not use it, and on a room with more
than its one header. Usage: check_layout.py SOURCE_ROOT
"""
import os
import re
import sys

# Each room: its folder and the rooms it may include. The public header include/gactshim.h may be
# included by anyone.
ROOMS = {
    "base": ("shim/base", set()),
    "format": ("shim/format", {"base"}),
    "registry": ("shim/registry", {"base"}),
    "interpose": ("shim/interpose", {"base", "registry"}),
    "timeline": ("shim/timeline", {"base", "format", "registry"}),
    "engine": ("shim/engine", {"base", "registry", "timeline", "format", "policy"}),
    "init": ("shim", {"base", "registry", "interpose", "timeline", "engine", "format", "policy"}),
    "kernels": ("kernels", set()),
    "policy": ("policy", set()),
    "tools": ("tools", {"format", "base", "policy"}),
}
PUBLIC = {"gactshim.h"}
HEADERS = {"init": [], "kernels": ["codec_core.h", "kernels.h"], "tools": ["report.h"]}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room_of(rel):
    """The room a source file belongs to (the deepest folder that is a room)."""
    best = None
    for name, (folder, _) in ROOMS.items():
        if os.path.dirname(rel) == folder:
            best = name
    return best


def headers(root):
    """Header name -> the room that owns it."""
    owner = {}
    for name, (folder, _) in ROOMS.items():
        for f in os.listdir(os.path.join(root, folder)):
            if f.endswith(".h"):
                owner[f] = name
    return owner


def sources(root):
    for name, (folder, _) in ROOMS.items():
        for f in sorted(os.listdir(os.path.join(root, folder))):
            if f.endswith((".c", ".h", ".cu")):
                yield name, os.path.join(folder, f)


def main(root):
    owner = headers(root)
    problems, edges = [], set()
    for room, rel in sources(root):
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if "/" in inc and not inc.startswith("../check_run"):
                problems.append(f"{rel}: includes '{inc}' by path; rooms include headers by name")
            if base in PUBLIC:
                continue
            target = owner.get(base)
            if target is None:
                problems.append(f"{rel}: includes '{inc}', which no room owns")
            elif target != room:
                edges.add((room, target))
                if target not in ROOMS[room][1]:
                    problems.append(f"{rel}: room '{room}' includes '{inc}' of room '{target}', "
                                    f"which it may not use (allowed: {sorted(ROOMS[room][1]) or 'none'})")
    # A room has one header, named after it (the kernels' second one is compiled by nvcc too).
    for name, (folder, _) in ROOMS.items():
        hs = sorted(f for f in os.listdir(os.path.join(root, folder)) if f.endswith(".h"))
        want = HEADERS.get(name, [name + ".h"])
        if hs != want:
            problems.append(f"{folder}: headers {hs}; this room has {want}")
    problems += cycles(edges)
    for p in problems:
        print("FAIL:", p)
    print(f"{len(edges)} include edges between rooms: " +
          ", ".join(f"{a}->{b}" for a, b in sorted(edges)))
    if problems:
        return 1
    print("layout: every include runs one way; no cycle between rooms")
    return 0


def cycles(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found, state = [], {}

    def visit(n, path):
        state[n] = 1
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                found.append("cycle between rooms: " + " -> ".join(path + [m]))
            elif m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in list(graph):
        if n not in state:
            visit(n, [n])
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
