#!/usr/bin/env bash
# The bert workload through the CLI: two training shards from
# tests/data/bert_corpus.txt, then 30 smoke steps with LAMB and with AdamW
# over both, each reducing the masked-LM loss (mean of the last 5 logged
# losses below the first 5's) and writing a complete schema-v1 file with the
# masked-LM and NSP accuracies; an epoch covers both shards; K-FAC takes
# the encoder's Linear layers and skips the rest; a run starts
# from another run's checkpoint with run.init_from; synthetic sequences of data.seq_len; bad --data, a pattern that
# matches no shard and shards of other lengths than data.seq_len exit 2
# with one line.
source "$(dirname "$0")/lib.sh"
CORPUS=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../data/bert_corpus.txt")

check "data bert makes tiny shards" "$OPTBENCH" data bert --corpus "$CORPUS" --out shards --vocab-size 300 --dupe 5 \
  --seq 64 --eval-frac 0.2 --shards 2
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

# One epoch of batch 8 over both training shards (54 + 55 sequences) is 13
# steps; over one of them, 6. A run logs every step here.
epoch_steps() {
  bert --optimizer lamb --epochs 1 --set run.log_every=1 --set run.eval_every=1 --out "$@" > /dev/null 2>&1
  $H5READ rows "$1" train
}
check "the shards hold 54 and 55 sequences" \
  bash -c "[ \"\$(/usr/bin/python3 -c 'import h5py; print(*(len(h5py.File(f\"shards/train_00{i}.h5\")[\"input_ids\"]) for i in (0, 1)))')\" = '54 55' ]"
check "one epoch over both shards: 13 steps" test "$(epoch_steps both.h5)" = 13
check "one epoch over train_000.h5 alone: 6 steps" test "$(epoch_steps only0.h5 --set data.train_files=train_000.h5)" = 6
check "synthetic sequences of data.seq_len 96 with 12 predictions: 2 steps" \
  bert --optimizer adamw --max-steps 2 --data synthetic --set data.seq_len=96 --set data.max_pred=12 --out synthetic.h5
expect_rejected "a pattern that matches no shard" "shards/part_\*.hdf5: no shard matches" \
  bert --optimizer lamb --max-steps 2 --set data.train_files='part_*.hdf5' --out nomatch.h5
check "  no output file" test ! -e nomatch.h5
expect_rejected "shards of another length than data.seq_len" \
  "the training shards hold sequences of 64 tokens with 20 predictions; data.seq_len and data.max_pred ask for 128" \
  bert --optimizer lamb --max-steps 2 --set data.seq_len=128 --out wronglength.h5
expect_rejected "synthetic sequences longer than the model's positions" "data.seq_len: 512 tokens, more than the preset's 128 positions" \
  bert --optimizer lamb --max-steps 2 --data synthetic --set data.seq_len=512 --out toolong.h5

# K-FAC on BERT as KAISA ran it: the encoder's Linear layers only (6 per
# layer: query, key, value, attention output, intermediate, output), the
# embeddings, pooler and heads skipped by the preset's kfac.skip_layers. The
# checkpoint names each K-FAC layer's factors.
kfac_layers() { strings "$1" | sed -n 's/^kfac\.\(.*\)\.A$/\1/p' | sort -u; }
check "lamb + K-FAC: 4 smoke steps with a checkpoint" \
  bert --optimizer lamb --precond kfac --max-steps 4 --checkpoint-every 4 --out kfac.h5
ENCODER_LINEAR='^encoder\.layer\.[01]\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$'
check "  12 K-FAC layers, all encoder Linear layers" test "$(kfac_layers kfac.h5.ckpt | grep -cE "$ENCODER_LINEAR")" -eq 12
check "  nothing else (embeddings, pooler, heads)" test "$(kfac_layers kfac.h5.ckpt | wc -l)" -eq 12

# run.init_from: a "phase 2" starts from a "phase 1" checkpoint's weights.
# With lr 1e-12 its one step moves nothing visible, so its evaluation loss
# is phase 1's last; a run from the workload's initialisation is not.
last_eval_loss() { $H5READ column "$1" eval loss | tail -1; }
# same_loss A B: the two hex floats within 1e-6 relative
same_loss() { /usr/bin/python3 -c 'import sys; a, b = (float.fromhex(x) for x in sys.argv[1:]); sys.exit(abs(a - b) > 1e-6 * abs(a))' "$1" "$2"; }
other_loss() { ! same_loss "$1" "$2"; }
bert --optimizer lamb --max-steps 3 --checkpoint-every 3 --out phase1.h5 > /dev/null 2>&1
bert --optimizer lamb --max-steps 1 --set lamb.lr=1e-12 --set run.init_from=phase1.h5.ckpt --out phase2.h5 > /dev/null 2>&1
bert --optimizer lamb --max-steps 1 --set lamb.lr=1e-12 --out fresh.h5 > /dev/null 2>&1
check "run.init_from: phase 1's checkpoint written" test -s phase1.h5.ckpt
check "run.init_from: the run evaluates as phase 1 ended" same_loss "$(last_eval_loss phase1.h5)" "$(last_eval_loss phase2.h5)"
check "  a run from initialisation does not" other_loss "$(last_eval_loss phase1.h5)" "$(last_eval_loss fresh.h5)"
check "  the path is in the recorded config" bash -c "$H5READ attr phase2.h5 config | grep -q '^init_from = phase1.h5.ckpt'"
expect_rejected "run.init_from a checkpoint of another model" "checkpoint phase1.h5.ckpt: holds 0 of this run's [0-9]+ weights" \
  "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --max-steps 1 --set run.init_from=phase1.h5.ckpt --out other.h5
check "  no output file" test ! -e other.h5

bert --optimizer lamb --max-steps 2 --data no-such-dir --out bad.h5 > stdout.txt 2> stderr.txt
code=$?
check "bad --data: exit 2 (got $code)" test "$code" -eq 2
check "bad --data: one line on stderr" test "$(wc -l < stderr.txt)" -eq 1
check "bad --data: no output file" test ! -e bad.h5
