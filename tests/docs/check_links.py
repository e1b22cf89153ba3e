#!/usr/bin/env python3
"""check_links.py: every relative link in README.md, BENCHMARKS.md and docs/*.md reaches a file of
the tree, and every #anchor a heading of the page it names (GitHub's heading ids).
Usage: check_links.py SOURCE_ROOT. Exit status: 0 pass, 1 fail."""
import glob
import os
import re
import sys

SRC = os.path.abspath(sys.argv[1])


def slug(heading):
    """GitHub's id for a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6} ", line):
            base, n = slug(line.lstrip("#")), 0
            while (base if n == 0 else "%s-%d" % (base, n)) in out:
                n += 1
            out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def links(path):
    fenced = False
    for no, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        for m in re.finditer(r"\]\(([^)\s]+)\)", line):
            yield no, m.group(1)


def main():
    pages = [os.path.join(SRC, p) for p in ("README.md", "BENCHMARKS.md")]
    pages += sorted(glob.glob(os.path.join(SRC, "docs", "*.md")))
    bad, count = [], 0
    for page in pages:
        if not os.path.exists(page):
            bad.append("%s is missing" % os.path.relpath(page, SRC))
            continue
        for no, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto: … not checked offline
                continue
            count += 1
            where = "%s:%d: %s" % (os.path.relpath(page, SRC), no, target)
            file_part, _, anchor = target.partition("#")
            dest = page if not file_part else os.path.normpath(os.path.join(os.path.dirname(page), file_part))
            if not dest.startswith(SRC + os.sep) and dest != SRC:
                bad.append(where + " (outside the repository)")
            elif not os.path.exists(dest):
                bad.append(where + " (no such file)")
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                bad.append(where + " (no heading with that id)")
    for b in bad:
        print("FAIL: " + b)
    if bad:
        return 1
    print("%d relative links in %d pages: all reach their file and heading" % (count, len(pages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
