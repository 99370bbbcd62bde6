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

"""Ground truth for the sample photographs, shared by the model and node tests."""

Box = tuple[float, float, float, float]

# Set by looking at the photos (saved as PNG with a 32 px grid and viewed at 2x): the
# box from the top of the hair to the image bottom (both people are cut off there) and
# across the outermost pixels of body and clothes, not counting held objects (helmet,
# video camera).
PERSON_BOXES: dict[str, Box] = {
    'astronaut': (19.0, 14.0, 362.0, 512.0),  # hair top y 14, suit x 19 to 362
    'camera': (0.0, 63.0, 332.0, 512.0),  # coat at the left edge, gloved hand at x 332
}
# Set the same way: cheek to cheek, hairline to chin.
ASTRONAUT_FACE: Box = (178.0, 72.0, 270.0, 166.0)
# Photographs without people (checked by eye: an espresso cup, a cat's face, a rocket
# on its launch pad at dusk).
NO_PEOPLE = ['coffee', 'chelsea', 'rocket']


def iou(found: Box, truth: Box) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes."""
    width = min(found[2], truth[2]) - max(found[0], truth[0])
    height = min(found[3], truth[3]) - max(found[1], truth[1])
    inter = max(width, 0.0) * max(height, 0.0)
    area = ((found[2] - found[0]) * (found[3] - found[1])
            + (truth[2] - truth[0]) * (truth[3] - truth[1]))
    return inter / (area - inter)
