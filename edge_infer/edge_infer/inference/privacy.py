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
The privacy filter's face search: a face detector over the whole frame and its tiles.

A face model sees a 640x480 frame shrunk to its input (192x192 for BlazeFace full
range), where a face 16 px high is 5 px: too small. :class:`FaceFinder` also runs it
on a grid of overlapping tiles (:func:`edge_infer.core.privacy.tiles`), each seen
larger, and keeps every face found anywhere, since a face found twice is masked no
more than once. It checks a deadline between runs, so that a frame whose search runs
late is given up at once rather than finished for nothing.
"""

from __future__ import annotations

from dataclasses import replace
import time
from types import TracebackType

from edge_infer.core.cards import ModelCard
from edge_infer.core.detections import Detection
from edge_infer.core.privacy import tiles
from edge_infer.inference.detector import Detector
import numpy as np

__all__ = ['FaceFinder', 'FaceSearchLate']


class FaceSearchLate(TimeoutError):
    """The face search of a frame passed its deadline; what it found is incomplete."""


class FaceFinder:
    """Finds faces with one face model on a frame and on ``grid`` x ``grid`` tiles of it."""

    def __init__(self, *, card: ModelCard, score_threshold: float | None = None,
                 grid: int = 1, overlap: float = 0.25, backend: str | None = None,
                 threads: int | None = None) -> None:
        """
        Load the face model (see :class:`~edge_infer.inference.detector.Detector`).

        :param score_threshold: replaces the card's (a filter prefers recall)
        :param grid: 1 for the whole frame only; n adds n x n tiles
        :raises ModelFileError: the model file is missing or fails its sha256
        :raises BackendError: no backend serves the model
        :raises DetectorError: the model does not fit its card
        :raises ValueError: ``grid`` or ``overlap`` is out of range
        """
        tiles(16, 16, grid, overlap=overlap)  # checks them before the model loads
        if score_threshold is not None:
            card = replace(card, score_threshold=score_threshold)
        self._grid = grid
        self._overlap = overlap
        self._detector = Detector(card=card, backend=backend, threads=threads)

    @property
    def detector(self) -> Detector:
        """Return the face model's detector: its card, backend and report."""
        return self._detector

    def find(self, image: np.ndarray, color: str, *,
             deadline: float | None = None) -> list[Detection]:
        """
        Return the faces in a colour image, in its pixels, from the frame and each tile.

        :param color: the image's channel order, 'rgb' or 'bgr'
        :param deadline: ``time.monotonic()`` by which the search must be done
        :raises FaceSearchLate: the deadline passed before the last tile was searched
        """
        height, width = image.shape[:2]
        windows = [(0, 0, width, height)]
        if self._grid > 1:
            windows += tiles(width, height, self._grid, overlap=self._overlap)
        faces: list[Detection] = []
        for left, top, right, bottom in windows:
            if deadline is not None and time.monotonic() > deadline:
                raise FaceSearchLate(f'face search passed its deadline with {len(windows)} '
                                     f'windows, {len(faces)} faces found so far')
            found = self._detector.detect(image[top:bottom, left:right], color)
            faces += [replace(face, x_min=face.x_min + left, x_max=face.x_max + left,
                              y_min=face.y_min + top, y_max=face.y_max + top,
                              keypoints=tuple((x + left, y + top) for x, y in face.keypoints))
                      for face in found]
        if deadline is not None and time.monotonic() > deadline:
            raise FaceSearchLate('face search passed its deadline on its last window')
        return faces

    def close(self) -> None:
        """Release the face model."""
        self._detector.close()

    def __enter__(self) -> FaceFinder:
        """Return the finder itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Release the face model."""
        self.close()
