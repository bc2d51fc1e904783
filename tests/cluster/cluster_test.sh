#!/usr/bin/env bash
# cluster_test.sh SOURCE_DIR BUILD_DIR: the BIDS workflow on a real SLURM scheduler (ctest label
# "cluster"). Starts a private one-node SLURM (tests/cluster/slurm-local.sh), runs
# scripts/workflow/Snakefile with the profile scripts/workflow/profiles/slurm on a small BIDS demo
# (make-bids-demo.sh --small: two 2 mm subjects and a broken one), then checks: every step of every
# subject ran as its own SLURM job on the node (sacct --completion, from jobcomp/filetxt); each good
# subject's derivatives; the broken subject reported alone; the BIDS layout (check_bids.py); a rerun
# submits nothing. The efield step uses the quick sphere model (BEM: ~1 min more per subject);
# TMSPLAN_CLUSTER_CONFIG adds workflow config (e.g. "efield=false"). Exit 77 (ctest SKIP) when SLURM, munge or Snakemake are missing or SLURM cannot
# start here; 1 on any failed check. Daemons are stopped on exit, whatever happens.
set -euo pipefail
SRC=$(cd "$1" && pwd); BUILD=$(cd "$2" && pwd)
skip() { echo "cluster: SKIP: $*"; exit 77; }
fail() { echo "cluster: FAIL: $*" >&2; exit 1; }
command -v snakemake >/dev/null || skip "snakemake not installed (apt-get install snakemake; scripts/test.sh installs it)"
command -v sacct >/dev/null || skip "slurm-wlm not installed"
[ -f "$BUILD/samples/small-2mm.nii.gz" ] || fail "samples missing ($BUILD/samples): run make-samples (scripts/test.sh does)"

T=$(mktemp -d "${TMPDIR:-/tmp}/tmsplan-cluster.XXXXXX")
source "$SRC/tests/cluster/slurm-local.sh"
finish() {
  local code=$?
  slurm_down
  if [ $code -eq 0 ] || [ $code -eq 77 ] || [ -n "${KEEP_CLUSTER_TEST:-}" ]; then
    [ -n "${KEEP_CLUSTER_TEST:-}" ] && echo "cluster: kept $T" || rm -rf "$T"
  else
    echo "cluster: logs kept in $T" >&2
    tail -n 5 "$T"/slurm/slurmctld.log "$T"/slurm/slurmd.log 2>/dev/null | sed 's/^/cluster:   /' >&2 || true
  fi
  exit $code
}
trap finish EXIT
trap 'exit 130' INT TERM

start=$SECONDS
rc=0; slurm_up "$T/slurm" || rc=$?
[ $rc -eq 0 ] || { [ $rc -eq 77 ] && skip "SLURM cannot start here: $SLURM_LOCAL_WHY"; fail "slurm_up: status $rc"; }
host=$(hostname -s)

SAMPLES=$BUILD/samples "$SRC/scripts/workflow/make-bids-demo.sh" --small "$T/bids" >/dev/null
OUT=$T/bids/derivatives/tmsplan
mkdir -p "$T/run"
cd "$T/run"   # Snakemake's working directory (.snakemake/, job logs)
# CI=true: Snakemake 7 then checks job states every second instead of every 10 s (executors/
# __init__.py, sleep()); the five steps of a subject follow one another, so this is most of the wait.
sm() {
  CI=true snakemake -s "$SRC/scripts/workflow/Snakefile" --profile "$SRC/scripts/workflow/profiles/slurm" \
    --config bids="$T/bids" bin="$BUILD/bin" threads=1 efield_model=sphere ${TMSPLAN_CLUSTER_CONFIG:-} \
    --jobs 4 --nocolor "$@"
}
echo "cluster: workflow on 3 subjects through SLURM ($((SECONDS - start)) s)"
sm >"$T/run1.log" 2>&1 || { tail -n 30 "$T/run1.log" >&2; fail "snakemake failed (log above)"; }
echo "cluster: first run done ($((SECONDS - start)) s)"

