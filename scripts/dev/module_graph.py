#!/usr/bin/env python3
"""The module graph of lib/, derived from the #include lines of lib/*/ and include/tmsplan/.

  scripts/dev/module_graph.py            writes docs/architecture.md
  scripts/dev/module_graph.py --check    exit 1 when a lower layer includes a higher one, a module
                                         includes another module's private header, the modules
                                         include each other in a cycle, or docs/architecture.md
                                         is not what this script writes (run it without --check)
  scripts/dev/module_graph.py --print    the edges, one per line (module -> module: files)

A module is a folder of lib/ holding .cpp files (lib/CMakeLists.txt compiles every lib/**/*.cpp
into one library). A header belongs to a module by these rules, in order:
  1. include/tmsplan/X.hpp belongs to lib/X/ when that folder exists (plan.hpp -> plan);
  2. else to the lowest-layer folder holding an X.cpp (image.hpp -> core/image.cpp, the grid's
     methods; io/image.cpp reads and writes images);
  3. else to the lowest-layer module that includes it (data.hpp -> core/data_dir.cpp);
  4. lib/M/x.hpp is module M's private header.
The layers are listed in LAYERS below; a folder not listed there is a step (so a new step folder,
e.g. lib/cortexmap/, is placed without editing this script). A module may use modules of its own
or a lower layer, never a higher one.
"""
import argparse
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOC = "docs/architecture.md"

# (layer, modules, what the layer is); the layer named "steps" takes every unlisted folder.
LAYERS = [
    ("core", ["core"], "types, geometry frames, errors, logging, threads, clocks; no files"),
    ("io", ["io"], "files: NIfTI, DICOM, gzip, atomic writes, hashes, the run record"),
    ("foundations", ["filters", "surface", "report", "protocol", "navigators"],
     "image filters, meshes, pictures and HTML, the rTMS protocol rules, navigator file formats: "
     "no knowledge of the pipeline's steps"),
    ("steps", [], "the pipeline's steps, each one library call that a tool runs"),
    ("composition", ["plan", "cli"], "what ties steps together: the treatment plan, the tool runner"),
]
DEFAULT_LAYER = "steps"

# One line per module; a module missing here is described by the first comment line of
# include/tmsplan/<module>.hpp.
DESCRIPTIONS = {
    "core": "Grid and image types, RAS/LPS/voxel frames, errors, log, threads, progress, clocks, resampling, data dir",
    "io": "NIfTI and DICOM reading/writing, gzip, atomic writes and output sets, sha256, the JSON run record",
    "filters": "Smoothing, morphology, connected components, distance maps, thresholds on images",
    "surface": "Marching-cubes meshes, GIfTI, surface checks and cortical maps",
    "report": "QC figures (PNG), volume rendering and the HTML report's building blocks",
    "navigators": "Localite, Brainsight, ANT Neuro and TSV marker files: writing and reading back",
    "brain": "skull-strip: bias correction, head and brain masks",
    "tissue": "segment: CSF / grey / white matter labels and partial-volume maps",
    "registration": "Affine and deformable registration to MNI, MniMap, ITK transform files",
    "cortexmap": "cortex-map: subject <-> MNI transforms, atlases, surfaces and cortical maps",
    "targets": "target-pick: target library, snapping to the crown, hand-knob refinement, scalp entry, coil pose",
    "protocol": "rTMS protocols, the safety table checks (Rossi 2009, Chen 1997), the Stokes dose rule",
    "efield": "efield: coil models, sphere and BEM conductors, the field at the target, placement by field",
    "plan": "protocol-export: targets.json validated, doses, navigator files, protocol.json, the report",
    "cli": "The tool runner: common options, one error format, exit codes, shared option declarations",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(module):
    for name, modules, _ in LAYERS:
        if module in modules:
            return name
    return DEFAULT_LAYER


def rank(module):
    return [name for name, _, _ in LAYERS].index(layer_of(module))


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def lib_modules():
    cmake = read(os.path.join(ROOT, "lib", "CMakeLists.txt"))
    if not re.search(r"GLOB_RECURSE\s+\w+\s+(CONFIGURE_DEPENDS\s+)?\S*\*\.cpp", cmake):
        sys.exit("module_graph: lib/CMakeLists.txt no longer globs lib/**/*.cpp: teach this script its source list")
    modules = {}
    for entry in sorted(os.listdir(os.path.join(ROOT, "lib"))):
        folder = os.path.join(ROOT, "lib", entry)
        if not os.path.isdir(folder):
            continue
        files = []
        for dirpath, _, names in os.walk(folder):
            files += [os.path.relpath(os.path.join(dirpath, n), ROOT) for n in names if n.endswith((".cpp", ".hpp"))]
        if any(f.endswith(".cpp") for f in files):
            modules[entry] = sorted(files)
    return modules


def graph():
    """Returns (modules, edges {(from, to): [(file, header)]}, problems [str])."""
    modules = lib_modules()
    public = {os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, "include", "tmsplan")) if n.endswith(".hpp")}
    includes = {}  # file -> [(header text, resolved module or None, private?)]
    for mod, files in modules.items():
        for f in files:
            includes[f] = INCLUDE.findall(read(os.path.join(ROOT, f)))
    for stem in public:
        path = f"include/tmsplan/{stem}.hpp"
        includes[path] = INCLUDE.findall(read(os.path.join(ROOT, path)))

    # Owners of the public headers (rules 1-3 of the docstring).
    owner = {}
    for stem in sorted(public):
        if stem in modules:
            owner[stem] = stem
            continue
        same = [m for m, files in modules.items() if any(os.path.basename(f) == stem + ".cpp" for f in files)]
        if same:
            owner[stem] = min(same, key=lambda m: (rank(m), m))
            continue
        users = [m for m, files in modules.items() if any(f"tmsplan/{stem}.hpp" in includes[f] for f in files)]
        if users:
            owner[stem] = min(users, key=lambda m: (rank(m), m))

    edges = defaultdict(list)
    problems = []

    def module_of_file(f):
        if f.startswith("include/tmsplan/"):
            return owner.get(os.path.splitext(os.path.basename(f))[0])
        return f.split("/")[1]

    for f, incs in sorted(includes.items()):
        src = module_of_file(f)
        if src is None:
            continue
        for inc in incs:
            if inc.startswith("tmsplan/"):
                stem = os.path.splitext(inc[len("tmsplan/"):])[0]
                dst = owner.get(stem)
                if dst is None:
                    continue  # generated (version.hpp) or a header no module claims
            else:
                target = os.path.normpath(os.path.join(os.path.dirname(f), inc))
                if not target.startswith("lib/") or not os.path.exists(os.path.join(ROOT, target)):
                    continue
                dst = target.split("/")[1]
                if dst != src:
                    problems.append(f"{f} includes {inc}: a private header of lib/{dst}/ (give {dst} a public header)")
            if dst != src:
                edges[(src, dst)].append((f, inc))
    for (src, dst), uses in sorted(edges.items()):
        if rank(dst) > rank(src):
            for f, inc in uses:
                problems.append(f"{f} includes {inc} ({dst}, layer {layer_of(dst)}): "
                                f"{src} (layer {layer_of(src)}) may only use its own or lower layers")
    problems += cycles(modules, edges)
    return modules, owner, edges, problems


