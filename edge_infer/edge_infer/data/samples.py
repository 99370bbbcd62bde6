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

"""Sample input made from real photographs (scikit-image's data set)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

# Photographs of people, then one without, in the order a folder source plays them.
SAMPLE_PHOTOS = ('astronaut', 'camera', 'coffee')


def sample_photo(name: str) -> np.ndarray:
    """One of :data:`SAMPLE_PHOTOS` as an HxWx3 uint8 BGR image."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"unknown sample photo {name!r}; known: {', '.join(SAMPLE_PHOTOS)}")
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def write_sample_photos(folder: Path, names: tuple[str, ...] = SAMPLE_PHOTOS) -> list[Path]:
    """Write photographs as numbered PNGs (so a folder source keeps their order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob('*.png'):
        stale.unlink()
    paths = []
    for index, name in enumerate(names):
        path = folder / f'{index:02d}_{name}.png'
        cv2.imwrite(str(path), sample_photo(name))
        paths.append(path)
    return paths