# Every step of every subject: one SLURM job, COMPLETED on this node.
steps=(skull-strip segment cortex-map target-pick efield protocol-export)
[[ " ${TMSPLAN_CLUSTER_CONFIG:-} " == *" efield=false "* ]] && steps=(skull-strip segment cortex-map target-pick protocol-export)
subjects=(sub-01 sub-02_ses-01 sub-03)
sacct -c -P -n --format=JobID,JobName,State,ExitCode,NodeList >"$T/sacct.txt" || fail "sacct --completion failed"
sacct -c --format=JobID,JobName%38,State,ExitCode,NodeList,Elapsed | sed 's/^/cluster: sacct: /'
jobs=$(wc -l <"$T/sacct.txt")
[ "$jobs" -eq $((${#steps[@]} * ${#subjects[@]})) ] || fail "$jobs SLURM jobs, expected $((${#steps[@]} * ${#subjects[@]})) (one per subject and step)"
for s in "${subjects[@]}"; do
  for st in "${steps[@]}"; do
    grep -q "|tmsplan-$st-$s|COMPLETED|0:0|$host\$" "$T/sacct.txt" || fail "no COMPLETED job tmsplan-$st-$s on $host"
  done
done

# Each good subject's derivatives; the broken one reported alone.
summary=$OUT/summary.tsv
sed 's/^/cluster: summary: /' "$summary"
for d in sub-01/anat/sub-01 sub-02/ses-01/anat/sub-02_ses-01; do
  for f in desc-biascorr_T1w.nii.gz desc-biascorr_T1w.json desc-brain_mask.nii.gz dseg.nii.gz dseg.tsv \
           label-GM_probseg.nii.gz desc-tms_targets.json plan/report.html plan/protocol.json; do
    [ -s "$OUT/${d}_$f" ] || fail "missing $OUT/${d}_$f"
  done
done
[ ! -e "$OUT/sub-03" ] || fail "the broken subject has derivatives ($OUT/sub-03)"
[ "$(grep -c $'\tok\t' "$summary")" -eq 2 ] || fail "expected 2 subjects ok in $summary"
[ "$(grep -c $'\tFAILED\t' "$summary")" -eq 1 ] || fail "expected exactly 1 subject FAILED in $summary"
grep -q $'^sub-03\tFAILED\tskull-strip\tskull-strip: error: ' "$summary" || fail "sub-03 not reported as failing in skull-strip with the tool's error"
grep -q "sub-03 FAILED at skull-strip" "$T/run1.log" || fail "the run's output does not name the failed subject"

# BIDS derivatives layout.
python3 "$SRC/tests/cluster/check_bids.py" "$OUT" || fail "BIDS layout rules (check_bids.py) violated"
# ... and the checker can fail: a copy with a sidecar removed and a misnamed image.
bad=$T/bad-derivatives
mkdir -p "$bad"
cp -r "$OUT/dataset_description.json" "$OUT/.bidsignore" "$OUT/sub-01" "$bad/"
rm "$bad/sub-01/anat/sub-01_dseg.json"
mv "$bad/sub-01/anat/sub-01_label-GM_probseg.nii.gz" "$bad/sub-01/anat/sub-01_probseg-GM.nii.gz"
if python3 "$SRC/tests/cluster/check_bids.py" "$bad" >"$T/bad.txt" 2>&1; then fail "check_bids.py passes a broken layout"; fi
grep -q "sub-01_dseg.nii.gz: no JSON sidecar" "$T/bad.txt" && grep -q "sub-01_probseg-GM" "$T/bad.txt" \
  || { cat "$T/bad.txt" >&2; fail "check_bids.py misses a violation"; }

# A rerun submits nothing.
sm >"$T/run2.log" 2>&1 || { tail -n 20 "$T/run2.log" >&2; fail "rerun failed"; }
grep -q "Nothing to be done" "$T/run2.log" || { tail -n 20 "$T/run2.log" >&2; fail "rerun did something"; }
sleep 1
after=$(sacct -c -P -n --format=JobID | wc -l)
[ "$after" -eq "$jobs" ] || fail "rerun submitted $((after - jobs)) job(s)"
echo "cluster: rerun submitted nothing; $jobs jobs in all; $((SECONDS - start)) s"
