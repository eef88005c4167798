#!/usr/bin/env python3
"""Dev script (not run by CI): writes tests/golden/gguf_smollm2.json, the `gguf` package's dequantization of
every tensor of a GGUF file, as per-tensor type, row-major shape, sum, sum of |x|, sum of squares (float64
over the f32 values) and the first and last 16 values. tests/core/test_gguf.cpp compares ladder's reader
with it when LADDER_SMOLLM2_GGUF names the file.

    /path/to/venv/bin/python scripts/make_gguf_fixture.py SmolLM2-135M-Instruct.Q4_1.gguf [OUT.json]

Needs: gguf, numpy (pip install gguf).
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main():
    path = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/golden/gguf_smollm2.json"
    r = GGUFReader(path)
    ref = {}
    for t in r.tensors:
        v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        d = v.astype(np.float64)
        ref[t.name] = {
            "type": t.tensor_type.name,
            "shape": [int(x) for x in reversed(t.shape.tolist())],
            "sum": float(d.sum()),
            "abs_sum": float(np.abs(d).sum()),
            "sum_sq": float((d * d).sum()),
            "head": [float(x) for x in v[:16]],
            "tail": [float(x) for x in v[-16:]],
        }
    with open(out, "w") as f:
        json.dump(ref, f, indent=0)
    print(f"{out}: {len(ref)} tensors of {path}")


if __name__ == "__main__":
    main()
