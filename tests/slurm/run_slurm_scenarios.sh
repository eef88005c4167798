#!/usr/bin/env bash
# run_slurm_scenarios.sh LADDER_BINARY: brings up a real single-node Slurm (Debian's slurmctld, slurmd and
# munge; no systemd, no cgroups: proctrack/linuxproc, task/none, MpiDefault=pmix) in a temporary directory
# and runs ladder's batch scripts (slurm/) on it with a tiny real run (all-MiniLM-L6-v2, 400 SST-2 rows):
#   1. finetune.sbatch with 2 tasks, `sbatch --wait`: completes; its checkpoint is readable (inspect, h5py)
#   2. the same job, preempted mid-training (scancel --signal=USR1 --batch, what --signal=B:USR1@N sends):
#      stops after a step, checkpoints, requeues itself, resumes, and its final parameters equal those of
#      job 1 bit for bit; every checkpoint left is complete
#   5. as 2 with SIGTERM to the job's tasks (scancel --signal=TERM), as a preemption's GraceTime sends it
#   3. a chained pair (--dependency=afterok): today finetune.sbatch then eval.sbatch on its run directory,
#      and cache_then_train.sh failing cleanly (no `ladder cache` yet: see the TODO in scenario3)
#   4. a broken config, a missing config, a rank that crashes: FAILED fast, error at the end of the log
#   6. multinode.sbatch on one node (1 x 2 tasks, tp 2) completes; a tp that does not divide it is refused; a copy
#      of finetune.sbatch elsewhere with its config and LADDER_HOME edited in runs with no arguments
# Every daemon it starts is stopped by PID on exit (also on failure); about a minute on 2 cores.
#
# Needs root (the daemons run as root with this configuration; with passwordless sudo it re-runs itself
# through sudo) and apt-get for the packages when missing (slurmctld slurmd slurm-client munge).
# Environment: LADDER_MINILM_DIR (the real all-MiniLM-L6-v2), LADDER_SHARED (../shared: data/glue/SST-2),
# LADDER_SKIP_SLURM=1 (skip: exit 77, which CTest reports as skipped), LADDER_SLURM_KEEP=1 (keep the
# temporary directory), LADDER_SLURM_SCENARIOS (default "1 2 5 3 4 6"), LADDER_LAUNCHER (auto|srun|mpirun,
# passed to the jobs), LADDER_SLURM_PORT (first port tried for slurmctld, slurmd takes the next; 16817).
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LADDER=${1:?usage: run_slurm_scenarios.sh LADDER_BINARY}
LADDER=$(readlink -f "$LADDER")
SCENARIOS=${LADDER_SLURM_SCENARIOS:-1 2 5 3 4 6}
T_START=$SECONDS

