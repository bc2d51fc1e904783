#!/usr/bin/env bash
# plan-subject.sh T1 OUTDIR [--target NAME ...] [--snap crown|nearest] [--protocol NAME] [--rmt PCT]
#                 [--coil NAME|FILE] [--efield-model bem|sphere] [--no-efield] [--threads N] [--force]
#
# Runs the six tools in order (efield between target-pick and protocol-export; --no-efield skips it) and fills OUTDIR as described in docs/pipeline.md (DESIGN.md 8).
# T1 is a NIfTI file or a DICOM series folder. Resumes: a step whose record lists the current
# sha256 of each of its inputs is not redone (--force redoes everything). Defaults: targets
# M1_hand_left and DLPFC_BA46, snap crown, protocol passard2007, coil fig8-70, efield model bem; see --help of each tool.
set -euo pipefail
# The tools: TMSPLAN_BIN when set; else next to this script when installed (<prefix>/bin/tmsplan-plan);
# else the source tree's build/bin (BUILD_DIR relative to it when set).
self=$(readlink -f "$0")
here=$(cd "$(dirname "$self")/.." && pwd)
if [ -n "${TMSPLAN_BIN:-}" ]; then
  BIN=$TMSPLAN_BIN
elif [ -x "$(dirname "$self")/skull-strip" ]; then
  BIN=$(dirname "$self")
