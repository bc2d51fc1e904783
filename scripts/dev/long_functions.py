#!/usr/bin/env python3
"""Lists the C++ functions longer than a limit (STYLE: none over 120 lines).

  scripts/dev/long_functions.py [--limit 120] [--check] [PATH...]   (default: lib tools tests)

A brace-matching reader, no compiler needed: comments, strings and character literals are blanked,
then every `{` that follows a function head -- `name(...)` with optional qualifiers, a trailing
return type or a constructor's initialiser list, not `if`/`for`/`while`/`switch`/`catch`, not a
lambda -- opens a function whose length is counted from the head's first line to the closing `}`.
Lambdas count toward the function they are written in. Checked against clang's AST
(`clang++ -fsyntax-only -Xclang -ast-dump`: the source ranges of FunctionDecl / CXXMethodDecl) on
lib/plan/export.cpp, lib/targets/pick.cpp and lib/plan/report_data.cpp: same functions, same
lengths. --check exits 1 when any function is over the limit.

A function that only builds a lookup table (the issue's "generated tables") is exempt when the line
just above its head says `// long_functions: table` (why it is one piece goes on that line too).
"""
import argparse
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONTROL = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignof", "static_assert",
           "noexcept", "defined"}
SCOPES = re.compile(r"\b(namespace|class|struct|union|enum)\b")


def blank(text):
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):  # preprocessor line (with continuations)
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_name(head):
    """The function's name when `head` (text before a `{`) is a function head, else None."""
    h = head.strip()
    if not h or SCOPES.search(h.split("(")[0]) and "(" not in h:
        return None
    # Constructor initialiser list: cut at the ':' that follows the parameter list's ')'.
    depth, cut = 0, None
    for k, ch in enumerate(h):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == ":" and depth == 0 and h[k - 1:k + 1] != "::" and h[k:k + 2] != "::" and ")" in h[:k]:
            cut = k
            break
    if cut is not None:
        h = h[:cut].rstrip()
    h = re.sub(r"->\s*[\w:<>,\s*&]+$", "", h).rstrip()  # trailing return type
    h = re.sub(r"\b(const|noexcept|override|final|mutable)\s*$", "", h).rstrip()
    h = re.sub(r"\b(const|noexcept|override|final|mutable)\s*$", "", h).rstrip()
    if not h.endswith(")"):
        return None
    depth = 0
    for k in range(len(h) - 1, -1, -1):
        if h[k] == ")":
            depth += 1
        elif h[k] == "(":
            depth -= 1
            if depth == 0:
                before = h[:k].rstrip()
                break
    else:
        return None
    if before.endswith("]") or before.endswith(")"):  # lambda, or a call's result
        return None
    m = re.search(r"((?:[\w~]+::)*(?:operator\s*[^\s(]+|~?\w+))$", before)
    if not m or m.group(1) in CONTROL or m.group(1).split("::")[-1] in CONTROL:
        return None
    rest = before[: m.start()].strip()
    if rest.endswith(("=", "return", ",", "(")):  # an initialiser, e.g. `auto f = g(x) {`? not a definition
        return None
    return m.group(1)


def functions(path):
    text = blank(open(path, encoding="utf-8", errors="replace").read())
    line_of = [0] * (len(text) + 1)
    ln = 1
    for k, ch in enumerate(text):
        line_of[k] = ln
        if ch == "\n":
            ln += 1
    out, stack, head_start = [], [], 0  # stack: ("scope" | "function" | "block", name, start line)
    for k, ch in enumerate(text):
        if ch in ";":
            head_start = k + 1
        elif ch == "{":
            in_function = any(kind == "function" for kind, _, _ in stack)
            head = text[head_start:k]
            name = None if in_function else function_name(head)
            if name:
                first = head_start + len(head) - len(head.lstrip())
                stack.append(("function", name, line_of[first]))
            elif not in_function and SCOPES.search(head):
                stack.append(("scope", None, 0))
            else:
                stack.append(("block", None, 0))
            head_start = k + 1
        elif ch == "}":
            if stack:
                kind, name, start = stack.pop()
                if kind == "function":
                    out.append((name, start, line_of[k], line_of[k] - start + 1))
            head_start = k + 1
    return out


def sources(paths):
    for p in paths:
        p = os.path.join(ROOT, p) if not os.path.isabs(p) else p
        if os.path.isfile(p):
            yield p
            continue
        for dirpath, _, names in os.walk(p):
            for n in sorted(names):
                if n.endswith((".cpp", ".hpp", ".h", ".cc")):
                    yield os.path.join(dirpath, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=["lib", "tools", "tests"])
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--check", action="store_true", help="exit 1 when a function is over the limit")
    ap.add_argument("--all", action="store_true", help="list every function (name, lines)")
    a = ap.parse_args()
    long = []
    for path in sorted(sources(a.paths)):
        source_lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
        for name, start, end, lines in functions(path):
            rel = os.path.relpath(path, ROOT)
            table = start >= 2 and "long_functions: table" in source_lines[start - 2]
            if a.all or (lines > a.limit and not table):
                long.append((lines, f"{rel}:{start}-{end}", name))
    for lines, where, name in sorted(long, key=lambda x: (-x[0], x[1])):
        print(f"{lines:5d}  {where}  {name}")
    if not a.all:
        print(f"long_functions: {len(long)} function(s) over {a.limit} lines", file=sys.stderr)
    return 1 if a.check and long else 0


if __name__ == "__main__":
    sys.exit(main())
