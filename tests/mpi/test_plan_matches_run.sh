# `optbench plan` predicts what a run holds and moves: 2- and 4-rank K-FAC
# runs (KAISA COMM-OPT and DP-KFAC on 2 ranks, HYBRID-OPT and MEM-OPT on 4)
# and a 2-rank SGD run with synchronized batch-norm log per-rank /comm bytes
# by category and /memory peaks that must equal the plan's per-rank figures
# for the same config and step count; COMM-OPT also runs with bf16 factors and
# fp16 inverses (kfac.factor_dtype/inv_dtype), which halves both. The issue
# allows 2%; the counts are exact by construction, so the test wants them
# equal to the byte.
source "$(dirname "$0")/../e2e/lib.sh"

STEPS=5
COMMON=(--workload resnet50 --preset smoke --optimizer sgd --threads 1 --max-steps $STEPS
        --set kfac.factor_update_steps=2 --set kfac.inv_update_steps=3 --set dist.bucket_mb=0.5)

compare() { # compare RUN.h5 PLAN.csv STRATEGY RANKS
  /usr/bin/python3 - "$@" <<'PY'
import csv, sys
import h5py
run, plan, strategy, ranks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [r for r in csv.DictReader(open(plan)) if r["strategy"] == strategy and int(r["ranks"]) == ranks]
assert len(rows) == ranks, f"plan has {len(rows)} rows for {strategy} x {ranks}"
with h5py.File(run, "r") as f:
    comm, memory = f["comm"][:], f["memory"][:]
def measured_comm(rank, category):
    return sum(int(r["bytes"]) for r in comm if r["rank"] == rank and r["category"].decode() == category)
def measured_memory(rank, category):
    return sum(int(r["peak_bytes"]) for r in memory if r["rank"] == rank and r["category"].decode() == category)
bad = 0
for row in rows:
    rank = int(row["rank"])
    pairs = [(measured_comm(rank, c), float(row[c + "_comm_bytes"]), "comm " + c)
             for c in ("grads", "batchnorm", "factors", "inverses")]
    pairs.append((measured_comm(rank, "precond_grads"), float(row["precond_comm_bytes"]), "comm precond_grads"))
    pairs += [(measured_memory(rank, c), float(row[c + "_bytes"]), "memory " + c)
              for c in ("kfac_factors", "kfac_inverses", "comm_buffers", "params", "grads", "optimizer_state")]
    if strategy == "none" and measured_comm(rank, "batchnorm") == 0:
        print(f"none x{ranks} rank {rank}: no batchnorm traffic measured under dist.sync_batchnorm")
        bad += 1
    for got, want, what in pairs:
        ok = got == want
        print(f"{strategy} x{ranks} rank {rank} {what}: run {got} plan {want:.0f} {'ok' if ok else 'MISMATCH'}")
        bad += not ok
sys.exit(1 if bad else 0)
PY
}

for case in 2:comm-opt 2:comm-opt-narrow 2:dp-kfac 4:hybrid-opt 4:mem-opt 2:none; do
  ranks=${case%%:*} strategy=${case#*:}
  {
    case $strategy in
      comm-opt) flags=(--precond kfac --set kfac.grad_worker_frac=1) ;;
      comm-opt-narrow) flags=(--precond kfac --set kfac.grad_worker_frac=1
                              --set kfac.factor_dtype=bf16 --set kfac.inv_dtype=fp16) ;;
      hybrid-opt) flags=(--precond kfac --set kfac.grad_worker_frac=0.5) ;;
      mem-opt) flags=(--precond kfac --set kfac.grad_worker_frac=$(/usr/bin/python3 -c "print(1/$ranks)")) ;;
      dp-kfac) flags=(--precond dp-kfac) ;;
      none) flags=(--set dist.sync_batchnorm=true) ;; # no K-FAC: the plan's label is run.precond
    esac
    label=${strategy%-narrow} # the plan labels rows by strategy, not by storage dtype
    strategies=$([ "$strategy" = none ] || echo "--strategies $label")
    check "$strategy on $ranks ranks runs" \
      mpirun -np $ranks --oversubscribe "$OPTBENCH" run "${COMMON[@]}" "${flags[@]}" --out run.h5 --force
    check "plan for $strategy on $ranks ranks" \
      sh -c "\"$OPTBENCH\" plan ${COMMON[*]} ${flags[*]} --ranks $ranks --steps $STEPS --per-rank --format csv \
             $strategies > plan.csv"
    check "run and plan agree: $strategy on $ranks ranks" compare run.h5 plan.csv $label $ranks
  }
done
