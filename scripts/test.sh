#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), makes the sample heads, then runs every test.
# Tests that need ../shared/data, the samples or mricron-data skip (ctest: "Skipped") when it is
# absent; with CI=true a summary line is printed and a skipped test fails the run (below).
# Packages only the tests need (label "cluster": a private one-node SLURM running the Snakemake
# workflow; label "install": man for the installed page; python3-nibabel for the GIfTI check of
# test_surface; clang-format for scripts/dev/check-format.sh) are installed here, not by setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMSPLAN_EXTRA_PACKAGES="${TMSPLAN_EXTRA_PACKAGES:-} slurm-wlm munge snakemake man-db clang-format python3-nibabel"
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR/bin/make-samples" --out "$BUILD_DIR/samples" --quiet
cd "$BUILD_DIR"
if [ "${CI:-}" != true ]; then
  exec ctest --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
fi
# CI: say how many ran, and fail when a test CI is meant to run was skipped. CI has ../shared/data
# beside the clone and mricron-data installed, so only the tests labelled "cluster" (a private
# SLURM) and "install" (dpkg/cpack/man) may skip there, for their environment.
rc=0
ctest --output-on-failure -j "$(nproc)" --output-junit ctest-junit.xml ${CTEST_ARGS:-} || rc=$?
ctest --show-only=json-v1 ${CTEST_ARGS:-} > ctest-tests.json
python3 - ctest-junit.xml ctest-tests.json <<'PY' || rc=$((rc == 0 ? 1 : rc))
import json, sys, xml.etree.ElementTree as ET
allowed_labels = {"cluster", "install"}
labels = {}
for t in json.load(open(sys.argv[2])).get("tests", []):
    for p in t.get("properties", []):
        if p.get("name") == "LABELS":
            labels[t["name"]] = set(p.get("value", []))
passed, failed, skipped, bad = 0, 0, 0, []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    status = case.get("status")
    if case.find("skipped") is not None or status in ("notrun", "disabled"):
        skipped += 1
        if not labels.get(case.get("name"), set()) & allowed_labels:
            bad.append(case.get("name"))
    elif status == "fail" or case.find("failure") is not None:
        failed += 1
    else:
        passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
for name in bad:
    print(f"skipped in CI (only labels {sorted(allowed_labels)} may skip): {name}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
exit "$rc"