def cycles(modules, edges):
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    out, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(succ[m]):
            if state.get(n) == 1:
                out.append("modules include each other: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
    return out


def reduced(edges):
    """Edges not implied by a longer path (the picture shows these)."""
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    def reach(a, skip):
        seen, todo = set(), [n for n in succ[a] if n != skip]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += succ[n]
        return seen

    return sorted((a, b) for a, b in edges if b not in reach(a, b))


def describe(module):
    if module in DESCRIPTIONS:
        return DESCRIPTIONS[module]
    header = os.path.join(ROOT, "include", "tmsplan", module + ".hpp")
    if os.path.exists(header):
        for line in read(header).splitlines():
            text = line.strip().lstrip("/").strip()
            if line.strip().startswith("//") and text:
                return text
    return "(no description: add one to DESCRIPTIONS in scripts/dev/module_graph.py)"


def document(modules, owner, edges):
    deps = defaultdict(set)
    for a, b in edges:
        deps[a].add(b)
    lines = [
        "# Architecture: the modules of lib/ and what they use",
        "",
        "Generated by `scripts/dev/module_graph.py` from the `#include` lines of `lib/*/` and",
        "`include/tmsplan/`; `scripts/dev/module_graph.py --check` (run by `.ci/run`) fails when a lower",
        "layer includes a higher one, a module includes another's private header, modules include each",
        "other in a cycle, or this page is stale. Each folder of `lib/` is a module of the one library",
        "`tmsplan`; each tool in `tools/` declares its options and calls one step (`run(Params, OutputSet&,",
        "Record&)` or the like) through `cli::Tool::run_step`, which checks the step's outputs before it",
        "runs and writes its run record after. A public header belongs to the module named like it, else",
        "to the module with a .cpp of its name, else to the lowest module that includes it.",
        "",
        "## Layers (each uses only its own and lower layers)",
        "",
    ]
    for i, (name, _, what) in enumerate(LAYERS):
        members = sorted(m for m in modules if layer_of(m) == name)
        lines.append(f"{i}. **{name}** ({', '.join(members) or 'none'}): {what}.")
    lines += ["", "## Graph (an arrow: uses; arrows implied by longer paths left out)", "", "```mermaid",
              "flowchart BT"]
    for name, _, _ in LAYERS:
        members = sorted(m for m in modules if layer_of(m) == name)
        if members:
            lines.append(f"  subgraph {name}")
            lines += [f"    {m}" for m in members]
            lines.append("  end")
    lines += [f"  {a} --> {b}" for a, b in reduced(edges)]
    lines += ["```", "", "## Modules", "", "| module | layer | what it is | uses | public headers |",
              "|---|---|---|---|---|"]
    for name, _, _ in LAYERS:
        for m in sorted(x for x in modules if layer_of(x) == name):
            headers = ", ".join(f"`{h}.hpp`" for h in sorted(h for h, o in owner.items() if o == m))
            uses = ", ".join(sorted(deps[m], key=lambda x: (rank(x), x))) or "-"
            lines.append(f"| `lib/{m}` | {name} | {describe(m)} | {uses} | {headers or '-'} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail on a wrong-way include or a stale " + DOC)
    ap.add_argument("--print", action="store_true", help="print the edges with the files behind them")
    a = ap.parse_args()
    modules, owner, edges, problems = graph()
    if a.print:
        for (src, dst), uses in sorted(edges.items()):
            print(f"{src} -> {dst}: " + ", ".join(sorted({f for f, _ in uses})))
        return 0
    text = document(modules, owner, edges)
    path = os.path.join(ROOT, DOC)
    if a.check:
        current = read(path) if os.path.exists(path) else ""
        if current != text:
            problems.append(f"{DOC} is stale: run scripts/dev/module_graph.py")
        for p in problems:
            print("module_graph: " + p, file=sys.stderr)
        if not problems:
            print(f"module_graph: {len(modules)} modules, {len(edges)} dependencies, all downward; {DOC} current")
        return 1 if problems else 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    for p in problems:
        print("module_graph: " + p, file=sys.stderr)
    print(f"module_graph: wrote {DOC} ({len(modules)} modules, {len(edges)} dependencies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
