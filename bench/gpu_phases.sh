set -u
export MINIDNN_DATA="$PWD/data/mnist" PYTHONPATH="$PWD" OPENBLAS_NUM_THREADS=1
cd bench
timeout 110 python -u attack_phases.py --checkpoint ../checkpoints/N200-200-10.npz --backend cupy --c 0.5 --n 10000 --dtype float64 --primitives > $OUT/phases_f64.txt 2>&1
timeout 70 python -u attack_phases.py --checkpoint ../checkpoints/N200-200-10.npz --backend cupy --c 0.5 --n 10000 --dtype float32 --primitives > $OUT/phases_f32.txt 2>&1
