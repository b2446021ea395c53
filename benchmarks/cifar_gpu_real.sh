#!/usr/bin/env bash
# A short training log on real CIFAR-10 images on a lent GPU (the second call of a visit, after
# benchmarks/cifar_gpu_suite.sh; about 5 minutes). The GPU machine cannot download anything and its
# working tree carries at most 64 MiB of ignored files, so a balanced 20,000-image PNG shard
# (47.3 MB of PNG) travels with it. Make the shard here, once:
#   mmftraj data image-subset --data-dir ~/data/cifar10-png --out shards/cifar-gpu --per-class 2000 --test-per-class 100
# then run this with `carry: ["shards/cifar-gpu"]`:
#   OUT=results_dir bash benchmarks/cifar_gpu_real.sh
# It trains `mmf` on the cifar.yaml recipe (DDPM++ U-Net, bf16, eager) with the λ curriculum
# compressed into the run, and writes the per-step log (loss, λ, images/s) as JSON and metrics.csv.
set -u
OUT=${OUT:-runs/bench/gpu-real}
DATA=${DATA:-shards/cifar-gpu}
STEPS=${STEPS:-400}
DEVICE=${DEVICE:-cuda}
# EXTRA: more cifar_throughput.py arguments; a CPU smoke test of this script:
#   DEVICE=cpu STEPS=4 EXTRA="--preset tiny --batch 8" OUT=/tmp/real bash benchmarks/cifar_gpu_real.sh
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ ! -d "$DATA/train" ]; then
  echo "no image shard at $DATA (make it with mmftraj data image-subset, see the header)" >&2
  exit 2
fi
{
echo "== $(date +%T) start"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
timeout "${REAL_S:-300}" python benchmarks/cifar_throughput.py --device "$DEVICE" --train-steps "$STEPS" --variants mmf \
  --data-dir "$DATA" ${EXTRA:-} --runs-dir /tmp/cifar_real_runs --out "$OUT/cifar_real_log.json"
cp /tmp/cifar_real_runs/cifar-mmf-"$STEPS"steps/metrics.csv "$OUT/cifar_real_metrics.csv" 2>/dev/null
echo "== $(date +%T) end"
} 2>&1 | tee "$OUT/real.log"
