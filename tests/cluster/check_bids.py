#!/usr/bin/env python3
"""check_bids.py DERIVATIVES: checks the BIDS-derivatives layout rules that BIDS tools check, as far
as tmsplan writes files (docs/pipeline.md, "BIDS derivatives"). No BIDS validator is packaged in
Debian 12; these are the rules, written down. Prints one line per violation; exit 1 if any.

 1. dataset_description.json: JSON with Name, BIDSVersion, DatasetType "derivative", GeneratedBy
    (a non-empty list, each with a Name), SourceDatasets (optional; a list).
 2. Top level: only dataset_description.json, README*, CHANGES, LICENSE, .bidsignore, sub-*/ and
    what .bidsignore lists.
 3. Every other file is sub-<label>/[ses-<label>/]anat/<name>, <name> begins with the folder's
    entities (sub-<label>[_ses-<label>]), then key-value entities in BIDS order, then a known
    suffix (T1w, mask, dseg, probseg) and extension (.nii.gz, .json, .tsv).
 4. Each image has a JSON sidecar (same name, .json) with Sources: a list of bids:: URIs.
    A probseg has a label- entity; a mask sidecar's Type, when present, is Brain/Lesion/Face/ROI;
    a dseg image has a .tsv look-up table with columns index and name.
"""
import fnmatch
import json
import re
import sys
from pathlib import Path

ORDER = ["sub", "ses", "sample", "task", "acq", "ce", "trc", "stain", "rec", "dir", "run", "mod",
         "echo", "flip", "inv", "mt", "part", "proc", "hemi", "space", "split", "recording", "chunk",
         "res", "den", "label", "desc"]
SUFFIXES = {"T1w", "mask", "dseg", "probseg"}
EXTS = (".nii.gz", ".json", ".tsv")
TOP = {"dataset_description.json", ".bidsignore", "CHANGES", "LICENSE"}


def main(root):
    root = Path(root)
    bad = []
    desc_file = root / "dataset_description.json"
    try:
        desc = json.loads(desc_file.read_text())
    except (OSError, ValueError) as e:
        print(f"{desc_file}: missing or not JSON ({e})")
        return 1
    for field in ("Name", "BIDSVersion"):
        if not isinstance(desc.get(field), str) or not desc[field]:
            bad.append(f"dataset_description.json: {field} missing")
    if desc.get("DatasetType") != "derivative":
        bad.append("dataset_description.json: DatasetType is not \"derivative\"")
    gen = desc.get("GeneratedBy")
    if not isinstance(gen, list) or not gen or not all(isinstance(g, dict) and g.get("Name") for g in gen):
        bad.append("dataset_description.json: GeneratedBy must be a non-empty list of objects with Name")
    if "SourceDatasets" in desc and not isinstance(desc["SourceDatasets"], list):
        bad.append("dataset_description.json: SourceDatasets must be a list")

    ignore = []
    if (root / ".bidsignore").exists():
        ignore = [l.strip() for l in (root / ".bidsignore").read_text().splitlines() if l.strip() and not l.startswith("#")]

    def ignored(rel):
        dirs = rel.split("/")[:-1]
        for pat in ignore:
            if pat.endswith("/"):  # a folder (at any depth) and everything in it
                if any(fnmatch.fnmatch(d, pat[:-1]) for d in dirs):
                    return True
            elif fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel.split("/")[-1], pat):
                return True
        return False

    images = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        parts = rel.split("/")
        if ignored(rel):
            continue
        if len(parts) == 1:
            if rel not in TOP and not rel.startswith("README"):
                bad.append(f"{rel}: not allowed at the top level")
            continue
        m = re.fullmatch(r"(sub-[A-Za-z0-9]+)(?:/(ses-[A-Za-z0-9]+))?/anat/([^/]+)", rel)
        if not m:
            bad.append(f"{rel}: not in sub-<label>/[ses-<label>/]anat/")
            continue
        prefix = m.group(1) + (f"_{m.group(2)}" if m.group(2) else "")
        name = m.group(3)
        ext = next((e for e in EXTS if name.endswith(e)), None)
        if not ext:
            bad.append(f"{rel}: extension not one of {', '.join(EXTS)}")
            continue
        stem = name[: -len(ext)]
        *entities, suffix = stem.split("_")
        if not stem.startswith(prefix + "_"):
            bad.append(f"{rel}: does not begin with {prefix}_")
        if suffix not in SUFFIXES:
            bad.append(f"{rel}: suffix {suffix} not one of {sorted(SUFFIXES)}")
        keys = []
        for e in entities:
            kv = re.fullmatch(r"([a-z]+)-([A-Za-z0-9]+)", e)
            if not kv or kv.group(1) not in ORDER:
                bad.append(f"{rel}: {e} is not an entity")
                continue
            keys.append(kv.group(1))
        if keys != sorted(keys, key=ORDER.index) or len(set(keys)) != len(keys):
            bad.append(f"{rel}: entities not in BIDS order or repeated ({'_'.join(keys)})")
        if ext == ".nii.gz":
            images += 1
            sidecar = path.with_name(stem + ".json")
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                bad.append(f"{rel}: no JSON sidecar ({sidecar.name})")
                meta = {}
            src = meta.get("Sources")
            if not isinstance(src, list) or not src or not all(isinstance(s, str) and s.startswith("bids:") for s in src):
                bad.append(f"{sidecar.name}: Sources must be a list of bids:: URIs")
            if suffix == "probseg" and "label" not in keys:
                bad.append(f"{rel}: probseg without label-")
            if suffix == "mask" and "Type" in meta and meta["Type"] not in ("Brain", "Lesion", "Face", "ROI"):
                bad.append(f"{sidecar.name}: Type {meta['Type']}")
            if suffix == "dseg":
                tsv = path.with_name(stem + ".tsv")
                head = tsv.read_text().splitlines()[0].split("\t") if tsv.exists() else []
                if head[:2] != ["index", "name"]:
                    bad.append(f"{rel}: no look-up table {tsv.name} with columns index, name")
    if images == 0:
        bad.append("no images found under sub-*/")
    for b in bad:
        print(b)
    print(f"check_bids: {root}: {images} images, {len(bad)} violation(s)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check_bids.py DERIVATIVES", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