say() { printf '[slurm-test %3ds] %s\n' "$((SECONDS - T_START))" "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}
skip_or_fail() {
  if [[ ${LADDER_SKIP_SLURM:-0} == 1 ]]; then
    say "skipped (LADDER_SKIP_SLURM=1): $*"
    exit 77
  fi
  fail "$* (set LADDER_SKIP_SLURM=1 to skip this test where it cannot run)"
}

# Exit code 77 = skipped (CTest's SKIP_RETURN_CODE for this test).
if [[ ${LADDER_SKIP_SLURM:-0} == 1 ]]; then
  say "skipped (LADDER_SKIP_SLURM=1)"
  exit 77
fi
[[ -x $LADDER ]] || fail "ladder binary '$LADDER' not found"

# ---------------------------------------------------------------------------------------------------- root
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    # Re-run the whole test as root (the daemons and the jobs run as root with this configuration).
    exec sudo -n -E env "PATH=$PATH" bash "${BASH_SOURCE[0]}" "$@"
  fi
  skip_or_fail "this test starts slurmctld, slurmd and munged as root: run it as root or with passwordless sudo"
fi

# ---------------------------------------------------------------------------------------------- packages
need=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  command -v apt-get >/dev/null || skip_or_fail "missing packages ${need[*]} and no apt-get"
  say "installing ${need[*]}"
  # Debian's maintainer scripts would start the daemons under systemd/init: the test starts its own.
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    skip_or_fail "could not install ${need[*]} with apt-get"
fi
for c in slurmctld slurmd munged sbatch srun scontrol sinfo squeue scancel; do
  command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v "$c" >/dev/null || fail "$c not found after installing the Slurm packages"
done

# ------------------------------------------------------------------------------------------------- data
MINILM=${LADDER_MINILM_DIR:-$HOME/.cache/ladder/models/all-MiniLM-L6-v2}
SHARED=${LADDER_SHARED:-$SRC_DIR/../shared}
SST2=$SHARED/data/glue/SST-2
[[ -f $MINILM/config.json ]] || fail "no model in LADDER_MINILM_DIR='$MINILM' (scripts/fetch_minilm.sh)"
[[ -f $SST2/train.tsv && -f $SST2/dev.tsv ]] || fail "no SST-2 in $SST2 (LADDER_SHARED)"

# ----------------------------------------------------------------------------------------------- cluster
W=$(mktemp -d /tmp/ladder-slurm.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  local rc=$?
  set +e
  if [[ -n ${SLURM_CONF:-} ]] && ((${#PIDS[@]})); then
    # Jobs still queued or running (a failed scenario): cancel them and let slurmd end their processes.
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      scancel $jobs >/dev/null 2>&1
      for ((i = 0; i < 60; i++)); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
  fi
  # Daemons in reverse order of start, each by its recorded PID: TERM, then KILL after 10 s.
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  if ((rc != 0)); then
    say "logs of the failed run:"
    for f in "$W"/log/*.log; do [[ -f $f ]] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }; done
  fi
  if [[ ${LADDER_SLURM_KEEP:-0} == 1 || $rc -ne 0 ]]; then
    say "kept $W"
  else
    rm -rf "$W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NODE=$(hostname -s)
# Two free ports (slurmctld, slurmd), so that a Slurm already running on this machine is left alone.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${LADDER_SLURM_PORT:-16817}
for ((tries = 0; tries < 40; tries++)); do
  port_busy "$PORT" || port_busy "$((PORT + 1))" || break
  PORT=$((PORT + 2))
done
mkdir -p "$W"/{munge,munge-key,state,spool/"$NODE",log,submit}
chmod 700 "$W/munge-key"

# munge: our own key and socket, so that a munged already running here is left alone.
dd if=/dev/urandom of="$W/munge-key/munge.key" bs=1024 count=1 status=none
chmod 400 "$W/munge-key/munge.key"
munged --foreground --force --socket="$W/munge/munge.socket" --key-file="$W/munge-key/munge.key" \
  --pid-file="$W/munge-key/munged.pid" --log-file="$W/log/munged.log" --seed-file="$W/munge-key/munged.seed" \
  >>"$W/log/munged.log" 2>&1 &
PIDS+=($!)

# The node's hardware as slurmd sees it (CPUs, sockets, cores, threads), memory left out (not tracked).
HW=$(slurmd -C 2>/dev/null | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
[[ $HW == *CPUs=* ]] || HW="CPUs=$(nproc)"
export SLURM_CONF=$W/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=laddertest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$W/munge/munge.socket,cred_expire=${LADDER_SLURM_CRED_EXPIRE:-10}
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool/%n
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
JobRequeue=1
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
MessageTimeout=20
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE $HW State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

for i in $(seq 50); do [[ -S $W/munge/munge.socket ]] && break; sleep 0.1; done
[[ -S $W/munge/munge.socket ]] || fail "munged did not start ($W/log/munged.log)"
slurmctld -D -i -f "$SLURM_CONF" >>"$W/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N "$NODE" -f "$SLURM_CONF" >>"$W/log/slurmd.out" 2>&1 &
PIDS+=($!)
say "started munged, slurmctld, slurmd (pids ${PIDS[*]}); node $NODE ($HW), conf $SLURM_CONF"
for i in $(seq 120); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  [[ $state == idle ]] && break
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a daemon (pid $pid) exited during start-up"; done
  sleep 0.5
done
[[ ${state:-} == idle ]] || fail "the node did not become idle (state '${state:-}')"
say "node $NODE idle; srun --mpi=list: $(srun --mpi=list 2>&1 | grep -v -i 'mpi plugin types' | tr -s ' \n' ' ')"

# ---------------------------------------------------------------------------------------------- helpers
S=$W/submit  # submit directory: runs/ and the Slurm output files land here
cd "$S"
cat >tiny.ini <<EOF
# all-MiniLM-L6-v2 on 400 SST-2 sentences: a few seconds per job
[model]
dir = $MINILM
[task]
name = sst2
data_dir = $SST2
max_length = 32
max_train_examples = 400
max_eval_examples = 16
[method]
name = lora
lora_r = 4
lora_targets = query,value
[train]
batch_size = 4
max_steps = 40
lr = 1e-3
seed = 11
threads = 1
[eval]
every = 0
[checkpoint]
every = 2
keep_last = 2
[log]
every = 5
EOF
export LADDER_BIN=$LADDER LADDER_HOME=$SRC_DIR OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The steps of the scenarios: enough for a preemption to land mid-training (the signal is sent after the
# second checkpoint), few enough for seconds per job.
STEPS=${LADDER_SLURM_STEPS:-100}
COMMON=(--ntasks=2 --cpus-per-task=1 --time=10)

job_field() {  # job_field JOBID Field -> value from scontrol show job
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}
is_final() {
  case $1 in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 0 ;; esac
  return 1
}
wait_job_end() {  # wait_job_end JOBID SECONDS: until the job is in a final state; prints it
  local jid=$1 limit=$2 st='' i
  for ((i = 0; i < limit * 4; i++)); do
    st=$(job_field "$jid" JobState)
    is_final "$st" && break
    sleep 0.25
  done
  echo "$st"
}
show_log() {  # show_log FILE [LINES]: the end of a job's output, indented
  echo "    --- $1"
  if [[ -f $1 ]]; then sed 's/^/    | /' "$1" | tail -n "${2:-40}"; else echo "    | (no such file)"; fi
}
final_params_equal() {  # final_params_equal A.h5 B.h5: every /params dataset identical, bit for bit
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
na, nb = sorted(a["params"].keys()), sorted(b["params"].keys())
if na != nb:
    sys.exit(f"parameter names differ: {na} vs {nb}")
diff = [n for n in na if a["params"][n][()].tobytes() != b["params"][n][()].tobytes()]
steps = (int(a.attrs["step"]), int(b.attrs["step"]))
print(f"{len(na)} parameter tensors, {sum(a['params'][n].size for n in na)} values; steps {steps}; "
      f"{len(diff)} differ{': ' + ', '.join(diff[:5]) if diff else ''}")
sys.exit(1 if diff or steps[0] != steps[1] else 0)
PY
}
latest_ckpt() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"; }

# -------------------------------------------------------------------------------------------- scenarios
J1='' RUN1=''
scenario1() {
  say "scenario 1: finetune.sbatch, 2 tasks, sbatch --wait"
  local out rc=0
  out=$(sbatch --parsable --wait "${COMMON[@]}" --job-name=ladder-test-s1 "$SRC_DIR/slurm/finetune.sbatch" tiny.ini \
    --train.max_steps "$STEPS" 2>&1) || rc=$?
  J1=${out%%[!0-9]*}
  RUN1=$S/runs/ladder-test-s1-$J1
  say "job $J1: sbatch --wait exit $rc; $(scontrol show job -o "$J1" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*\|Restarts=[^ ]*' | tr '\n' ' ')"
  show_log "$S/ladder-test-s1-$J1.out" 25
  ((rc == 0)) || fail "scenario 1: job $J1 did not complete (sbatch --wait exit $rc)"
  [[ $(job_field "$J1" JobState) == COMPLETED ]] || fail "scenario 1: job $J1 is $(job_field "$J1" JobState)"
  grep -q "2 ranks" "$RUN1/job.log" || fail "scenario 1: ladder did not run with 2 ranks"
  local ck
  ck=$(latest_ckpt "$RUN1")
  "$LADDER" inspect "$ck" >"$W/inspect1.txt" 2>&1 || { cat "$W/inspect1.txt"; fail "scenario 1: ladder inspect $ck failed"; }
  /usr/bin/python3 -c 'import h5py,sys; f=h5py.File(sys.argv[1],"r"); print("h5py:", sys.argv[1].split("/")[-1], "step", int(f.attrs["step"]), "params", len(f["params"]))' "$ck" ||
    fail "scenario 1: h5py cannot read $ck"
  grep -E -m3 -i '^(step|method)|step ' "$W/inspect1.txt" | sed 's/^/    inspect: /'
  say "scenario 1: PASS (job $J1 COMPLETED, checkpoint $ck readable)"
}

# preempt N SIGNAL SCANCEL_MODE: the job of scenario 1 stopped by `scancel --signal=SIGNAL SCANCEL_MODE`
# mid-training; it must checkpoint, requeue itself, resume and end with scenario 1's parameters.
preempt() {
  local n=$1 sig=$2 mode=$3 signum
  signum=$(kill -l "$sig")
  [[ -n $RUN1 ]] || fail "scenario $n compares with scenario 1's run: run scenario 1 too"
  say "scenario $n: the same job, preempted with scancel --signal=$sig${mode:+ $mode} mid-training"
  local jid run i
  jid=$(sbatch --parsable "${COMMON[@]}" --job-name=ladder-test-s$n "$SRC_DIR/slurm/finetune.sbatch" tiny.ini \
    --train.max_steps "$STEPS")
  jid=${jid%%[!0-9]*}
  run=$S/runs/ladder-test-s$n-$jid
  # Signal once training is under way: after the second checkpoint (step 4 of $STEPS).
  for ((i = 0; i < 900; i++)); do
    [[ -f $run/checkpoints/step-00000004.h5 ]] && break
    is_final "$(job_field "$jid" JobState)" && break
    sleep 0.1
  done
  [[ -f $run/checkpoints/step-00000004.h5 ]] || { show_log "$S/ladder-test-s$n-$jid.out"; fail "scenario $n: job $jid never reached step 4 (state $(job_field "$jid" JobState), reason $(job_field "$jid" Reason))"; }
  local how=(--signal="$sig")
  [[ -n $mode ]] && how+=("$mode")
  scancel "${how[@]}" "$jid"
  say "job $jid: sent SIG$sig (${mode:-to the tasks of the job}) at $(cat "$run/checkpoints/latest" 2>/dev/null)"
  local st
  st=$(wait_job_end "$jid" 150)
  local restarts
  restarts=$(job_field "$jid" Restarts)
  say "job $jid: $(scontrol show job -o "$jid" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*\|Restarts=[^ ]*' | tr '\n' ' ')"
  show_log "$S/ladder-test-s$n-$jid.out" 60
  [[ $st == COMPLETED ]] || fail "scenario $n: job $jid ended $st"
  ((restarts >= 1)) || fail "scenario $n: job $jid was not requeued (Restarts=$restarts)"
  grep -q "stopped by signal $signum at step" "$run/job.log" || fail "scenario $n: ladder did not report the stop"
  # (The "requeued" line after scontrol may be cut short: the requeue ends the batch shell.)
  grep -q "requeueing job $jid" "$run/job.log" || fail "scenario $n: the script did not requeue"
  grep -q "resumed from .* at step" "$run/job.log" || fail "scenario $n: the requeued job did not resume"
  local stop_step resume_step
  stop_step=$(sed -n "s/.*stopped by signal $signum at step \\([0-9]*\\).*/\\1/p" "$run/job.log" | head -n1)
  resume_step=$(sed -n 's/.*resumed from .* at step \([0-9]*\).*/\1/p' "$run/job.log" | head -n1)
  say "job $jid: stopped at step $stop_step, resumed at step $resume_step, Restarts=$restarts"
  [[ $stop_step == "$resume_step" ]] || fail "scenario $n: resumed at step $resume_step, stopped at $stop_step"
  ((stop_step < STEPS)) || fail "scenario $n: the signal came after training ended (step $stop_step); nothing was interrupted"
  # Every checkpoint left behind is complete, and `latest` names one of them.
  /usr/bin/python3 - "$run/checkpoints" <<'PY' || fail "scenario $n: a checkpoint in $run/checkpoints is unreadable"
import sys, os, h5py
d = sys.argv[1]
files = sorted(f for f in os.listdir(d) if f.endswith(".h5"))
for f in files:
    with h5py.File(os.path.join(d, f), "r") as h:
        assert "params" in h and "step" in h.attrs, f
latest = open(os.path.join(d, "latest")).read().strip()
assert latest in files, f"latest names {latest!r}, not one of {files}"
assert not [f for f in os.listdir(d) if f.endswith(".tmp")], "temporary files left"
print(f"    checkpoints readable: {', '.join(files)}; latest -> {latest}")
PY
  local cmp
  cmp=$(final_params_equal "$(latest_ckpt "$RUN1")" "$(latest_ckpt "$run")") || fail "scenario $n: final parameters differ from job $J1's: $cmp"
  say "final parameters vs job $J1: $cmp"
  say "scenario $n: PASS (checkpointed at step $stop_step, requeued, resumed, bit-identical to the uninterrupted run)"
}

scenario6() {
  say "scenario 6: multinode.sbatch on 1 node x 2 tasks per node with tensor parallelism (dp 1 x tp 2)"
  local jid st
  # (No LADDER_HOME in the environment: the script finds slurm/common.sh beside itself.)
  jid=$(env -u LADDER_HOME sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
    --export=ALL,LADDER_TP=2 --job-name=ladder-test-s6 "$SRC_DIR/slurm/multinode.sbatch" tiny.ini --train.max_steps 10)
  jid=${jid%%[!0-9]*}
  st=$(wait_job_end "$jid" 120)
  show_log "$S/ladder-test-s6-$jid.out" 3
  [[ $st == COMPLETED ]] && grep -q "dp 1 x tp 2" "$S/ladder-test-s6-$jid.out" &&
    grep -q "sharded over 2 ranks" "$S/ladder-test-s6-$jid.out" || fail "scenario 6: job $jid $st"
  jid=$(sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10 --job-name=ladder-test-s6b \
    --export=ALL,LADDER_TP=3 "$SRC_DIR/slurm/multinode.sbatch" tiny.ini)
  jid=${jid%%[!0-9]*}
  st=$(wait_job_end "$jid" 60)
  show_log "$S/ladder-test-s6b-$jid.out" 1
  [[ $st == FAILED ]] && tail -n 1 "$S/ladder-test-s6b-$jid.out" | grep -q "LADDER_TP=3 does not divide" ||
    fail "scenario 6: tp 3 of 2 tasks was not refused (job $jid $st)"
  # A new user's copy: the script copied elsewhere, its two settings edited, submitted with no argument but
  # an override, and no LADDER_HOME in the environment.
  mkdir -p "$S/mine"
  sed -e "s|^LADDER_HOME=\${LADDER_HOME:-}|LADDER_HOME=\${LADDER_HOME:-$SRC_DIR}|" \
    -e "s|^DEFAULT_CONFIG=\"\"|DEFAULT_CONFIG=\"$S/tiny.ini\"|" "$SRC_DIR/slurm/finetune.sbatch" >"$S/mine/my_finetune.sbatch"
  grep -q "^DEFAULT_CONFIG=\"$S/tiny.ini\"" "$S/mine/my_finetune.sbatch" || fail "scenario 6: could not edit the copy"
  jid=$(cd "$S/mine" && env -u LADDER_HOME sbatch --parsable "${COMMON[@]}" --job-name=ladder-test-s6c \
    my_finetune.sbatch --train.max_steps 6)
  jid=${jid%%[!0-9]*}
  st=$(wait_job_end "$jid" 120)
  show_log "$S/mine/ladder-test-s6c-$jid.out" 2
  [[ $st == COMPLETED && -f $S/mine/runs/ladder-test-s6c-$jid/checkpoints/step-00000006.h5 ]] ||
    fail "scenario 6: the copied script (job $jid $st)"
  say "scenario 6: PASS (multinode template at tp 2, tp check, a copied script)"
}

scenario2() { preempt 2 USR1 --batch; }   # what #SBATCH --signal=B:USR1@N sends before the time limit
scenario5() { preempt 5 TERM ""; }        # SIGTERM to the ranks, as a preemption's GraceTime sends it

# Scenario 3 is the issue's cache-then-train: slurm/cache_then_train.sh with an LST config (ladder cache,
# then ladder train --cache.use true, chained with afterok). LADDER_SLURM_CACHE_CHAIN=0 runs the older
# chained pair instead (fine-tuning, then eval.sbatch).
CACHE_CHAIN=${LADDER_SLURM_CACHE_CHAIN:-1}
scenario3() {
  local has_cache=0
  # (captured first: `ladder ... | grep -q` would SIGPIPE ladder, which pipefail reports as a failure)
  local train_help
  train_help=$("$LADDER" train --help 2>/dev/null || true)
  "$LADDER" cache --help >/dev/null 2>&1 && grep -qw lst <<<"$train_help" && has_cache=1
  ((has_cache || !CACHE_CHAIN)) || fail "LADDER_SLURM_CACHE_CHAIN=1 but this ladder has no \`cache\` command or no lst method"
  if ((CACHE_CHAIN)); then
    say "scenario 3: slurm/cache_then_train.sh (cache job, then the training job with --dependency=afterok)"
    sed -e 's/^name = lora$/name = lst/' -e '/^lora_/d' tiny.ini >tiny_lst.ini
    local out j1 j2
    out=$(LADDER_RUNS=$S/runs bash "$SRC_DIR/slurm/cache_then_train.sh" --job-name=ladder-test-s3 "${COMMON[@]}" -- \
      tiny_lst.ini --train.max_steps 20) || fail "scenario 3: cache_then_train.sh failed: $out"
    echo "$out" | sed 's/^/    | /'
    j1=$(echo "$out" | sed -n 's/^cache job: \([0-9]*\).*/\1/p')
    j2=$(echo "$out" | sed -n 's/^train job: \([0-9]*\).*/\1/p')
  else
    say "scenario 3: chained pair: finetune.sbatch, then eval.sbatch with --dependency=afterok (no \`ladder cache\` in this build yet)"
    local j1 j2
    j1=$(sbatch --parsable "${COMMON[@]}" --job-name=ladder-test-s3-train "$SRC_DIR/slurm/finetune.sbatch" tiny.ini --train.max_steps 20)
    j1=${j1%%[!0-9]*}
    j2=$(sbatch --parsable --ntasks=1 --cpus-per-task=1 --time=10 --job-name=ladder-test-s3-eval \
      --dependency=afterok:"$j1" --kill-on-invalid-dep=yes "$SRC_DIR/slurm/eval.sbatch" "runs/ladder-test-s3-train-$j1")
    j2=${j2%%[!0-9]*}
  fi
  [[ -n $j1 && -n $j2 ]] || fail "scenario 3: could not submit the pair"
  say "submitted $j1 and $j2 (dependency: $(job_field "$j2" Dependency), state $(job_field "$j2" JobState) reason $(job_field "$j2" Reason))"
  local s1 s2
  s1=$(wait_job_end "$j1" 120)
  s2=$(wait_job_end "$j2" 120)
  say "job $j1: $s1 $(job_field "$j1" ExitCode); job $j2: $s2 $(job_field "$j2" ExitCode)"
  for f in "$S"/*-"$j2".out; do show_log "$f" 12; done
  [[ $s1 == COMPLETED && $s2 == COMPLETED ]] || fail "scenario 3: $j1 $s1, $j2 $s2"
  local end1 start2
  end1=$(job_field "$j1" EndTime)
  start2=$(job_field "$j2" StartTime)
  [[ ! $start2 < $end1 ]] || fail "scenario 3: job $j2 started ($start2) before job $j1 ended ($end1)"
  say "scenario 3: PASS (job $j2 started $start2, after job $j1 ended $end1)"
  ((has_cache)) || scenario3_no_cache
}

# Without `ladder cache`, slurm/cache_then_train.sh must still behave: the cache job fails at once with a
# clear message and the training job chained after it is cancelled, not left pending for ever.
scenario3_no_cache() {
  say "scenario 3b: slurm/cache_then_train.sh with a ladder that has no cache command"
  local out j1 j2 s1 s2
  out=$(LADDER_RUNS=$S/runs bash "$SRC_DIR/slurm/cache_then_train.sh" --job-name=ladder-test-s3c "${COMMON[@]}" -- \
    tiny.ini --train.max_steps 20) || fail "scenario 3b: cache_then_train.sh failed: $out"
  echo "$out" | sed 's/^/    | /'
  j1=$(echo "$out" | sed -n 's/^cache job: \([0-9]*\).*/\1/p')
  j2=$(echo "$out" | sed -n 's/^train job: \([0-9]*\).*/\1/p')
  s1=$(wait_job_end "$j1" 60)
  s2=$(wait_job_end "$j2" 60)
  say "job $j1: $s1 $(job_field "$j1" ExitCode); job $j2: $s2 (reason $(job_field "$j2" Reason))"
  show_log "$S/ladder-test-s3c-cache-$j1.out" 2
  [[ $s1 == FAILED ]] || fail "scenario 3b: the cache job is $s1"
  tail -n 1 "$S/ladder-test-s3c-cache-$j1.out" | grep -q 'has no `cache` command yet' || fail "scenario 3b: no clear message"
  [[ $s2 == CANCELLED ]] || fail "scenario 3b: the dependent training job is $s2, not CANCELLED"
  say "scenario 3b: PASS (cache job FAILED with the message, training job CANCELLED)"
}

scenario4() {
  say "scenario 4: a broken config fails fast with its error at the end of the log"
  cp tiny.ini broken.ini
  sed -i 's/^lr = /lrr = /' broken.ini  # a misspelt key
  local t0=$SECONDS out rc=0 jid log
  out=$(sbatch --parsable --wait "${COMMON[@]}" --job-name=ladder-test-s4 "$SRC_DIR/slurm/finetune.sbatch" broken.ini 2>&1) || rc=$?
  jid=${out%%[!0-9]*}
  log=$S/ladder-test-s4-$jid.out
  say "job $jid: sbatch --wait exit $rc after $((SECONDS - t0)) s; $(scontrol show job -o "$jid" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*' | tr '\n' ' ')"
  show_log "$log" 8
  ((rc != 0)) || fail "scenario 4: the broken job reported success"
  [[ $(job_field "$jid" JobState) == FAILED ]] || fail "scenario 4: job $jid is $(job_field "$jid" JobState), not FAILED"
  ((SECONDS - t0 < 60)) || fail "scenario 4: took $((SECONDS - t0)) s to fail"
  tail -n 3 "$log" | grep -q "unknown configuration key 'train.lrr'" || fail "scenario 4: the error is not at the end of $log"
  tail -n 1 "$log" | grep -q "ladder failed with code" || fail "scenario 4: the log does not end with the failure"
  # A config file that does not exist: refused by the script before any launch.
  rc=0
  out=$(sbatch --parsable --wait "${COMMON[@]}" --job-name=ladder-test-s4b "$SRC_DIR/slurm/finetune.sbatch" missing.ini 2>&1) || rc=$?
  jid=${out%%[!0-9]*}
  show_log "$S/ladder-test-s4b-$jid.out" 2
  if ((rc == 0)) || ! tail -n 1 "$S/ladder-test-s4b-$jid.out" | grep -q "config file 'missing.ini' not found"; then
    fail "scenario 4: a missing config was not reported"
  fi
  # A rank that crashes mid-training (SIGSEGV to rank 1): the job ends FAILED at once instead of the other
  # rank waiting in an all-reduce until the time limit.
  jid=$(sbatch --parsable "${COMMON[@]}" --job-name=ladder-test-s4c "$SRC_DIR/slurm/finetune.sbatch" tiny.ini \
    --train.max_steps 100000)
  jid=${jid%%[!0-9]*}
  local run=$S/runs/ladder-test-s4c-$jid i pid='' p
  for ((i = 0; i < 600; i++)); do
    [[ -f $run/checkpoints/step-00000002.h5 ]] && break
    sleep 0.1
  done
  for p in /proc/[0-9]*; do
    [[ $(readlink -f "$p/exe" 2>/dev/null) == "$LADDER" ]] || continue
    tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$jid" || continue
    # rank 1: srun's SLURM_PROCID, or mpirun's OMPI_COMM_WORLD_RANK (LADDER_LAUNCHER=mpirun)
    if tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -q -e '^OMPI_COMM_WORLD_RANK=' ; then
      tr '\0' '\n' <"$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=1" && pid=${p#/proc/}
    elif tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SLURM_PROCID=1"; then
      pid=${p#/proc/}
    fi
  done
  [[ -n $pid ]] || fail "scenario 4: rank 1 of job $jid not found"
  local t1=$SECONDS st
  kill -SEGV "$pid"
  st=$(wait_job_end "$jid" 90)
  say "job $jid: SIGSEGV to rank 1 (pid $pid): $st $(job_field "$jid" ExitCode) after $((SECONDS - t1)) s"
  show_log "$S/ladder-test-s4c-$jid.out" 5
  [[ $st == FAILED ]] || fail "scenario 4: job $jid with a crashed rank is $st"
  tail -n 1 "$S/ladder-test-s4c-$jid.out" | grep -q "ladder failed with code" || fail "scenario 4: the crash is not reported at the end of the log"
  say "scenario 4: PASS (FAILED in $((SECONDS - t0)) s, error last in the log)"
}

for s in $SCENARIOS; do "scenario$s"; done
say "all scenarios passed ($SCENARIOS) in $((SECONDS - T_START)) s"
