#!/usr/bin/python3
"""Prints the SHA-256 of one named tensor's data in an optbench checkpoint,
for the e2e tests (harness/checkpoint.c: each tensor is stored as a u64 name
length, the name, a u64 dtype, a u64 element count and the raw data).

  ckpt_tensor.py FILE NAME
"""
import hashlib
import struct
import sys

DTYPE_BYTES = {0: 4, 1: 8, 2: 4, 3: 1, 4: 2, 5: 2}  # F32, F64, I32, U8, F16, BF16


def main(path, name):
    data = open(path, "rb").read()
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.find(key)
    if at < 0:
        print(f"{path}: no tensor {name}", file=sys.stderr)
        return 1
    at += len(key)
    dtype, numel = struct.unpack_from("<QQ", data, at)
    at += 16
    print(hashlib.sha256(data[at : at + numel * DTYPE_BYTES[dtype]]).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
