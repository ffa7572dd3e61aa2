#!/usr/bin/env bash
# SIGTERM and SIGINT end a run as `aborted`, with the file closed and valid.
source "$(dirname "$0")/lib.sh"

for sig in TERM INT; do
  # The binary itself, not the smoke() wrapper, so $! is optbench's pid.
  "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --threads 2 --max-steps 100000 \
    --epochs 1000 --out $sig.h5 > $sig.out 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q "^eval" $sig.out 2>/dev/null && break; sleep 0.2; done
  kill -$sig $pid
  wait $pid
  code=$?
  check "SIG$sig: exit code 130" test "$code" -eq 130
  check "SIG$sig: status aborted" bash -c "[ \"\$($H5READ attr $sig.h5 status)\" = aborted ]"
  check "SIG$sig: file validates" $H5READ schema $sig.h5
  check "SIG$sig: one clear line" grep -q "aborted by signal" $sig.out
done
