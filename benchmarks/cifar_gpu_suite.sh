#!/usr/bin/env bash
# One visit to a GPU machine (about 10 minutes): du/dt accuracy with TF32 off and on; a short eager
# check of the dual backend under TF32 beside finite differences (the same-visit baseline); then
# compiled throughput with whatever time is left, the dual backend under TF32 first (the eager
# fm / meanflow / mmf rows of the compile/TF32/JVP visit are in benchmarks/records/cifar_h100/compile-tf32-jvp). Each stage has its
# own time box and writes its JSON as it goes, so a stage that runs out leaves the others'.
# The stages' time boxes add up to 560 s, inside one 600 s device call:
#   OUT=results_dir bash benchmarks/cifar_gpu_suite.sh
# Then, in a second call on the warm machine, check that compiled `dual` back-propagates like eager
# on CUDA (needs pytest there):
#   python -m pytest -m slow tests/test_unet.py -k "compiled_mmf and cuda"
set -u
OUT=${OUT:-runs/bench/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
stamp() { echo "== $(date +%T) $*"; }
{
stamp start
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch; print('torch', torch.__version__)"
stamp jvp accuracy
timeout "${JVP_S:-60}" python benchmarks/jvp_precision.py --device cuda --bf16 --out "$OUT/jvp_precision.json"
stamp eager throughput
timeout "${EAGER_S:-100}" python benchmarks/cifar_throughput.py --device cuda --iters 10 --out "$OUT/cifar_eager.json" \
  --variants "mmf@objective.jvp=dual,train.tf32=true" "mmf@train.tf32=true" "meanflow@objective.jvp=dual,train.tf32=true"
stamp compiled throughput
timeout "${COMPILE_S:-400}" python benchmarks/cifar_throughput.py --device cuda --compile --iters 10 \
  --variants "mmf@objective.jvp=dual,train.tf32=true" "meanflow@objective.jvp=dual,train.tf32=true" \
  "mmf@train.tf32=true" fm \
  --out "$OUT/cifar_compile.json"
stamp end
} 2>&1 | tee "$OUT/suite.log"
