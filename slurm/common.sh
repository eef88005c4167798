# shellcheck shell=bash
# slurm/common.sh: what ladder's batch scripts share. Sourced (not run) by finetune.sbatch, lst.sbatch,
# cache.sbatch, eval.sbatch and multinode.sbatch; see slurm/README.md.
#
#   ladder_setup KIND CONFIG     checks the binary and the config, makes the run directory, copies the
#                                job's output into RUN_DIR/job.log, sets threads per rank
#   ladder_launch ARGS...        runs `ladder ARGS...` on every task of the job (srun --mpi=pmix, else
#                                mpirun), forwarding USR1/TERM/INT from the batch shell; sets LADDER_RC
#   ladder_finish                exit 0 when done; on a stop signal (ladder exits 128+signal) requeue the
#                                job, which resumes from RUN_DIR/checkpoints/latest; else exit non-zero
#                                with "ladder failed with code N; see above" as the log's last line
#
# Environment (all optional; pass with `sbatch --export=ALL,NAME=value` or export before sbatch):
#   LADDER_BIN        the ladder executable (default: LADDER_HOME/build/ladder, else `ladder` on PATH)
#   LADDER_HOME       the ladder checkout (default: found from this file's location)
#   LADDER_RUNS       where run directories go (default: SLURM_SUBMIT_DIR/runs)
#   LADDER_RUN_DIR    this job's run directory (default: LADDER_RUNS/<job name>-<job id>); set it to an
#                     old job's run directory to resume that run in a new job
#   LADDER_LAUNCHER   auto (default: srun --mpi=pmix when srun lists pmix, else mpirun), srun or mpirun
#   LADDER_THREADS    threads per rank (default: SLURM_CPUS_PER_TASK, else 1)
#   LADDER_MAX_REQUEUES  stop requeueing after this many restarts (default 50)
#   LADDER_SRUN_ARGS / LADDER_MPIRUN_ARGS  extra launcher arguments (word-split)
#   LADDER_CACHE_DIR  cache.sbatch: where the activation stores go (default RUN_DIR/cache)

