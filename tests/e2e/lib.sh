# Shared by the e2e tests: $OPTBENCH is the binary, $WORK a fresh directory,
# and check/expect_fail count results and print "N passed, M failed" at exit.
set -u
# ctest -j2 runs two tests at once on 2 cores, each at --threads 2. libgomp's
# default spin-waiting then burns the cores the other threads need: measured
# on a loaded 2-core machine, test_smoke_run took 143 s instead of 23 s, and
# a 6-step K-FAC run spent 80 s instead of 1.4-2.4 s in its eigen-
# decompositions (OpenBLAS's ssyevd opens many small parallel regions).
# Passive waiting changes no result, only the time; a caller's setting wins.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
OPTBENCH=$(realpath "$1")
H5READ="/usr/bin/python3 $(realpath "$(dirname "${BASH_SOURCE[0]}")")/h5read.py" # still valid after the cd below
WORK=$(mktemp -d)
cd "$WORK"
passed=0
failed=0
# An EXIT trap's own status does not become the script's: exit explicitly.
trap 'rm -rf "$WORK"; echo "$passed passed, $failed failed"; [ $failed -eq 0 ] && exit 0; exit 1' EXIT

check() { # check "description" command...
  local what=$1
  shift
  if "$@" > check.out 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what"
    sed 's/^/  /' check.out | tail -20
  fi
}

# expect_rejected "description" "stderr pattern (ERE)" command...: the
# bad-input rule, exit code 2 and one line on stderr that names the thing.
expect_rejected() {
  local what=$1 pattern=$2
  shift 2
  "$@" > stdout.txt 2> stderr.txt
  local code=$?
  check "$what: exit code 2 (got $code)" test "$code" -eq 2
  check "$what: one line on stderr" test "$(wc -l < stderr.txt)" -eq 1
  check "$what: message names it ($pattern)" grep -qE -e "$pattern" stderr.txt
}

# Smoke runs are short: few steps, 2 threads.
smoke() { "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --threads 2 "$@"; }
