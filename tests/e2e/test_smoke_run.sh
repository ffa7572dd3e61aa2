#!/usr/bin/env bash
# A smoke run through the CLI writes a complete schema-v1 file.
source "$(dirname "$0")/lib.sh"

check "smoke run exits 0" smoke --max-steps 8 --out run.h5
smoke --max-steps 8 --out run.h5 --force > stdout.txt 2>stderr.txt
check "stdout names the HDF5 file" grep -q "^hdf5: run.h5" stdout.txt
check "time-to-accuracy line printed" grep -q "^time-to-accuracy:" stdout.txt
check "non-TTY progress is plain log lines" grep -q "^eval  epoch" stderr.txt
check "schema v1 complete (h5py)" $H5READ schema run.h5
check "status is final" bash -c "$H5READ attr run.h5 status | grep -Eq '^(budget_exhausted|converged)$'"
check "8 train rows" bash -c "[ \$($H5READ rows run.h5 train) = 8 ]"
check "eval row written" bash -c "[ \$($H5READ rows run.h5 eval) -ge 1 ]"
check "losses finite" bash -c "$H5READ column run.h5 train loss | grep -vqiE 'nan|inf'"
check "config attribute holds the resolved INI" bash -c "$H5READ attr run.h5 config | grep -q '^batch_size = 32'"
check "memory has peak_rss and categories" bash -c "$H5READ column run.h5 memory category | grep -q peak_rss"
check "timing has every phase" bash -c "[ \$($H5READ rows run.h5 timing) = 10 ]"
check "params attribute" bash -c "[ \$($H5READ attr run.h5 params) = 1483898 ]"
check "list presets: full ResNet-50 count" bash -c "'$OPTBENCH' list presets | grep -E '^resnet50 +full +25557032 '"
check "list presets: workstation count" bash -c "'$OPTBENCH' list presets | grep -E '^resnet50 +workstation +1483898 '"
