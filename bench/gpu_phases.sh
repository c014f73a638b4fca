#!/usr/bin/env bash
# The third GPU call of 2026-11-26 (device tool, on an H200): bench/attack_phases.py on CuPy, N200-200-10,
# 10,000 images as one batch, float64 then float32, with the primitives. Expects MNIST in
# data/mnist and the checkpoints in checkpoints/ (carried); writes into $OUT.
set -u
export MINIDNN_DATA="$PWD/data/mnist" PYTHONPATH="$PWD" OPENBLAS_NUM_THREADS=1
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT"
cd bench
timeout 110 python -u attack_phases.py --checkpoint ../checkpoints/N200-200-10.npz --backend cupy --c 0.5 --n 10000 \
  --dtype float64 --primitives > "$OUT/phases_f64.txt" 2>&1
timeout 70 python -u attack_phases.py --checkpoint ../checkpoints/N200-200-10.npz --backend cupy --c 0.5 --n 10000 \
  --dtype float32 --primitives > "$OUT/phases_f32.txt" 2>&1
