#!/bin/bash
# Training speed by thread setting, alone and beside one busy job (run by hand, from the repo root;
# results in benchmarks/README.md). U-Maze default model, 150 steps; it/s over steps 100-150.
#   bash benchmarks/threads_contention.sh            # alone
#   (some other one-thread job running) bash benchmarks/threads_contention.sh
set -euo pipefail
out=$(mktemp -d)
run() {  # label, then env assignments; EXTRA holds extra mmftraj options
  label=$1; shift
  env "$@" python -m mmftraj train --task maze2d --preset umaze --steps 150 --seed 7 --name "thr-$label" \
    --runs-dir "$out" --set eval.train_episodes=0 --set train.log_every=50 $EXTRA > "$out/$label.log" 2>&1
  python -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1])))[-1]; print(sys.argv[2], round(float(r['steps_per_s']), 2), 'it/s')" \
    "$out/maze2d/thr-$label/metrics.csv" "$label"
}
EXTRA="--set train.threads=1" run one-thread A=1
EXTRA="--set train.threads=$(nproc)" run every-core A=1
EXTRA="--set train.threads=$(nproc)" run every-core-passive-omp OMP_WAIT_POLICY=PASSIVE
EXTRA="" run auto A=1
rm -rf "$out"
