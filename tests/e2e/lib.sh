# Shared by the e2e tests: $OPTBENCH is the binary, $WORK a fresh directory,
# and check/expect_fail count results and print "N passed, M failed" at exit.
set -u
OPTBENCH=$(realpath "$1")
H5READ="/usr/bin/python3 $(dirname "${BASH_SOURCE[0]}")/h5read.py"
WORK=$(mktemp -d)
cd "$WORK"
passed=0
failed=0
trap 'rm -rf "$WORK"; echo "$passed passed, $failed failed"; [ $failed -eq 0 ]' EXIT

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

# Smoke runs are short: few steps, 2 threads.
smoke() { "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --threads 2 "$@"; }
