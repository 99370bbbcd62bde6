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

"""
TensorRT against ONNX Runtime on the same frames: the latency report of a GPU.

The engines themselves (cache, builder) belong to the TensorRT backend
(:mod:`edge_infer.backends.tensorrt_engines`); this module times them.
"""

from __future__ import annotations

from pathlib import Path
import statistics
import time
from typing import Any, Callable, Sequence

from edge_infer.backends.registry import create_backend
from edge_infer.backends.tensorrt_engines import build_engine
from edge_infer.core.cards import load_card
from edge_infer.core.models import locate_model
from edge_infer.data.samples import sample_photo, SAMPLE_PHOTOS
from edge_infer.inference.detector import Detector
from edge_infer.preparation.quantize import preprocess_images, sample_images
import numpy as np

__all__ = ['compare_latency']


def compare_latency(card_name: str = 'face_detection_short_range', *,
                    precisions: Sequence[str] = ('fp16', 'int8'), iterations: int = 500,
                    warmup: int = 50, frame_size: tuple[int, int] = (640, 480),
                    cache_dir: Path | None = None,
                    output: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """
    Print TensorRT's latency against ONNX Runtime's on the same frames.

    Every runtime runs the same card's preprocessing and decoding on the sample
    photographs resized to ``frame_size``; engines are built (or reused) first,
    INT8 ones calibrated on the sample images.  Prints the median and p90 of
    inference and of the whole frame (preprocess, inference, decode) per
    runtime, and the ratios to ONNX Runtime's medians.

    :returns: per runtime label: ``inference_p50_ms``, ``inference_p90_ms``,
        ``frame_p50_ms``, ``frame_p90_ms``
    :raises EngineError: TensorRT, CUDA or the engine build failed
    """
    import cv2

    card = load_card(card_name)
    onnx_path = locate_model(card)
    frames = [cv2.resize(sample_photo(name), frame_size) for name in SAMPLE_PHOTOS]
    calibration = preprocess_images(sample_images(), card.input_spec)
    runtimes = {'onnxruntime': create_backend('onnxruntime')}
    for precision in precisions:
        build_engine(onnx_path, precision=precision, cache_dir=cache_dir, progress=output,
                     calibration_images=calibration if precision == 'int8' else None)
        runtimes[f'tensorrt {precision}'] = create_backend(
            'tensorrt', precision=precision, cache_dir=cache_dir)
    results: dict[str, dict[str, float]] = {}
    with Detector(card=card, backend='onnxruntime') as detector:
        for label, backend in runtimes.items():
            with backend:
                backend.load(onnx_path)
                results[label] = _time_frames(detector, backend, frames, iterations, warmup)
    reference = results['onnxruntime']
    output(f'{card.name} at {frame_size[0]}x{frame_size[1]}, {iterations} frames each '
           '(ms; ratio = ONNX Runtime median / this median)')
    output(f'{"runtime":18} {"infer p50":>10} {"infer p90":>10} {"frame p50":>10} '
           f'{"frame p90":>10} {"infer x":>8} {"frame x":>8}')
    for label, figures in results.items():
        output(f'{label:18} {figures["inference_p50_ms"]:10.3f} '
               f'{figures["inference_p90_ms"]:10.3f} {figures["frame_p50_ms"]:10.3f} '
               f'{figures["frame_p90_ms"]:10.3f} '
               f'{reference["inference_p50_ms"] / figures["inference_p50_ms"]:8.2f} '
               f'{reference["frame_p50_ms"] / figures["frame_p50_ms"]:8.2f}')
    return results


def _time_frames(detector: Any, backend: Any, frames: Sequence[np.ndarray], iterations: int,
                 warmup: int) -> dict[str, float]:
    # The detector supplies the card's preprocessing and decoding; the backend
    # under test replaces only the inference between them.
    input_name = backend.inputs[0].name
    inference, whole = [], []
    for index in range(warmup + iterations):
        start = time.perf_counter()
        tensor, geometry = detector.preprocess(frames[index % len(frames)], 'bgr')
        inferred_from = time.perf_counter()
        outputs = backend.infer({input_name: tensor})
        inferred = time.perf_counter()
        detector.postprocess(outputs, geometry)
        end = time.perf_counter()
        if index >= warmup:
            inference.append((inferred - inferred_from) * 1e3)
            whole.append((end - start) * 1e3)
    return {'inference_p50_ms': statistics.median(inference),
            'inference_p90_ms': float(np.percentile(inference, 90)),
            'frame_p50_ms': statistics.median(whole),
            'frame_p90_ms': float(np.percentile(whole, 90))}
