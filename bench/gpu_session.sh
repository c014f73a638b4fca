#!/usr/bin/env bash
# One GPU session (device tool): the CuPy tests, then the GPU benchmarks, each under its own
# time limit. Expects MNIST in data/mnist and the trained checkpoints in checkpoints/ (carried).
# Everything it measures is written into $OUT. The GPU attacks run whole sets as one batch: each
# iteration costs a fixed number of kernel launches, which a larger batch shares among more images.
set -u
export MINIDNN_DATA="$PWD/data/mnist" PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
} > "$OUT/device.txt" 2>&1
timeout "${T_TESTS:-150}" python -m pytest -q -p no:cacheprovider tests -k "cupy or strict or backend" \
  > "$OUT/pytest_cupy.txt" 2>&1; echo "pytest exit $?" >> "$OUT/pytest_cupy.txt"
cd bench
timeout "${T_TRAIN:-90}" python train_throughput.py --backend cupy --reps 7 --json "$OUT/train_cupy.json" \
  > "$OUT/train_cupy.txt" 2>&1
# lbfgsb:DTYPE:3 lets slow line searches go on in the next iteration (search_rounds=3): fewer
# kernel launches per iteration, the same steps per image. The tests, training and this fit one
# 10-minute call; the ConvNet's attacks (its reference takes 2 s an image) only with CONVNET=1.
timeout "${T_ATTACK_N200:-260}" python -u attack_throughput.py --checkpoint ../checkpoints/N200-200-10.npz --backend cupy \
  --c 0.5 --n 1000 --n-torch 20 --variants lbfgsb:float64,lbfgsb:float64:3,lbfgsb:float32,lbfgsb:float32:3 \
  --batch-size 10000 --json "$OUT/attack_n200_cupy.json" > "$OUT/attack_n200_cupy.txt" 2>&1
if [ "${CONVNET:-0}" = 1 ]; then
  timeout "${T_ATTACK_CONVNET:-240}" python -u attack_throughput.py --checkpoint ../checkpoints/ConvNet.npz \
    --backend cupy --c 0.3536 --n 40 --n-torch 0 --variants lbfgsb:float64,lbfgsb:float64:3 --batch-size 2000 \
    --json "$OUT/attack_convnet_cupy.json" > "$OUT/attack_convnet_cupy.txt" 2>&1
fi
echo done >> "$OUT/device.txt"
