#!/usr/bin/env python3
"""Dev script (not run by CI): writes tests/golden/gguf_smollm2.json, the `gguf` package's dequantization of
every tensor of a GGUF file, as per-tensor type, row-major shape, sum, sum of |x|, sum of squares (float64
over the f32 values) and the first and last 16 values. tests/core/test_gguf.cpp compares ladder's reader
with it when LADDER_SMOLLM2_GGUF names the file; tests/core/test_gguf_gemma3.cpp does the same with
tests/golden/gguf_gemma3.json and LADDER_GEMMA3_GGUF (scripts/fetch_gemma3.sh's file).

    /path/to/venv/bin/python scripts/make_gguf_fixture.py SmolLM2-135M-Instruct.Q4_1.gguf [OUT.json]
    /path/to/venv/bin/python scripts/make_gguf_fixture.py gemma-3-270m-q4_k_m.gguf tests/golden/gguf_gemma3.json
    /path/to/venv/bin/python scripts/make_gguf_fixture.py --kquant-blocks [OUT.json]

--kquant-blocks writes tests/golden/gguf_kquant_blocks.json instead: two blocks each of Q4_K, Q5_K and Q6_K
made of random bytes (seed 7) with their f16 scales set to finite values in [-0.05, 0.05], hex-encoded, with
the gguf package's dequantize() of them.

Needs: gguf, numpy (pip install gguf).
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def kquant_blocks(out):
    from gguf import GGMLQuantizationType as Q
    rng = np.random.default_rng(7)
    ref = {}
    # per type: block bytes and the byte offsets of its f16 scale fields
    for q, nbytes, f16_at in ((Q.Q4_K, 144, (0, 2)), (Q.Q5_K, 176, (0, 2)), (Q.Q6_K, 210, (208,))):
        raw = bytearray(rng.integers(0, 256, size=2 * nbytes, dtype=np.uint8).tobytes())
        for blk in range(2):
            for a in f16_at:
                raw[blk * nbytes + a:blk * nbytes + a + 2] = np.float16(rng.uniform(-0.05, 0.05)).tobytes()
        data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
        v = dequantize(data, q).astype(np.float32).reshape(-1)
        ref[q.name] = {"code": int(q.value), "hex": bytes(raw).hex(), "values": [float(x) for x in v]}
    with open(out, "w") as f:
        json.dump(ref, f, indent=0)
    print(f"{out}: {', '.join(ref)}")


def main():
    if sys.argv[1] == "--kquant-blocks":
        return kquant_blocks(sys.argv[2] if len(sys.argv) > 2 else "tests/golden/gguf_kquant_blocks.json")
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
