#!/usr/bin/env bash
# bench_lst_store.sh: Ladder Side-Tuning on SST-2 (all-MiniLM-L6-v2, batch 32, max length 64) for one epoch
# over the first N training sentences, online (the backbone runs every step) and from the activation store
# (`ladder cache` once, then `ladder train --cache.use true`): the cost of writing the store, epoch time and
# memory both ways, and the dev accuracy of each. The two trainings alternate REPEAT times (online, store,
# online, store, ...) and the table shows each one's fastest epoch, with every epoch time listed below it:
# on a shared VM one run can be 30% slower than the next for reasons outside the process.
#   N=8000 THREADS=2 REPEAT=3 [CHECKSUM=true|false] bash scripts/bench_lst_store.sh
# CHECKSUM sets cache.checksum for the store (unset: ladder's default).
# Results: runs/lst_store/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-8000}"
THREADS="${THREADS:-2}"
REPEAT="${REPEAT:-3}"
BUILD_DIR="${LADDER_BUILD_DIR:-build}"
MODEL=$(bash scripts/fetch_minilm.sh | tail -n1)
OUT=runs/lst_store
rm -rf "$OUT"
mkdir -p "$OUT"
common=(--config examples/sst2_lst.ini --model.dir "$MODEL" --task.max_train_examples "$N" --train.epochs 1
        --train.threads "$THREADS" --eval.every 0 --checkpoint.resume false --cache.dir "$OUT/cache")
echo "== cache" >&2
"$BUILD_DIR/ladder" cache "${common[@]}" ${CHECKSUM:+--cache.checksum "$CHECKSUM"} --checkpoint.dir "$OUT/cache_run" --log.report "$OUT/cache.json" > "$OUT/cache.log" 2>&1
# Let the kernel finish writing the store back to disk before timing anything: its writeback would otherwise
# share the two cores with the runs below (it slowed both by about 25% here).
sync
for r in $(seq 1 "$REPEAT"); do
  echo "== online ($r/$REPEAT)" >&2
  "$BUILD_DIR/ladder" train "${common[@]}" --checkpoint.dir "$OUT/online_$r" > "$OUT/online_$r.log" 2>&1
  echo "== from the store ($r/$REPEAT)" >&2
  "$BUILD_DIR/ladder" train "${common[@]}" --checkpoint.dir "$OUT/stored_$r" --cache.use true > "$OUT/stored_$r.log" 2>&1
done
python3 - "$N" "$REPEAT" <<'PY'
import json, sys
n, repeat = sys.argv[1], int(sys.argv[2])
c = json.load(open("runs/lst_store/cache.json"))
runs = {k: [json.load(open(f"runs/lst_store/{k}_{r}/report.json")) for r in range(1, repeat + 1)] for k in ("online", "stored")}
fastest = {k: min(v, key=lambda r: r["timings"]["train_steps_s"]) for k, v in runs.items()}
on, st = fastest["online"], fastest["stored"]
mib = lambda b: b / 2**20
med = lambda k: sorted(r["timings"]["train_steps_s"] for r in runs[k])[len(runs[k]) // 2]
def row(name, r):
    steps = r["metrics"]["steps"]; loop = r["timings"]["median_step_ms"]
    mem = {x["category"]: x["peak_bytes"] for x in r["memory"] if x["device"] == "cpu"}
    return (f"| {name} | {steps} | {r['timings']['train_steps_s']:.2f} s | {r['timings']['wall_s']:.1f} s | {loop:.1f} ms | {mib(r['memory_peak_total_bytes']):.1f} | "
            f"{mib(mem.get('frozen weights', 0)):.1f} | {mib(r['peak_rss_bytes']):.1f} | {100*r['metrics']['final_eval']['accuracy']:.2f}% |")
out = [f"LST, SST-2 first {n} training sentences, one epoch, batch 32, max length 64, f16 store\n",
       f"store: train {c['metrics']['train']['rows']} rows in {c['metrics']['train']['seconds']:.1f} s, "
       f"{c['metrics']['train']['bytes']/2**30:.2f} GiB on disk; dev {c['metrics']['dev']['rows']} rows, {c['metrics']['dev']['bytes']/2**20:.0f} MiB\n",
       "| run | steps | epoch (training steps) | wall (load + epoch + eval) | median step | tracked peak MiB | peak frozen weights MiB | peak RSS MiB | dev acc |",
       "|---|---|---|---|---|---|---|---|---|", row("online", on), row("from the store", st),
       f"\nfastest of {repeat} alternating runs each; every epoch (s): online "
       + ", ".join(f"{r['timings']['train_steps_s']:.2f}" for r in runs["online"]) + "; from the store "
       + ", ".join(f"{r['timings']['train_steps_s']:.2f}" for r in runs["stored"]),
       f"epoch time online / from the store: {on['timings']['train_steps_s'] / st['timings']['train_steps_s']:.2f}x; "
       f"median step: {on['timings']['median_step_ms'] / st['timings']['median_step_ms']:.2f}x; "
       f"wall: {on['timings']['wall_s'] / st['timings']['wall_s']:.2f}x; "
       f"median epoch of each: {med('online') / med('stored'):.2f}x"]
open("runs/lst_store/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
