#!/usr/bin/env bash
# Submits suite cluster: one job array per rank count, then the collect
# job, which starts once every array has ended (afterany).
# Written by `optbench suite --emit-sbatch` from ci/slurm/submit.sh.in.
set -euo pipefail
cd "$(dirname "$0")"
arrays=()
for script in array-r1.sbatch array-r4.sbatch; do
  id=$(sbatch --parsable "$script")
  arrays+=("${id%%;*}") # --parsable prints ID or ID;CLUSTER
  echo "$script: job ${id%%;*}"
done
after=$(IFS=:; echo "${arrays[*]}")
id=$(sbatch --parsable --dependency="afterany:$after" collect.sbatch)
echo "collect.sbatch: job ${id%%;*}, after $after"
