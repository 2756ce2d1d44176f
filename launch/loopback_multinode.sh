#!/usr/bin/env bash
# Multi-node training rehearsed on ONE host: MACHINES `accelerate launch` processes ("machines"), each starting
# PROCS_PER_MACHINE trainer processes, joined over 127.0.0.1 exactly as separate nodes would be (CPU, gloo).
#
#   bash launch/loopback_multinode.sh MACHINES PROCS_PER_MACHINE TRAINER_ARGS...
#   bash launch/loopback_multinode.sh 2 1 --config configs/demo.yaml train.max_steps=20     # 2 machines x 1 process
#   bash launch/loopback_multinode.sh 2 2 --config configs/demo.yaml train.max_steps=20     # 2 machines x 2 processes
#
# Each machine R runs
#   accelerate launch --multi_gpu --num_machines MACHINES --num_processes MACHINES*PROCS_PER_MACHINE
#       --machine_rank R --main_process_ip 127.0.0.1 --main_process_port PORT trainer/train.py TRAINER_ARGS...
# which is the per-node command of a real cluster (launch/multinode_2x8.yaml, launch/slurm_multinode.sbatch).
# CUDA is hidden (CUDA_VISIBLE_DEVICES=""), so trainer/train.py builds Accelerator(cpu=True) and every process joins
# one gloo group (shared/DESIGN.md items 1 and 11).
#
# Environment: PYTHON (default python), MAIN_PROCESS_PORT (default: a free port), OMP_NUM_THREADS (default 1),
# LOOPBACK_TIMEOUT_S (default 0 = none; else every machine is stopped with `timeout -k 10`), LOOPBACK_LOG_DIR
# (default a new temp dir): machine 0 writes to this terminal, machine R > 0 to LOOPBACK_LOG_DIR/machine_R.log.
# When one machine fails, the others are terminated and the script exits with that machine's status.
set -euo pipefail

usage() { sed -n '2,7p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
machines=$1 procs_per_machine=$2
shift 2
[[ "$machines" =~ ^[1-9][0-9]*$ && "$procs_per_machine" =~ ^[1-9][0-9]*$ ]] || usage

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python}"
port="${MAIN_PROCESS_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
timeout_s="${LOOPBACK_TIMEOUT_S:-0}"
log_dir="${LOOPBACK_LOG_DIR:-$(mktemp -d -t loopback_multinode.XXXXXX)}"
mkdir -p "$log_dir"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" CUDA_VISIBLE_DEVICES=""

echo "loopback multi-node: $machines machine(s) x $procs_per_machine process(es), 127.0.0.1:$port, logs of machines 1..$((machines - 1)) in $log_dir" >&2
declare -A machine_of_pid=()
stop_all() {
  for pid in "${!machine_of_pid[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

for ((rank = machines - 1; rank >= 0; rank--)); do
  command=(timeout -k 10 "$timeout_s" "$python" -m accelerate.commands.launch --multi_gpu
           --num_machines "$machines" --num_processes $((machines * procs_per_machine)) --machine_rank "$rank"
           --main_process_ip 127.0.0.1 --main_process_port "$port" --rdzv_backend static --same_network
           --mixed_precision no --dynamo_backend no trainer/train.py "$@")  # precision: the experiment config decides
  if [ "$rank" -eq 0 ]; then
    "${command[@]}" &
  else
    "${command[@]}" >"$log_dir/machine_$rank.log" 2>&1 &
  fi
  machine_of_pid[$!]=$rank
done

status=0
while [ ${#machine_of_pid[@]} -gt 0 ]; do
  finished_pid=""
  wait -n -p finished_pid "${!machine_of_pid[@]}" && code=0 || code=$?
  rank=${machine_of_pid[$finished_pid]}
  unset "machine_of_pid[$finished_pid]"
  if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$code
    echo "loopback multi-node: machine $rank exited with status $code; stopping the others" >&2
    [ "$rank" -eq 0 ] || tail -n 40 "$log_dir/machine_$rank.log" >&2
    stop_all
  fi
done
exit "$status"
