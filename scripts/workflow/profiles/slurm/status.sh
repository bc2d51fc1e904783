#!/usr/bin/env bash
# status.sh JOBID: Snakemake's --cluster-status for SLURM: prints running, success or failed.
# scontrol knows jobs until MinJobAge after they end; sacct (accounting, or --completion with
# jobcomp/filetxt) afterwards.
jobid=$1
state=$(scontrol show job "$jobid" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1)
if [ -z "$state" ]; then
  state=$(sacct -n -X -P -j "$jobid" -o State 2>/dev/null | head -1)
  [ -n "$state" ] || state=$(sacct -c -n -P -j "$jobid" -o State 2>/dev/null | head -1)
fi
case ${state%% *} in
  COMPLETED) echo success ;;
  FAILED|CANCELLED*|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|REVOKED) echo failed ;;
  "") echo failed ;;  # neither scontrol nor sacct knows it: lost, do not wait forever
  *) echo running ;;
esac
