#!/usr/bin/env bash
# Wheels for a GPU machine without network and without TensorFlow (JAX and/or PyTorch with CUDA installed there):
# cnn-search and the small packages its search path needs, for Python 3.11 on manylinux x86_64. Run on a connected
# machine from the repository root; carry the folder (and benchmarks/gpu.py) across; there:
#
#   python -m venv --system-site-packages ~/cs && . ~/cs/bin/activate   # keeps the machine's JAX / PyTorch / NumPy
#   pip install --no-index --no-deps gpu-wheels/*.whl
#   KERAS_BACKEND=jax cnn-search run tiny --data shapes --trials 3 --epochs 1 --no-report   # a check
#   python benchmarks/gpu.py --backends jax,torch --data shapes
#
# Left out, as the machine has them or the search path does not need them: TensorFlow and TensorBoard (the
# backend is JAX or PyTorch), JAX, PyTorch, NumPy and the NVIDIA libraries (the machine's own), scikit-learn and
# SciPy (only the `digits` loader: use `--data shapes` or a folder), matplotlib and plotly (pictures: `--no-report`).
set -euo pipefail
out="${1:-gpu-wheels}"
rm -rf "$out" && mkdir -p "$out"
pip wheel -q --no-deps -w "$out" .
pip download -q -d "$out" --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
  "keras>=3.15" "optuna>=4.5" "mlflow-skinny>=3.17" "keras-tuner>=1.4.8" "typer>=0.12" "rich>=13" "pyyaml>=6.0" \
  "pillow>=10" sqlalchemy alembic pandas
# what the GPU machine brings itself (its CUDA builds) or the search path does not import
for skip in numpy jax jaxlib torch "nvidia_*" triton scipy scikit_learn tensorflow tensorboard "tensorboard_*" \
            matplotlib plotly pyarrow; do
  rm -f "$out"/${skip}-*.whl
done
du -ch "$out"/*.whl | tail -1
ls "$out"
