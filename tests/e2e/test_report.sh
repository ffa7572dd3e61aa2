#!/usr/bin/env bash
# optbench report through the CLI on real smoke runs: the Markdown and CSV
# tables, the plots (pixel size, curves in the SVG), a run that is still
# running, and the one-line errors with exit 2.
source "$(dirname "$0")/lib.sh"

# 4 steps evaluated every 2 (two eval points, so each run draws a curve).
short() { smoke --max-steps 4 --set run.eval_every=0.25 --set data.eval_limit=32 "$@" > /dev/null 2>&1; }
mkdir -p runs
short --seed 1 --out runs/sgd-1.h5
short --seed 2 --out runs/sgd-2.h5
short --seed 1 --precond kfac --out runs/kfac-1.h5
# Killed at step 1: the file stays "running".
short --seed 3 --set debug.kill_at_step=1 --out runs/sgd-3.h5

"$OPTBENCH" report runs > report.md 2> report.err
check "md: exit 0" test $? -eq 0
check "md: the header" grep -q "^| workload | preset | configuration | ranks | runs | converged |" report.md
check "md: sgd pools 2 final seeds" grep -Eq "^\| resnet50 \| smoke \| sgd \| 1 \| 2 \| 0/2 \|" report.md
check "md: sgd+kfac is its own row" grep -Eq "^\| resnet50 \| smoke \| sgd\+kfac \| 1 \| 1 \|" report.md
check "md: the running run is listed" grep -qx -- "- runs/sgd-3.h5: running" report.md
check "md: nothing on stderr" test ! -s report.err

"$OPTBENCH" report runs/sgd-1.h5 runs/kfac-1.h5 --format csv --out report.csv
check "csv: exit 0" test $? -eq 0
check "csv: a header and 2 rows of equal width" /usr/bin/python3 -c "
import csv, sys
rows = list(csv.reader(open('report.csv')))
sys.exit(not (len(rows) == 3 and len({len(r) for r in rows}) == 1 and rows[0][:3] == ['workload', 'preset', 'configuration']))"

"$OPTBENCH" report runs --plot plots > plot.out 2>&1
check "plot: exit 0" test $? -eq 0
for name in convergence time_to_target memory_vs_comm; do
  for ext in png svg; do
    check "plot: $name.$ext written and non-empty" test -s plots-$name.$ext
    check "plot: $name.$ext path printed" grep -qx "plot: plots-$name.$ext" plot.out
  done
  check "plot: $name.png is 1000x700" /usr/bin/python3 -c "
import struct, sys
head = open('plots-$name.png', 'rb').read(24)
sys.exit(not (head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR' and struct.unpack('>II', head[16:24]) == (1000, 700)))"
  check "plot: $name.svg is 1000x700" grep -q 'width="1000px" height="700px"' plots-$name.svg
done
# Curves are the SVG's strokes of width 2: one per final run (3), besides the legend's samples.
curves=$(grep -c 'stroke-width:2;' plots-convergence.svg)
check "plot: at least 3 curves in the convergence SVG (found $curves)" test "$curves" -ge 3

expect_fail() { # expect_fail "description" "message start" args...
  local what=$1 message=$2
  shift 2
  "$OPTBENCH" report "$@" > fail.out 2> fail.err
  local rc=$?
  check "$what: exit 2" test $rc -eq 2
  check "$what: one line" test "$(wc -l < fail.err)" -eq 1
  check "$what: says why" grep -q "^optbench: report: $message" fail.err
  check "$what: nothing on stdout" test ! -s fail.out
}
expect_fail "unwritable plot directory" "cannot create plot no_such_dir/p-convergence.png" runs --plot no_such_dir/p
check "unwritable plot directory: no plot left" test ! -e no_such_dir
expect_fail "missing file" "cannot read runs/none.h5" runs/none.h5
printf 'not hdf5\n' > corrupt.h5
expect_fail "corrupt file" "corrupt.h5 is not an HDF5 file" corrupt.h5
mkdir empty
expect_fail "no run files" "directory empty holds no .h5 run files" empty
expect_fail "no arguments" "expected run files or directories"
expect_fail "bad flag" "unknown flag --colour" runs --colour
expect_fail "bad format" "--format: expected md or csv" runs --format xml

# The shipped suite files (the report's inputs: quickstart, workstation,
# references, paper suites) all load and expand.
for suite in "$(dirname "$0")"/../../suite/*.ini "$(dirname "$0")"/../../suite/*/*.ini; do
  check "suite $(basename "$suite") --dry-run" "$OPTBENCH" suite "$suite" --dry-run
done
check "the dry runs wrote nothing" test ! -e runs/quickstart