ladder_log() { printf '[ladder-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Prints the error as the log's last line and ends the job with `rc`.
ladder_die() {
  local rc=$1
  shift
  ladder_log "error: $*" >&2
  exit "$rc"
}

_ladder_on_exit() {
  local rc=$?
  # Let the tee that copies the output into RUN_DIR/job.log write everything before the job ends.
  if [[ -n ${_LADDER_TEE_PID:-} ]]; then
    exec 1>&- 2>&-
    wait "$_LADDER_TEE_PID" 2>/dev/null || true
  fi
  exit "$rc"
}

ladder_setup() {
  LADDER_KIND=$1
  LADDER_CONFIG=${2:-}
  [[ -n ${SLURM_JOB_ID:-} ]] || ladder_die 2 "not inside a Slurm job: submit with sbatch (see slurm/README.md)"
  ladder_log "job ${SLURM_JOB_ID} (${SLURM_JOB_NAME:-?}) restart ${SLURM_RESTART_COUNT:-0} on ${SLURM_JOB_NODELIST:-?}:" \
    "${SLURM_JOB_NUM_NODES:-1} node(s), ${SLURM_NTASKS:-1} task(s), ${SLURM_CPUS_PER_TASK:-1} cpu(s) per task"

  # The binary.
  if [[ -z ${LADDER_BIN:-} ]]; then
    if [[ -n ${LADDER_HOME:-} && -x $LADDER_HOME/build/ladder ]]; then
      LADDER_BIN=$LADDER_HOME/build/ladder
    elif command -v ladder >/dev/null 2>&1; then
      LADDER_BIN=$(command -v ladder)
    fi
  fi
  [[ -n ${LADDER_BIN:-} && -x $LADDER_BIN ]] ||
    ladder_die 2 "no ladder executable: LADDER_BIN='${LADDER_BIN:-}', LADDER_HOME='${LADDER_HOME:-}' (build with scripts/build.sh, or set LADDER_BIN)"

  # The config: checked here so that a typo fails in seconds with a clear message, before any launch.
  if [[ -n $LADDER_CONFIG ]]; then
    [[ -f $LADDER_CONFIG ]] || ladder_die 2 "config file '$LADDER_CONFIG' not found (relative paths are from the submit directory ${SLURM_SUBMIT_DIR:-$PWD})"
    [[ -r $LADDER_CONFIG ]] || ladder_die 2 "config file '$LADDER_CONFIG' is not readable"
    LADDER_CONFIG=$(readlink -f "$LADDER_CONFIG")
  fi

  # One run directory per job (a requeued job keeps its id, so it finds its own checkpoints).
  local name=${SLURM_JOB_NAME:-ladder} id=${SLURM_JOB_ID}
  [[ -n ${SLURM_ARRAY_JOB_ID:-} && -n ${SLURM_ARRAY_TASK_ID:-} ]] && id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
  name=${name//[^A-Za-z0-9._+-]/_}
  RUN_DIR=${LADDER_RUN_DIR:-${LADDER_RUNS:-${SLURM_SUBMIT_DIR:-$PWD}/runs}/${name}-${id}}
  mkdir -p "$RUN_DIR" || ladder_die 2 "cannot create the run directory $RUN_DIR"
  RUN_DIR=$(readlink -f "$RUN_DIR")
  export RUN_DIR

  # From here the job's output also goes to RUN_DIR/job.log (appended across requeues). tee ignores the
  # stop signals, which `scancel --full` sends to every process of the batch step.
  exec > >(trap '' INT TERM USR1 USR2 HUP; exec tee -a "$RUN_DIR/job.log") 2>&1
  _LADDER_TEE_PID=$!
  trap _ladder_on_exit EXIT
  ladder_log "=== ${LADDER_KIND}: job ${SLURM_JOB_ID} restart ${SLURM_RESTART_COUNT:-0} start $(date -Is) on $(hostname -s)"
  ladder_log "run directory $RUN_DIR; ladder $LADDER_BIN; config ${LADDER_CONFIG:-none}"
  {
    echo "job_id=$SLURM_JOB_ID"
    echo "job_name=${SLURM_JOB_NAME:-}"
    echo "restart=${SLURM_RESTART_COUNT:-0}"
    echo "config=${LADDER_CONFIG:-}"
    echo "submit_dir=${SLURM_SUBMIT_DIR:-}"
  } >"$RUN_DIR/slurm-job.env"

  # A stop signal before ladder is launched: remembered, and the job requeues without starting it.
  LADDER_EARLY_SIGNAL=
  trap 'LADDER_EARLY_SIGNAL=USR1' USR1
  trap 'LADDER_EARLY_SIGNAL=TERM' TERM
  trap 'LADDER_EARLY_SIGNAL=INT' INT

  # Threads per rank: the CPUs Slurm gave each task.
  LADDER_THREADS=${LADDER_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
  [[ $LADDER_THREADS =~ ^[1-9][0-9]*$ ]] || ladder_die 2 "LADDER_THREADS='$LADDER_THREADS' is not a positive integer"
  export OMP_NUM_THREADS=$LADDER_THREADS OPENBLAS_NUM_THREADS=$LADDER_THREADS
}

# Picks srun --mpi=pmix or mpirun; sets LADDER_LAUNCH (an array).
ladder_pick_launcher() {
  local want=${LADDER_LAUNCHER:-auto} ntasks=${SLURM_NTASKS:-1}
  if [[ $want == auto ]]; then
    if srun --mpi=list 2>&1 | grep -qw pmix; then
      want=srun
    elif command -v mpirun >/dev/null 2>&1; then
      want=mpirun
      ladder_log "srun has no pmix plugin here: falling back to mpirun inside the allocation"
    else
      want=srun
      ladder_log "srun has no pmix plugin and there is no mpirun: trying plain srun"
    fi
  fi
  case $want in
    srun)
      local mpi=pmix
      srun --mpi=list 2>&1 | grep -qw pmix || mpi=none
      # srun does not inherit --cpus-per-task from sbatch (Slurm >= 22.05): pass it. Without
      # --kill-on-bad-exit a crashed rank would leave the others waiting in a collective for ever.
      # shellcheck disable=SC2206
      LADDER_LAUNCH=(srun --mpi="$mpi" --ntasks="$ntasks" --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}"
                     --kill-on-bad-exit=1 --unbuffered ${LADDER_SRUN_ARGS:-})
      ;;
    mpirun)
      local root=()
      [[ $(id -u) -eq 0 ]] && root=(--allow-run-as-root)
      # Open MPI reads the Slurm allocation itself (and starts its daemons with srun on other nodes).
      # shellcheck disable=SC2206
      LADDER_LAUNCH=(mpirun "${root[@]}" -np "$ntasks" --bind-to none -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS
                     ${LADDER_MPIRUN_ARGS:-})
      ;;
    *) ladder_die 2 "LADDER_LAUNCHER='$want': expected auto, srun or mpirun" ;;
  esac
  LADDER_LAUNCHER_USED=$want
}