else
  case ${BUILD_DIR:-build} in /*) BIN=$BUILD_DIR/bin ;; *) BIN=$here/${BUILD_DIR:-build}/bin ;; esac
fi
[ -x "$BIN/skull-strip" ] || { echo "plan-subject: error: tmsplan tools not found ($BIN): build them (scripts/setup.sh) or set TMSPLAN_BIN" >&2; exit 1; }
usage() {
  echo "usage: plan-subject.sh T1 OUTDIR [--target NAME ...] [--snap crown|nearest] [--protocol NAME|FILE] [--rmt PCT] [--coil NAME|FILE] [--efield-model bem|sphere] [--no-efield] [--threads N] [--force]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
T1=$1; OUT=$2; shift 2
THREADS=0; FORCE=(); TARGETS=(); SNAP=crown; PROTOCOL=passard2007; RMT=(); COIL=fig8-70; EMODEL=bem; EFIELD=1
while [ $# -gt 0 ]; do
  case $1 in
    --threads) [ $# -ge 2 ] || usage; THREADS=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage; TARGETS+=(--target "$2"); shift 2 ;;
    --snap) [ $# -ge 2 ] || usage; SNAP=$2; shift 2 ;;
    --protocol) [ $# -ge 2 ] || usage; PROTOCOL=$2; shift 2 ;;
    --rmt) [ $# -ge 2 ] || usage; RMT=(--rmt "$2"); shift 2 ;;
    --coil) [ $# -ge 2 ] || usage; COIL=$2; shift 2 ;;
    --efield-model) [ $# -ge 2 ] || usage; EMODEL=$2; shift 2 ;;
    --no-efield) EFIELD=0; shift ;;
    --force) FORCE=(--force); shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) usage ;;
  esac
done
# Options checked here are refused before any step runs (the tools would refuse them only when
# their step comes).
case $SNAP in crown | nearest) ;; *) echo "plan-subject: error: --snap must be crown or nearest ($SNAP)" >&2; exit 2 ;; esac
case $EMODEL in bem | sphere) ;; *) echo "plan-subject: error: --efield-model must be bem or sphere ($EMODEL)" >&2; exit 2 ;; esac
if [ ${#RMT[@]} -gt 0 ] && ! awk -v v="${RMT[1]}" 'BEGIN { exit !(v ~ /^[0-9]+([.][0-9]*)?$/ && v >= 1 && v <= 100) }'; then
  echo "plan-subject: error: --rmt must be a number from 1 to 100 (% MSO) (${RMT[1]})" >&2; exit 2
fi
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(--target M1_hand_left --target DLPFC_BA46)
# known TOOL LIST-OPTION FLAG WHAT NAME...: each NAME must be one the tool lists (asked once).
known() {
  local tool=$1 list=$2 flag=$3 what=$4 names n
  shift 4
  names=$("$BIN/$tool" "$list") || { echo "plan-subject: error: $tool $list failed" >&2; exit 1; }
  for n in "$@"; do
    grep -qxF -- "$n" <<<"$names" || { echo "plan-subject: error: $flag $n is $what (known: $(echo $names | sed 's/ /, /g'))" >&2; exit 2; }
  done
}
NAMES=(); for ((i = 1; i < ${#TARGETS[@]}; i += 2)); do NAMES+=("${TARGETS[i]}"); done
known target-pick --list-targets --target "not in the target library" "${NAMES[@]}"
[ -f "$PROTOCOL" ] || known protocol-export --list-protocols --protocol "neither a preset protocol nor a file" "$PROTOCOL"
[ "$EFIELD" = 0 ] || [ -f "$COIL" ] || known efield --list-coils --coil "neither a coil preset nor a file" "$COIL"
[ -e "$T1" ] || { echo "plan-subject: error: input does not exist ($T1)" >&2; exit 1; }
mkdir -p "$OUT"
COMMON=(--threads "$THREADS" --quiet)

# fingerprint PATH: sha256 of a file, or of a folder's sorted file list and contents (as the tools
# record for a DICOM folder).
fingerprint() {
  if [ -d "$1" ]; then
    (cd "$1" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum) | sha256sum | cut -d' ' -f1
  else
    sha256sum "$1" | cut -d' ' -f1
  fi
}
# up_to_date RECORD OPTIONS-STRING INPUT...: the record exists, was made with the same options,
# and names each input's current hash.
up_to_date() {
  local record=$1 options=$2; shift 2
  [ ${#FORCE[@]} -eq 0 ] && [ -f "$record" ] || return 1
  [ -f "$record.options" ] && [ "$(cat "$record.options")" = "$options" ] || return 1
  local f
  for f in "$@"; do
    [ -d "$f" ] && { grep -q "\"path\": \"$(cd "$f" && pwd)\"" "$record" || return 1; continue; }
    grep -q "$(fingerprint "$f")" "$record" || return 1
  done
}
note() { printf 'plan-subject: %s\n' "$*" >&2; }
# run STEP RECORD OPTIONS-STRING INPUTS... -- COMMAND...
run() {
  local step=$1 record=$2 options=$3; shift 3
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  if up_to_date "$record" "$options" "${inputs[@]}"; then note "$step: up to date"; return; fi
  note "$step"
  local start=$SECONDS
  "$@" --force >/dev/null
  echo "$options" > "$record.options"
  note "$step: $((SECONDS - start)) s"
}

run skull-strip "$OUT/skull_strip.json" "" "$T1" -- \
  "$BIN/skull-strip" "$T1" -o "$OUT" "${COMMON[@]}"
run segment "$OUT/segment.json" "" "$OUT/t1w_biascorr.nii.gz" "$OUT/brain_mask.nii.gz" -- \
  "$BIN/segment" --t1 "$OUT/t1w_biascorr.nii.gz" --mask "$OUT/brain_mask.nii.gz" -o "$OUT" "${COMMON[@]}"
run cortex-map "$OUT/cortex_map.json" "" "$OUT/t1w_biascorr.nii.gz" "$OUT/brain_mask.nii.gz" "$OUT/head_mask.nii.gz" "$OUT/dseg.nii.gz" -- \
  "$BIN/cortex-map" --t1 "$OUT/t1w_biascorr.nii.gz" --brain "$OUT/brain_mask.nii.gz" --head "$OUT/head_mask.nii.gz" \
  --dseg "$OUT/dseg.nii.gz" -o "$OUT" "${COMMON[@]}"
run target-pick "$OUT/target_pick.json" "${TARGETS[*]} snap $SNAP" "$OUT/t1w_biascorr.nii.gz" "$OUT/cortex_map.json" \
  "$OUT/dseg.nii.gz" "$OUT/probseg_gm.nii.gz" -- \
  "$BIN/target-pick" -s "$OUT" "${TARGETS[@]}" --snap "$SNAP" "${COMMON[@]}"
PLAN_TARGETS=$OUT/targets.json
if [ "$EFIELD" = 1 ]; then
  run efield "$OUT/efield.json" "$COIL $EMODEL ${RMT[*]}" "$OUT/targets.json" "$OUT/brain_mask.nii.gz" "$OUT/pial.surf.gii" -- \
    "$BIN/efield" -s "$OUT" --coil "$COIL" --model "$EMODEL" "${RMT[@]}" "${COMMON[@]}"
  PLAN_TARGETS=$OUT/targets_efield.json
fi
run protocol-export "$OUT/plan/protocol_export.json" "$PROTOCOL ${RMT[*]}" "$PLAN_TARGETS" -- \
  "$BIN/protocol-export" --targets "$PLAN_TARGETS" --t1 "$T1" --protocol "$PROTOCOL" "${RMT[@]}" -o "$OUT" "${COMMON[@]}"
note "report: $OUT/plan/report.html"
