#!/usr/bin/python3
"""Independent read-back of optbench run files with h5py, for the e2e tests.

  h5read.py schema FILE          check every schema-v1 attribute and table (exit 1 if not)
  h5read.py attr FILE NAME       print a root attribute
  h5read.py column FILE TABLE COLUMN
                                 print a column, one value per line, as exact hex floats
  h5read.py rows FILE TABLE      print a table's row count
  h5read.py table FILE TABLE     print a table, one row per line, fields separated by spaces
                                 (strings as text, floats as repr, integers in decimal)
"""
import sys

import h5py
import numpy as np

ROOT_ATTRIBUTES = [
    "schema_version", "optbench_version", "git_commit", "created_utc", "hostname", "cpu_model",
    "gpu_model", "world_size", "threads", "workload", "preset", "optimizer", "precond", "precision",
    "loss_scale", "seed", "global_batch_size", "config", "target_metric", "target_value",
    "target_direction", "status", "time_to_target_s", "steps_to_target", "epochs_to_target", "params",
]
TABLES = {
    "train": ["step", "epoch", "samples", "train_s", "loss", "lr", "loss_scale", "grad_norm"],
    "eval": ["step", "epoch", "train_s", "eval_s", "metric", "loss"],
    "memory": ["rank", "category", "peak_bytes"],
    "timing": ["rank", "phase", "seconds", "calls"],
    "comm": ["rank", "op", "category", "bytes", "calls", "seconds"],
    "events": ["time_ms", "key", "value"],
    "precision": ["step", "layer", "loss_scale", "values", "underflow_frac", "overflow_frac"],
}


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def field(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return text(value)


def schema(path):
    problems = []
    with h5py.File(path, "r") as f:
        for name in ROOT_ATTRIBUTES:
            if name not in f.attrs:
                problems.append(f"missing root attribute {name}")
        if f.attrs.get("schema_version") != 1:
            problems.append("schema_version is not 1")
        for table, columns in TABLES.items():
            if table not in f:
                problems.append(f"missing table /{table}")
                continue
            names = list(f[table].dtype.names)
            if names[: len(columns)] != columns:
                problems.append(f"/{table} columns {names}, expected {columns} first")
    for p in problems:
        print(p)
    return 1 if problems else 0


def main(argv):
    command, path = argv[1], argv[2]
    if command == "schema":
        return schema(path)
    with h5py.File(path, "r") as f:
        if command == "attr":
            value = f.attrs[argv[3]]
            print(text(value) if not isinstance(value, (float, np.floating)) else repr(float(value)))
        elif command == "column":
            for v in f[argv[3]][argv[4]]:
                print(float(v).hex() if isinstance(v, (float, np.floating)) else text(v))
        elif command == "rows":
            print(f[argv[3]].shape[0])
        elif command == "table":
            for row in f[argv[3]]:
                print(" ".join(field(v) for v in row))
        else:
            print(f"unknown command {command}")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
