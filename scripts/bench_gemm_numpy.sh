#!/usr/bin/env bash
# bench_gemm_numpy.sh: numpy's GEMM (its bundled OpenBLAS, a different build from the system one ladder
# links) on the shapes `ladder bench` takes its BLAS ceiling from, to check that ceiling against another
# library on the same machine. Prints GFLOP/s per shape, fastest run of each over ~0.2 s, 2 rounds.
#   PYTHON=/path/to/venv/bin/python THREADS=2 bash scripts/bench_gemm_numpy.sh
# PYTHON needs numpy only (python3 -m venv v && v/bin/pip install numpy).
set -euo pipefail
PYTHON="${PYTHON:-python3}"
THREADS="${THREADS:-2}"
OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" "$PYTHON" - <<'PY'
import time, numpy as np
d, ffn = 384, 1536  # all-MiniLM-L6-v2
shapes = []
for n in (4096, 2048):  # forward B*T and training B*T of ladder bench's defaults
    for i, o in ((d, d), (d, ffn), (ffn, d)):
        shapes += [(f"{n}x{o}x{i} NT", lambda n=n, i=i, o=o: (np.ones((n, i), np.float32), np.ones((o, i), np.float32).T)),
                   (f"{n}x{i}x{o} NN", lambda n=n, i=i, o=o: (np.ones((n, o), np.float32), np.ones((o, i), np.float32))),
                   (f"{o}x{i}x{n} TN", lambda n=n, i=i, o=o: (np.ones((n, o), np.float32).T, np.ones((n, i), np.float32)))]
shapes.append(("2048x2048x2048 NN", lambda: (np.ones((2048, 2048), np.float32), np.ones((2048, 2048), np.float32))))
best = {}
for _ in range(2):
    for name, make in shapes:
        a, b = make()
        flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
        a @ b
        t_end = time.perf_counter() + 0.2
        runs = 0
        while runs < 3 or time.perf_counter() < t_end:
            t0 = time.perf_counter(); a @ b; s = time.perf_counter() - t0
            best[name] = max(best.get(name, 0.0), flops / s * 1e-9); runs += 1
print(f"numpy {np.__version__}: " + np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("openblas configuration", "?"))
for name, _ in shapes:
    print(f"  {name:<20} {best[name]:7.1f} GFLOP/s")
top = max(best, key=best.get)
print(f"fastest: {top} {best[top]:.1f} GFLOP/s")
PY
