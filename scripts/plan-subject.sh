#!/usr/bin/env bash
# plan-subject.sh T1 OUTDIR [--threads N] [--force]
# Runs the tools in order into OUTDIR (the folder layout of docs/pipeline.md). A step whose
# record exists and whose input hashes match is not redone, so a second run resumes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TMSPLAN_BIN:-$here/build/bin}
usage() { echo "usage: plan-subject.sh T1 OUTDIR [--threads N] [--force]" >&2; exit 2; }
[ $# -ge 2 ] || usage
T1=$1; OUT=$2; shift 2
THREADS=0; FORCE=()
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --force) FORCE=(--force); shift ;;
    *) usage ;;
  esac
done
mkdir -p "$OUT"

# up_to_date RECORD INPUT...: the record exists and lists each input with its current sha256.
up_to_date() {
  local record=$1; shift
  [ -f "$record" ] || return 1
  [ ${#FORCE[@]} -eq 0 ] || return 1
  local f sum
  for f in "$@"; do
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    grep -q "$sum" "$record" || return 1
  done
}

step() { printf 'plan-subject: %s\n' "$*" >&2; }

if up_to_date "$OUT/skull_strip.json" "$T1"; then step "skull-strip: up to date"; else
  step "skull-strip"
  "$BIN/skull-strip" "$T1" -o "$OUT" --threads "$THREADS" --force >/dev/null
fi
if [ -x "$BIN/segment" ]; then
  if up_to_date "$OUT/segment.json" "$OUT/t1w_biascorr.nii.gz" "$OUT/brain_mask.nii.gz"; then step "segment: up to date"; else
    step "segment"
    "$BIN/segment" --t1 "$OUT/t1w_biascorr.nii.gz" --mask "$OUT/brain_mask.nii.gz" -o "$OUT" --threads "$THREADS" --force >/dev/null
  fi
fi