# Runs `LADDER_BIN "$@"` on every task; forwards stop signals that reach the batch shell (the
# `#SBATCH --signal=B:USR1@N` warning, scancel --signal=... --batch, SIGTERM) to the launcher, which
# passes them to the ranks. Sets LADDER_RC to ladder's exit code.
ladder_launch() {
  if [[ -n ${LADDER_EARLY_SIGNAL:-} ]]; then
    ladder_log "SIG$LADDER_EARLY_SIGNAL received before ladder started: not starting it"
    LADDER_RC=138
    return
  fi
  ladder_pick_launcher
  local line=(stdbuf -oL -eL "$LADDER_BIN" "$@")
  command -v stdbuf >/dev/null 2>&1 || line=("$LADDER_BIN" "$@")
  ladder_log "launch ($LADDER_LAUNCHER_USED): ${LADDER_LAUNCH[*]} ${line[*]}"
  LADDER_STOP_SIGNAL=
  LADDER_LOG_OFFSET=$(stat -c %s "$RUN_DIR/job.log" 2>/dev/null || echo 0)  # this attempt's part of job.log
  "${LADDER_LAUNCH[@]}" "${line[@]}" &
  LADDER_STEP_PID=$!
  trap '_ladder_forward USR1' USR1
  trap '_ladder_forward TERM' TERM
  trap '_ladder_forward INT' INT
  trap '_ladder_forward USR1' USR2
  # `wait` returns early (>128) whenever a trapped signal arrives: wait again until the step has ended,
  # then once more for its exit status (bash keeps it for a finished background job).
  while kill -0 "$LADDER_STEP_PID" 2>/dev/null; do
    wait "$LADDER_STEP_PID" 2>/dev/null || true
  done
  LADDER_RC=0
  wait "$LADDER_STEP_PID" 2>/dev/null || LADDER_RC=$?
  # From here on a stop signal has nothing left to stop: noted only, so that it cannot kill the script
  # between ladder's exit and the requeue or the final message.
  trap 'LADDER_EARLY_SIGNAL=USR1' USR1 USR2
  trap 'LADDER_EARLY_SIGNAL=TERM' TERM
  trap 'LADDER_EARLY_SIGNAL=INT' INT
  ladder_log "ladder exited with code $LADDER_RC${LADDER_STOP_SIGNAL:+ (after SIG$LADDER_STOP_SIGNAL)}"
}

_ladder_forward() {
  local sig=$1
  LADDER_STOP_SIGNAL=$sig
  ladder_log "SIG$sig received: asking ladder to checkpoint after the current step and stop"
  # The launcher gets USR1 whatever arrived: srun and mpirun pass SIGUSR1 on to every rank, but answer
  # SIGTERM/SIGINT by killing the ranks (srun sends them SIGKILL). ladder treats all three alike.
  kill -s USR1 "$LADDER_STEP_PID" 2>/dev/null || true
}

ladder_finish() {
  local rc=${LADDER_RC:-1}
  case $rc in
    0)
      ladder_log "done; run directory $RUN_DIR"
      exit 0
      ;;
    130 | 138 | 140 | 143)
      # 128 + SIGINT / SIGUSR1 / SIGUSR2 / SIGTERM: ladder stopped after a step and wrote a checkpoint.
      local restarts=${SLURM_RESTART_COUNT:-0}
      if ((restarts >= ${LADDER_MAX_REQUEUES:-50})); then
        ladder_die "$rc" "ladder stopped (code $rc) and this job was already requeued $restarts times (LADDER_MAX_REQUEUES); resubmit with LADDER_RUN_DIR=$RUN_DIR to resume"
      fi
      ladder_log "ladder checkpointed and stopped (code $rc); requeueing job $SLURM_JOB_ID: it resumes from $RUN_DIR/checkpoints/latest"
      local out
      if out=$(scontrol requeue "$SLURM_JOB_ID" 2>&1); then
        ladder_log "requeued job $SLURM_JOB_ID"
        exit 0
      fi
      ladder_die "$rc" "scontrol requeue $SLURM_JOB_ID failed: $out; resubmit with LADDER_RUN_DIR=$RUN_DIR to resume"
      ;;
    *)
      # Repeat the error so that the log ends with it: ladder's own message ("[rank r/n] ladder CMD: error:
      # ..." or "[rank r/n] error: ..."), else the launcher's (a rank that crashed: "srun: error: ...").
      local err log
      sleep 0.2  # let the tee catch up
      log=$(tail -c "+$((${LADDER_LOG_OFFSET:-0} + 1))" "$RUN_DIR/job.log" 2>/dev/null)
      err=$(grep -a -E '^(\[rank [0-9]+/[0-9]+\] )?(ladder [a-z-]+: )?error: ' <<<"$log" | tail -n1)
      [[ -n $err ]] || err=$(grep -a -E '^srun: error: |^(mpirun|prterun) (noticed|detected)|^ *(Process name|Exit code|Signal):' \
        <<<"$log" | tail -n3 | tr -s ' \n' ' ')
      [[ -n $err ]] && ladder_log "last error: $err" >&2
      ladder_die "$rc" "ladder failed with code $rc; see above (log: $RUN_DIR/job.log)"
      ;;
  esac
}

LADDER_SLURM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LADDER_HOME=${LADDER_HOME:-$(dirname "$LADDER_SLURM_DIR")}
export ladder_common_loaded=1
