#!/usr/bin/env bash
# A real Slurm run of suite/smoke.ini: this script starts a one-node cluster on
# localhost from nothing (munged with its own key, slurmctld, slurmd, all in a
# temporary directory on free ports), submits the job arrays that
# `optbench suite --emit-sbatch` writes (2 MPI ranks per task under mpirun),
# waits for every job, checks each task's HDF5 file, and stops every daemon
# on exit. No mock scheduler: Debian's slurm-wlm and munge (ci/setup).
set -u
OPTBENCH=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
H5READ="/usr/bin/python3 $SOURCE_DIR/tests/e2e/h5read.py"
export PATH="$PATH:/usr/sbin:/sbin"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

for tool in munged mungekey slurmctld slurmd sbatch squeue sinfo scancel mpirun; do
  if ! command -v $tool > /dev/null; then
    echo "FAIL: $tool not found: this test needs Debian's slurm-wlm, munge and openmpi-bin (ci/setup installs them)"
    exit 1
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  # slurmd starts each job as its owner, which takes root.
  echo "SKIP: a Slurm cluster needs root to start jobs (CI runs this test as root)"
  exit 77
fi

WORK=$(mktemp -d /tmp/optbench-slurm.XXXXXX)
source "$HERE/cluster.sh"
trap 'cluster_stop; rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM # a ctest timeout, too, stops the daemons

passed=0
failed=0
check() { # check "description" command...
  if "${@:2}" > "$WORK/check.out" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1"
    sed 's/^/  /' "$WORK/check.out" | tail -20
  fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ $failed -eq 0 ]
}

start=$SECONDS
if ! cluster_start; then
  echo "FAIL: the one-node cluster did not come up"
  cluster_logs
  exit 1
fi
echo "cluster up in $((SECONDS - start)) s"

# Open MPI refuses root without these; sbatch passes the environment on.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$WORK/project"
cd "$WORK/project" || exit 1
check "emit the job arrays" "$OPTBENCH" suite "$SOURCE_DIR/suite/smoke.ini" --emit-sbatch sbatch
check "submit.sh submits the array and the collect job" bash sbatch/submit.sh
cat "$WORK/check.out"

if ! cluster_wait_empty 180; then
  failed=$((failed + 1))
  echo "FAIL: jobs still queued after 180 s"
  squeue
fi
echo "jobs done $((SECONDS - start)) s after the start"

runs=$("$OPTBENCH" suite "$SOURCE_DIR/suite/smoke.ini" --dry-run | cut -d: -f1)
check "the suite has 2 runs" test "$(echo "$runs" | wc -l)" -eq 2
for run in $runs; do
  file=runs/smoke/$run.h5
  check "$run: HDF5 written" test -f "$file"
  check "$run: final status" bash -c "$H5READ attr $file status | grep -Eqx 'converged|budget_exhausted|diverged'"
  check "$run: 2 ranks" bash -c "[ \"\$($H5READ attr $file world_size)\" = 2 ]"
  check "$run: schema v1" $H5READ schema "$file"
done
check "the collect job wrote the summary" grep -q "^2 of 2 runs final" sbatch/summary.txt
check "one log per array task" test "$(ls sbatch/smoke-r2-*_*.out | wc -l)" -eq 2
[ $failed -eq 0 ] || cluster_logs
finish
