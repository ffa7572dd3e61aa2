#!/usr/bin/env bash
# optbench suite through the CLI: the dry run, a 2-run local suite, skipping
# what is final, and resuming after a crashed run and after Ctrl-C.
source "$(dirname "$0")/lib.sh"

# A suite file $1 of 2-step smoke runs, one per seed in $2.
write_suite() {
  printf '[suite]\nthreads = 1\n[run sgd]\npreset = smoke\nseeds = %s\nrun.max_steps = 2\ndata.eval_limit = 32\n' \
    "$2" > "$1"
}
final_status() { $H5READ attr "$1" status | grep -Eqx 'converged|budget_exhausted|diverged'; }

write_suite two.ini "1, 2"
"$OPTBENCH" suite two.ini --dry-run > dry.out 2>&1
check "dry run exits 0" test $? -eq 0
check "dry run: one line per run" test "$(wc -l < dry.out)" -eq 2
check "dry run: the exact command" grep -qxF "sgd/s1-r1: $OPTBENCH run --preset smoke --seed 1 --set run.max_steps=2 \
--set data.eval_limit=32 --out runs/two/sgd/s1-r1.h5 --threads 1" dry.out
check "dry run writes nothing" test ! -e runs

# --only: the runs of the named sections (names or patterns), for every form.
printf '[run sgd]\npreset = smoke\n[run fp16-a]\npreset = smoke\n[run fp16-b]\npreset = smoke\n' > only.ini
"$OPTBENCH" suite only.ini --dry-run --only 'fp16-*' > only.out 2>&1
check "--only: exit 0" test $? -eq 0
check "--only 'fp16-*': the two fp16 runs and nothing else" \
  test "$(grep -c '^fp16-[ab]/s1-r1: ' only.out)" -eq 2 -a "$(wc -l < only.out)" -eq 2
"$OPTBENCH" suite only.ini --dry-run --only sgd,fp32 > only_bad.out 2>&1
check "--only with an unknown name: exit 2" test $? -eq 2
check "--only with an unknown name: one line naming it and the suite's runs" grep -qxF \
  "optbench: suite: --only fp32: no [run NAME] of suite only matches it; its runs are sgd, fp16-a, fp16-b" only_bad.out
check "--only with an unknown name: only that line" test "$(wc -l < only_bad.out)" -eq 1
check "--only with --emit-sbatch" "$OPTBENCH" suite only.ini --only fp16-b --emit-sbatch only_sbatch
check "--emit-sbatch --only: one task, the chosen run" \
  grep -qx "  0) out=runs/only/fp16-b/s1-r1.h5; args=(--preset smoke --seed 1) ;;" only_sbatch/array-r1.sbatch
check "--emit-sbatch --only: the collect job summarises the same runs" \
  grep -q "suite .*/only.ini --summary --only fp16-b |" only_sbatch/collect.sbatch

printf '[run a]\nranks = 0\n' > bad.ini
"$OPTBENCH" suite bad.ini --dry-run > bad.out 2>&1
check "bad suite: exit 2" test $? -eq 2
check "bad suite: file:line and what was expected" grep -q "^optbench: suite: bad.ini:2: ranks: expected" bad.out

"$OPTBENCH" suite two.ini > two.out 2>&1
check "2-run suite exits 0" test $? -eq 0
check "summary: every run final" grep -q "^2 of 2 runs final (runs/two)" two.out
for seed in 1 2; do
  check "s$seed: final status" final_status runs/two/sgd/s$seed-r1.h5
done
"$OPTBENCH" suite two.ini > again.out 2>&1
check "second pass exits 0" test $? -eq 0
check "second pass skips both" test "$(grep -c 'skip (budget_exhausted)' again.out)" -eq 2
"$OPTBENCH" suite two.ini --summary > summary.out
check "--summary: exit 0 when all final" test $? -eq 0
# Job arrays hold only the runs that are not final yet.
check "--emit-sbatch: nothing to submit when all are final" "$OPTBENCH" suite two.ini --emit-sbatch sbatch
check "--emit-sbatch: ... and writes nothing" test ! -e sbatch
rm runs/two/sgd/s2-r1.h5
check "--emit-sbatch: one run left" "$OPTBENCH" suite two.ini --emit-sbatch sbatch
check "--emit-sbatch: a one-task array" grep -qx "#SBATCH --array=0-0" sbatch/array-r1.sbatch
check "--emit-sbatch: the task is the missing run" grep -q "^  0) out=runs/two/sgd/s2-r1.h5;" sbatch/array-r1.sbatch
check "--emit-sbatch: submit.sh is executable" test -x sbatch/submit.sh

# A run that crashes (SIGKILL at step 1) leaves its file saying running; the
# suite goes on with the next run and ends with 1.
crash_suite() { # $1: the crash section's extra line
  printf '[suite]\nthreads = 1\nrun.max_steps = 2\ndata.eval_limit = 32\n' > crash.ini
  printf '[run crash]\npreset = smoke\n%s\n[run sgd]\npreset = smoke\nseeds = 1, 2\n' "$1" >> crash.ini
}
crash_suite "debug.kill_at_step = 1"
"$OPTBENCH" suite crash.ini > crash.out 2>&1
check "a crashed run: exit 1" test $? -eq 1
check "the crashed run says running" grep -Eq "^crash/s1-r1 +running" crash.out
check "the runs after it went on" grep -q "^2 of 3 runs final" crash.out
crash_suite ""
"$OPTBENCH" suite crash.ini > resume.out 2>&1
check "resume: exit 0" test $? -eq 0
check "resume: the final runs are skipped" test "$(grep -c 'skip (budget_exhausted)' resume.out)" -eq 2
check "resume: the crashed one runs again, over its file" grep -q "^\[1/3\] crash/s1-r1: .* --force$" resume.out
check "resume: all final" grep -q "^3 of 3 runs final" resume.out

# Ctrl-C in the middle of the second run stops it and the suite.
write_suite int.ini "1, 2, 3"
"$OPTBENCH" suite int.ini > int.out 2>&1 &
suite_pid=$!
for _ in $(seq 1 300); do grep -q '^\[2/3\]' int.out && break; sleep 0.1; done
kill -INT $suite_pid
wait $suite_pid
check "Ctrl-C: exit 130" test $? -eq 130
check "Ctrl-C: the suite says it stopped" grep -q "^suite stopped by signal 2" int.out
check "Ctrl-C: the first run is final" final_status runs/int/sgd/s1-r1.h5
check "Ctrl-C: the third never started" test ! -e runs/int/sgd/s3-r1.h5
check "Ctrl-C: no run left behind" bash -c "! grep -qs '[r]uns/int/sgd/s2-r1.h5' /proc/[0-9]*/cmdline"
"$OPTBENCH" suite int.ini > int_resume.out 2>&1
check "after Ctrl-C: resume exits 0" test $? -eq 0
check "after Ctrl-C: the first run is skipped" grep -q "^\[1/3\] sgd/s1-r1: skip" int_resume.out
check "after Ctrl-C: all final" grep -q "^3 of 3 runs final" int_resume.out
