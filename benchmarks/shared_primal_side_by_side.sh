#!/usr/bin/env bash
# The mmf step (tiny U-Net, CPU, 1 thread, λ = 0.5) before and after sharing u with the JVP pass,
# alternating the two checkouts twice so both see the same machine load (benchmarks/images.md;
# its tp_*.json are in benchmarks/records/cifar_cpu/shared_primal/).
#   bash benchmarks/shared_primal_side_by_side.sh OLD_CHECKOUT NEW_CHECKOUT OUT_DIR     (OLD was 3ea6c34)
set -e
OLD=$1; NEW=$2; OUT=$3
V='mmf@objective.jvp=fd-central mmf@objective.jvp=dual mmf@objective.jvp=exact'
mkdir -p "$OUT"
for round in 1 2; do
  for pair in "old:$OLD" "new:$NEW"; do
    tag=${pair%%:*}; tree=${pair#*:}
    (cd "$tree" && python benchmarks/cifar_throughput.py --preset tiny --device cpu --precision fp32 --batch 16 \
      --iters 10 --set train.threads=1 --out "$OUT/tp_${tag}_$round.json" --variants $V)
  done
done
