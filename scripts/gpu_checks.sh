#!/usr/bin/env bash
# Copyright 2026 The edge_infer Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# The checks that need an NVIDIA GPU, in one run (a few minutes on one GPU):
#   1. set up the workspace (scripts/setup_workspace.sh) and, when tensorrt is not
#      importable, install requirements/gpu.txt into its virtual environment;
#   2. run every test marked gpu (engine builds, cache reuse, FP16 and INT8
#      detections against ONNX Runtime's on the sample photographs);
#   3. print TensorRT FP16/INT8 latency against ONNX Runtime's on the same
#      640x480 frames, for the face model and the default person model (ONNX).
# Steps 2 and 3 are capped at 5 and 2 minutes, so that with the packages installed
# the run stays under 8 minutes even if a build or a CUDA call hangs.
# Engines of step 3 go to $EDGE_INFER_ENGINE_DIR (default ~/.cache/edge_infer/engines)
# and are reused by later runs; the tests build theirs in temporary folders.
# Exit status: that of the tests (the latency figures are printed, not judged).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf '[gpu_checks] %s\n' "$*" >&2; }

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2
else
  log "nvidia-smi not found: is the NVIDIA driver installed?"
fi

bash scripts/setup_workspace.sh
set +u
# shellcheck disable=SC1091
source env.sh
set -u

if ! python -c 'import tensorrt' 2>/dev/null; then
  log "tensorrt is not importable: installing requirements/gpu.txt"
  python -m pip install --quiet -r requirements/gpu.txt
elif ! python -c 'from edge_infer.backends.cuda_runtime import import_cudart as i; i()' \
    2>/dev/null; then
  log "cuda-python is not importable: installing it from requirements/gpu.txt"
  python -m pip install --quiet "$(grep '^cuda-python' requirements/gpu.txt)"
fi

reason=$(python -c 'from edge_infer.backends.tensorrt import TensorRtBackend as T; print(T.probe() or "")')
if [ -n "$reason" ]; then
  log "the TensorRT backend cannot run here: $reason"
  exit 1
fi
python -c 'import tensorrt; print("TensorRT", tensorrt.__version__)' >&2

status=0
(cd edge_infer && timeout 300 python -m pytest -m gpu -v -rs) || status=$?

log "latency: TensorRT against ONNX Runtime (CPU) on the same frames"
timeout 120 python - <<'PY' || status=$?
from edge_infer.preparation.engines import compare_latency

for card in ('face_detection_short_range', 'pose_detection_onnx'):
    compare_latency(card, precisions=('fp16', 'int8'), iterations=500, warmup=50)
    print()
PY
exit "$status"
