#!/usr/bin/env bash
# The bert workload through the CLI: shards from tests/data/bert_corpus.txt,
# then 30 smoke steps with LAMB and with AdamW, each reducing the masked-LM
# loss (mean of the last 5 logged losses below the first 5's) and writing
# a complete schema-v1 file with the masked-LM and NSP accuracies; bad
# --data exits 2 with one line.
source "$(dirname "$0")/lib.sh"
CORPUS=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../data/bert_corpus.txt")

check "data bert makes tiny shards" "$OPTBENCH" data bert --corpus "$CORPUS" --out shards --vocab-size 300 --dupe 5 \
  --seq 64 --eval-frac 0.2
bert() { "$OPTBENCH" run --workload bert --preset smoke --data shards --threads 2 "$@"; }

# decreases FILE.h5: mean of the last 5 training losses < mean of the first 5
decreases() {
  $H5READ column "$1" train loss | /usr/bin/python3 -c '
import sys
loss = [float.fromhex(line) for line in sys.stdin if line.strip()]
first, last = sum(loss[:5]) / 5, sum(loss[-5:]) / 5
print(f"{len(loss)} losses, first 5: {first:.4f}, last 5: {last:.4f}")
sys.exit(not (len(loss) >= 10 and last < first))'
}

# in_unit_interval FILE.h5: eval rows exist, their accuracies in [0, 1]
in_unit_interval() {
  $H5READ column "$1" eval metric > metric.txt
  $H5READ column "$1" eval nsp_accuracy > nsp.txt
  cat metric.txt nsp.txt | /usr/bin/python3 -c '
import sys
values = [float.fromhex(line) for line in sys.stdin if line.strip()]
print(values)
sys.exit(not (len(values) >= 2 and all(0 <= v <= 1 for v in values)))'
}

for optimizer in lamb adamw; do
  check "$optimizer: 30 smoke steps" bert --optimizer $optimizer --max-steps 30 --out $optimizer.h5
  check "$optimizer: the loss decreases" decreases $optimizer.h5
  check "$optimizer: schema v1 complete (h5py)" $H5READ schema $optimizer.h5
  check "$optimizer: masked-LM and NSP accuracies evaluated" in_unit_interval $optimizer.h5
  check "$optimizer: metric name" test "$($H5READ attr $optimizer.h5 target_metric)" = mlm_accuracy
done

bert --optimizer lamb --max-steps 2 --data no-such-dir --out bad.h5 > stdout.txt 2> stderr.txt
code=$?
check "bad --data: exit 2 (got $code)" test "$code" -eq 2
check "bad --data: one line on stderr" test "$(wc -l < stderr.txt)" -eq 1
check "bad --data: no output file" test ! -e bad.h5
