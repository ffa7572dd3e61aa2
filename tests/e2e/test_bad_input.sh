#!/usr/bin/env bash
# Bad input: exit code 2, one line on stderr naming the thing and what was
# expected, and no output file left behind.
source "$(dirname "$0")/lib.sh"
FMNIST=/usr/share/datasets/fashion-mnist

# expect_bad "description" "stderr pattern" args...
expect_bad() {
  local what=$1 pattern=$2
  shift 2
  rm -f out.h5
  expect_rejected "$what" "$pattern" smoke --out out.h5 --max-steps 2 "$@"
  check "$what: no output file" test ! -e out.h5
}

expect_bad "unknown workload" 'run.workload: expected one of resnet50, bert, got "vgg"' --workload vgg
expect_bad "unknown optimizer" 'run.optimizer: expected one of .*got "adam9"' --optimizer adam9
expect_bad "unknown preset" 'run.preset: expected one of .*got "tiny"' --preset tiny
expect_bad "unknown flag" 'unknown flag --bogus' --bogus
expect_bad "unknown --set key" 'unknown config key "sgd.lrr"' --set sgd.lrr=1
expect_bad "lr <= 0" 'sgd.lr: expected a number > 0' --set sgd.lr=0
expect_bad "batch 0" 'run.batch_size: expected an integer >= 1' --batch-size 0
expect_bad "negative epochs" 'run.epochs: expected a number > 0' --epochs -1
expect_bad "missing value" '--seed: expected a value' --seed
expect_bad "missing dataset" '/nonexistent-data.*(No such file|cannot open)' --data /nonexistent-data
expect_bad "missing config file" 'nope.ini' --config nope.ini

mkdir -p truncated wrongmagic
cp $FMNIST/*.gz truncated/ && cp $FMNIST/*.gz wrongmagic/
zcat $FMNIST/train-images-idx3-ubyte.gz | head -c 100000 | gzip > truncated/train-images-idx3-ubyte.gz
printf '\x00\x00\x08\x42\x00\x00\xea\x60' | gzip > wrongmagic/train-labels-idx1-ubyte.gz
expect_bad "truncated IDX" 'train-images-idx3-ubyte.gz.*truncated' --data truncated
expect_bad "wrong-magic IDX" 'train-labels-idx1-ubyte.gz.*(magic|not an IDX)' --data wrongmagic

rm -f out.h5
smoke --out /nonexistent-dir/run.h5 --max-steps 2 > stdout.txt 2> stderr.txt
code=$?
check "unwritable output: exit 2" test "$code" -eq 2
check "unwritable output: names the file" grep -q "/nonexistent-dir/run.h5" stderr.txt

check "first run creates the output" smoke --out exists.h5 --max-steps 2
cp exists.h5 exists.copy
smoke --out exists.h5 --max-steps 2 > stdout.txt 2> stderr.txt
code=$?
check "existing output: exit 2" test "$code" -eq 2
check "existing output: says --force" grep -q "exists (use --force" stderr.txt
check "existing output: left untouched" cmp exists.h5 exists.copy
check "--force overwrites" smoke --out exists.h5 --max-steps 2 --force
