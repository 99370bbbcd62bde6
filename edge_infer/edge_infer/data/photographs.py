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
Real photographs with their objects boxed by hand, and the box arithmetic on them.

The generated frames are made of these photographs: the sample bags
(:mod:`edge_infer.data.sample_bags`) crop a scene and paste a person into it, and the
randomised evaluation set (:mod:`edge_infer.data.random_set`) draws windows of scenes
and pastes objects cut out by their boxes. Both take their ground truth from the boxes
here (:data:`PHOTOGRAPHS`), mapped through the same crops, resizes and pastes
(:func:`map_box`, :func:`clip_box`). The photographs live in a module of their own
because the random set builds on the sample bags (their ground-truth types and bag
writer), so the sample bags cannot import the random set.

The photographs ship with packages the project already depends on: scikit-image's
``skimage.data`` and matplotlib's sample data. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools

import cv2
import numpy as np
import skimage.data

__all__ = [
    'Box', 'box_area', 'clip_box', 'DISTRACTORS', 'map_box', 'PEOPLE', 'Photograph',
    'PHOTOGRAPHS', 'photograph',
]

# (x_min, y_min, x_max, y_max) in pixels.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Photograph:
    """A real photograph and the objects in it, boxed by hand in its own pixels."""

    name: str
    # Where it ships: 'scikit-image' (skimage.data) or 'matplotlib' (its sample data).
    package: str
    objects: tuple[tuple[str, Box], ...] = ()
    # Whether a frame may start from it (photographs with people never do, so that
    # every person in a frame is a pasted one, with a known box).
    scene: bool = True


# Boxes (x_min, y_min, x_max, y_max) in each photograph's own pixels, set by looking at
# it saved as PNG with a 32 px grid and, for the edges, zoomed 3 to 5 times with an
# 8 px grid. Person boxes run from the top of the hair (or cap) to the photograph's
# bottom edge, where all three people are cut off, and across the outermost pixels of
# body and clothes, not held objects (the astronaut's helmet, the video camera).
# Faces run cheek to cheek (ear to nose tip for the cameraman's three-quarter
# profile) and hairline (or cap brim) to chin. The astronaut's and the cameraman's
# person boxes are those of the tests' photo_truth.py.
PHOTOGRAPHS: dict[str, Photograph] = {photo.name: photo for photo in (
    Photograph('astronaut', 'scikit-image', (
        ('person', (19.0, 14.0, 362.0, 512.0)),
        ('face', (178.0, 72.0, 270.0, 166.0)),
    ), scene=False),
    # Grey-scale.
    Photograph('camera', 'scikit-image', (
        ('person', (0.0, 63.0, 332.0, 512.0)),
        ('face', (180.0, 128.0, 255.0, 192.0)),
    ), scene=False),
    # Rear Admiral Grace Hopper, 512x600: the cap's top at y 23, the left shoulder at
    # x 15, the right one past the photograph's edge.
    Photograph('grace_hopper', 'matplotlib', (
        ('person', (15.0, 23.0, 512.0, 600.0)),
        ('face', (165.0, 133.0, 362.0, 308.0)),
    ), scene=False),
    # A cat's head filling the photograph, cut off on three sides; the right ear's tip
    # at x 396.
    Photograph('chelsea', 'scikit-image', (('cat', (0.0, 0.0, 396.0, 300.0)),)),
    # An espresso cup (rim, body and handle) and the spoon on its saucer, whose handle
    # shows above the rim. The saucer is not a COCO object; the table under them fills
    # the photograph and has no box, so a detector naming it a dining table is scored
    # a false detection.
    Photograph('coffee', 'scikit-image', (
        ('cup', (173.0, 17.0, 409.0, 305.0)),
        ('spoon', (326.0, 67.0, 424.0, 325.0)),
    )),
    # The left image of the stereo pair, 741x500: tail light to front wheel, mirror
    # stalk to tyre. The garage's shelves behind it hold small things nobody boxed.
    Photograph('motorcycle', 'scikit-image', (('motorcycle', (93.0, 30.0, 683.0, 446.0)),)),
    # Scenes without anything to box: a rocket on its launch pad, galaxies, and three
    # grey-scale textures.
    Photograph('rocket', 'scikit-image'),
    Photograph('hubble_deep_field', 'scikit-image'),
    Photograph('brick', 'scikit-image'),
    Photograph('grass', 'scikit-image'),
    Photograph('gravel', 'scikit-image'),
)}
# The photographs of people, and those of other objects that a detector of people
# must not take for one.
PEOPLE = ('astronaut', 'camera', 'grace_hopper')
DISTRACTORS = ('chelsea', 'coffee', 'motorcycle')


@functools.lru_cache(maxsize=None)
def photograph(name: str) -> np.ndarray:
    """
    Return a photograph of :data:`PHOTOGRAPHS` as HxWx3 uint8 BGR (read-only).

    :raises KeyError: not one of them
    """
    package = PHOTOGRAPHS[name].package
    if package == 'matplotlib':
        import matplotlib.cbook
        path = matplotlib.cbook.get_sample_data(f'{name}.jpg', asfileobj=False)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f'cannot read {path}')
    else:
        if name == 'motorcycle':
            rgb = skimage.data.stereo_motorcycle()[0]
        else:
            rgb = getattr(skimage.data, name)()
        code = cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(rgb, code)
    image.flags.writeable = False
    return image


def clip_box(box: Box, region: Box) -> Box:
    """Return the part of a box inside a region (empty, x_max <= x_min, if none)."""
    return (max(box[0], region[0]), max(box[1], region[1]),
            min(box[2], region[2]), min(box[3], region[3]))


def box_area(box: Box) -> float:
    """Return a box's area (0 for an empty one)."""
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def map_box(box: Box, source: Box, target: Box, flip: bool = False) -> Box:
    """
    Map a box from a source rectangle onto a target one (mirrored when ``flip``).

    A crop and resize of a photograph maps its boxes from the cropped window (in the
    photograph's pixels) to the frame; a paste, from the cut-out to where it went. The
    result may reach outside the target: clip it with :func:`clip_box`.
    """
    sx = (target[2] - target[0]) / (source[2] - source[0])
    sy = (target[3] - target[1]) / (source[3] - source[1])
    x_min = target[0] + (box[0] - source[0]) * sx
    x_max = target[0] + (box[2] - source[0]) * sx
    if flip:
        x_min, x_max = target[0] + target[2] - x_max, target[0] + target[2] - x_min
    return (x_min, target[1] + (box[1] - source[1]) * sy, x_max,
            target[1] + (box[3] - source[1]) * sy)
