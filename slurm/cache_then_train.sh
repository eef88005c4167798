#!/usr/bin/env bash
# cache_then_train.sh: submits cache-then-train (Ladder Side-Tuning from stored activations) as two
# chained Slurm jobs, for a config with method.name = lst:
#   job 1 (slurm/cache.sbatch):    `ladder cache` writes the activation stores (train.h5, dev.h5)
#   job 2 (slurm/finetune.sbatch): `ladder train --cache.use true --cache.dir DIR`, started only when job 1
#                                   succeeded (--dependency=afterok; if job 1 fails, job 2 is cancelled)
#
#   bash slurm/cache_then_train.sh CONFIG.ini [--section.key value ...]
#   bash slurm/cache_then_train.sh [sbatch options for both jobs ...] -- CONFIG.ini [--section.key value ...]
# (the --section.key overrides go to both `ladder cache` and `ladder train`, so the stores match the run)
#   e.g. bash slurm/cache_then_train.sh --job-name=sst2-lst --partition=gpu -- examples/sst2_lst.ini --train.lr 3e-3
#
# Prints "cache job: ID RUN_DIR" and "train job: ID RUN_DIR". The stores go to RUN_DIR(cache job)/cache
# (or LADDER_CACHE_DIR, e.g. to share them between runs); the training run has its own run directory
# (checkpoints, report.json, job.log), requeued and resumed like any finetune.sbatch job. Run it from the
# directory the jobs should be submitted from (runs/ goes there).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sbatch_opts=()
if [[ " $* " == *" -- "* ]]; then
  while [[ $# -gt 0 && $1 != -- ]]; do sbatch_opts+=("$1"); shift; done
  shift
fi
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
fi
config=$1
shift
[[ -f $config ]] || { echo "cache_then_train.sh: config file '$config' not found" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "cache_then_train.sh: sbatch not found (run this on a Slurm login node)" >&2; exit 2; }

# Job names: NAME-cache and NAME-train (NAME from --job-name=, default ladder).
name=ladder
rest=()
for o in "${sbatch_opts[@]}"; do
  case $o in
    --job-name=* | -J=*) name=${o#*=} ;;
    *) rest+=("$o") ;;
  esac
done
runs=${LADDER_RUNS:-$PWD/runs}
mkdir -p "$runs"
runs=$(cd "$runs" && pwd)

jid1=$(sbatch --parsable "${rest[@]}" --job-name="$name-cache" --export=ALL,LADDER_RUNS="$runs" \
  "$here/cache.sbatch" "$config" "$@")
jid1=${jid1%%;*}
# cache.sbatch writes to LADDER_CACHE_DIR, else its run directory LADDER_RUNS/<job name>-<job id>/cache.
cache_dir=${LADDER_CACHE_DIR:-$runs/$name-cache-$jid1/cache}
echo "cache job: $jid1 $runs/$name-cache-$jid1"
jid2=$(sbatch --parsable "${rest[@]}" --job-name="$name-train" --export=ALL,LADDER_RUNS="$runs" \
  --dependency=afterok:"$jid1" --kill-on-invalid-dep=yes \
  "$here/finetune.sbatch" "$config" --cache.use true --cache.dir "$cache_dir" "$@")
jid2=${jid2%%;*}
echo "train job: $jid2 $runs/$name-train-$jid2 (after $jid1 succeeds; reads $cache_dir)"
