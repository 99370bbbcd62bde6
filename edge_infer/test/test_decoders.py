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

"""Tests for edge_infer.core.decoders on synthetic outputs built from known boxes."""

import math
from pathlib import Path

from edge_infer.core.cards import (
    BoxFromKeypoints, DecoderSpec, GflDecoderSpec, GflLevel, load_card, SsdAnchorSpec,
    SsdDecoderSpec, YoloDecoderSpec)
from edge_infer.core.decoders import (
    create_decoder, DecoderError, generate_ssd_anchors, GflDecoder, recognise_yolo_output,
    SsdAnchorDecoder, YoloV5Decoder, YoloV8Decoder)
from edge_infer.core.nms import non_max_suppression
from edge_infer.inference.detector import Detector
import numpy as np
import pytest
import yaml

# Two objects in a 640x640 input: (x_min, y_min, x_max, y_max), class, score.
BOXES = np.array([[100.0, 50.0, 300.0, 450.0], [400.0, 400.0, 500.0, 620.0]], np.float32)
CLASSES = [2, 0]
SCORES = [0.9, 0.6]
NUM_CLASSES = 3
NUM_ROWS = 40
ROWS_WITH_OBJECTS = [7, 23]


def cxcywh(box: np.ndarray) -> list[float]:
    return [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]


def yolov8_rows() -> np.ndarray:
    """(N, 4 + C) rows: background everywhere except the two objects."""
    rng = np.random.default_rng(1)
    rows = np.zeros((NUM_ROWS, 4 + NUM_CLASSES), np.float32)
    rows[:, :4] = rng.uniform(10, 600, (NUM_ROWS, 4))
    rows[:, 4:] = rng.uniform(0.0, 0.2, (NUM_ROWS, NUM_CLASSES))
    for row, box, cls, score in zip(ROWS_WITH_OBJECTS, BOXES, CLASSES, SCORES):
        rows[row, :4] = cxcywh(box)
        rows[row, 4 + cls] = score
    return rows


def yolov5_rows() -> np.ndarray:
    """(N, 5 + C) rows with objectness."""
    v8 = yolov8_rows()
    rows = np.zeros((NUM_ROWS, 5 + NUM_CLASSES), np.float32)
    rows[:, :4] = v8[:, :4]
    rows[:, 4] = 0.3
    rows[:, 5:] = 0.5
    for row, cls, score in zip(ROWS_WITH_OBJECTS, CLASSES, SCORES):
        rows[row, 4] = 0.95
        rows[row, 5:] = 0.1
        rows[row, 5 + cls] = score / 0.95
    return rows


def assert_found(raw, boxes=BOXES, classes=CLASSES, scores=SCORES) -> None:
    order = np.argsort(-raw.scores)
    np.testing.assert_allclose(raw.boxes[order], boxes, atol=1e-3)
    np.testing.assert_array_equal(raw.class_ids[order], classes)
    np.testing.assert_allclose(raw.scores[order], scores, rtol=1e-5)
    assert raw.boxes.dtype == np.float32 and raw.class_ids.dtype == np.int32


def test_yolov5() -> None:
    decoder = YoloV5Decoder(input_width=640, input_height=640)
    raw = decoder.decode({'output0': yolov5_rows()[None]}, 0.5)
    assert_found(raw)
    assert raw.keypoints is None


def test_yolov8_channels_first() -> None:
    decoder = YoloV8Decoder(input_width=640, input_height=640)
    assert_found(decoder.decode({'output0': yolov8_rows().T[None]}, 0.5))


@pytest.mark.parametrize('kind', ['yolov8', 'yolo11'])
def test_yolov8_and_yolo11_from_card_spec(kind: str) -> None:
    decoder = create_decoder(DecoderSpec(kind=kind, yolo=YoloDecoderSpec()),
                             input_width=640, input_height=640, num_classes=NUM_CLASSES,
                             output_shapes={'output0': (1, 4 + NUM_CLASSES, NUM_ROWS)})
    assert_found(decoder.decode({'output0': yolov8_rows().T[None].copy()}, 0.5))


def test_yolov8_transposed_recognised_from_card_labels() -> None:
    decoder = create_decoder(DecoderSpec(kind='yolo11', yolo=YoloDecoderSpec()),
                             input_width=640, input_height=640, num_classes=NUM_CLASSES,
                             output_shapes={'output0': (1, NUM_ROWS, 4 + NUM_CLASSES)})
    assert not decoder.channels_first
    assert_found(decoder.decode({'output0': yolov8_rows()[None]}, 0.5))


def test_normalized_coordinates() -> None:
    rows = yolov8_rows()
    rows[:, :4] /= 640.0
    decoder = YoloV8Decoder(input_width=640, input_height=320, channels_first=False,
                            normalized=True)
    raw = decoder.decode({'out': rows[None]}, 0.5)
    expected = BOXES.copy()
    expected[:, [1, 3]] /= 2.0
    assert_found(raw, boxes=expected)


def test_threshold_filters_everything() -> None:
    decoder = YoloV8Decoder(input_width=640, input_height=640)
    raw = decoder.decode({'output0': yolov8_rows().T[None]}, 0.95)
    assert len(raw) == 0 and raw.boxes.shape == (0, 4)


@pytest.mark.parametrize('shape, classes, expected', [
    ((1, 84, 8400), 80, ('yolov8', True)),
    ((1, 8400, 84), 80, ('yolov8', False)),
    ((1, 25200, 85), 80, ('yolov5', False)),
    ((1, 84, 8400), None, ('yolov8', True)),
    ((None, 84, None), 80, ('yolov8', True)),
])
def test_auto_recognition(shape, classes, expected) -> None:
    assert recognise_yolo_output(shape, classes) == expected


@pytest.mark.parametrize('shape, classes', [
    ((1, 5, 6), 1),         # (1, N, 5+C) yolov5 and (1, 4+C, N) yolov8 at once
    ((1, 100, 7), 80),      # fits no head with 80 classes
    ((1, 84, 84), 80),      # square: channels could be either axis
    ((1, 8400, 85), None),  # no label count: v5 and transposed v8 look alike
    ((1, 8400), 80),
])
def test_auto_recognition_ambiguity(shape, classes) -> None:
    with pytest.raises(DecoderError, match='set decoder.type'):
        recognise_yolo_output(shape, classes)


def test_auto_decoder_with_static_and_dynamic_shapes() -> None:
    spec = DecoderSpec(kind='auto', yolo=YoloDecoderSpec())
    outputs = {'output0': yolov5_rows()[None]}
    static = create_decoder(spec, input_width=640, input_height=640, num_classes=NUM_CLASSES,
                            output_shapes={'output0': (1, NUM_ROWS, 5 + NUM_CLASSES)})
    assert isinstance(static, YoloV5Decoder)
    assert_found(static.decode(outputs, 0.5))
    # With a dynamic row count the head is recognised on the first outputs.
    dynamic = create_decoder(spec, input_width=640, input_height=640, num_classes=NUM_CLASSES,
                             output_shapes={'output0': (1, None, None)})
    assert_found(dynamic.decode(outputs, 0.5))
    with pytest.raises(DecoderError, match='set decoder.type'):
        create_decoder(spec, input_width=640, input_height=640, num_classes=1,
                       output_shapes={'output0': (1, 5, 6)})


def test_several_outputs_need_a_name() -> None:
    decoder = YoloV8Decoder(input_width=640, input_height=640)
    with pytest.raises(DecoderError, match='decoder.output'):
        decoder.decode({'a': np.zeros((1, 7, 40)), 'b': np.zeros((1, 7, 40))}, 0.5)


# MediaPipe pose-detector anchors: 28*28*2 + 14*14*2 + 7*7*6.
POSE_ANCHORS = SsdAnchorSpec(strides=(8, 16, 32, 32, 32), min_scale=0.1484375, max_scale=0.75,
                             fixed_anchor_size=True)


def test_anchor_generation_counts_and_centres() -> None:
    anchors = generate_ssd_anchors(POSE_ANCHORS, 224, 224)
    assert anchors.shape == (2254, 4)
    # First cell of the stride-8 map: two anchors at (0.5/28, 0.5/28).
    np.testing.assert_allclose(anchors[:2], [[0.5 / 28, 0.5 / 28, 1, 1]] * 2)
    np.testing.assert_allclose(anchors[2, :2], [1.5 / 28, 0.5 / 28])
    # The stride-32 map starts after 1568 + 392 anchors, six per cell.
    np.testing.assert_allclose(anchors[1960:1966, :2], [[0.5 / 7, 0.5 / 7]] * 6)
    np.testing.assert_allclose(anchors[-1, :2], [6.5 / 7, 6.5 / 7])
    face = SsdAnchorSpec(strides=(8, 16, 16, 16), min_scale=0.1484375, max_scale=0.75,
                         fixed_anchor_size=True)
    assert generate_ssd_anchors(face, 128, 128).shape == (896, 4)


def test_anchor_sizes_follow_scales() -> None:
    spec = SsdAnchorSpec(strides=(8, 16), min_scale=0.2, max_scale=0.6,
                         aspect_ratios=(1.0, 4.0))
    anchors = generate_ssd_anchors(spec, 64, 64)
    # Per cell of layer 0: ratio 1 and ratio 4 at scale 0.2, then the
    # interpolated anchor at sqrt(0.2 * 0.6).
    np.testing.assert_allclose(anchors[:3, 2:], [[0.2, 0.2], [0.4, 0.1],
                                                 [math.sqrt(0.12)] * 2], rtol=1e-6)
    # Last layer: interpolated with scale 1.0.
    np.testing.assert_allclose(anchors[-1, 2:], [math.sqrt(0.6)] * 2, rtol=1e-6)
    assert len(anchors) == 8 * 8 * 3 + 4 * 4 * 3


def encode_ssd(anchors: np.ndarray, size: int, box: np.ndarray, points: np.ndarray,
               order: str = 'xywh') -> np.ndarray:
    """Inverse of the SSD decoding for one anchor (pixels in, raw values out)."""
    anchor_x, anchor_y, anchor_w, anchor_h = anchors
    cx, cy, w, h = cxcywh(box)
    values = [(cx / size - anchor_x) * size / anchor_w, (cy / size - anchor_y) * size / anchor_h,
              w / anchor_w, h / anchor_h]
    for x, y in points:
        values += [(x / size - anchor_x) * size / anchor_w,
                   (y / size - anchor_y) * size / anchor_h]
    values = np.array(values, np.float32)
    if order == 'yxhw':
        values = values.reshape(-1, 2)[:, ::-1].ravel()
    return values


def ssd_outputs(order: str = 'xywh') -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    anchors = generate_ssd_anchors(POSE_ANCHORS, 224, 224)
    regressors = np.zeros((1, 2254, 12), np.float32)
    logits = np.full((1, 2254, 1), -8.0, np.float32)
    boxes = np.array([[30.0, 40.0, 90.0, 110.0], [150.0, 20.0, 200.0, 60.0]], np.float32)
    points = np.array([[[60.0, 200.0], [65.0, 10.0], [50.0, 70.0], [60.0, 30.0]],
                       [[170.0, 100.0], [180.0, 0.0], [175.0, 50.0], [176.0, 20.0]]],
                      np.float32)
    for index, box, kps, logit in zip((300, 2000), boxes, points, (2.0, 0.5)):
        regressors[0, index] = encode_ssd(anchors[index], 224, box, kps, order)
        logits[0, index] = logit
    return {'Identity': regressors, 'Identity_1': logits}, boxes, points


def ssd_spec(**overrides: object) -> SsdDecoderSpec:
    values = {'anchors': POSE_ANCHORS, 'box_scale': (224.0,) * 4, 'num_keypoints': 4}
    values.update(overrides)
    return SsdDecoderSpec(**values)


@pytest.mark.parametrize('order', ['xywh', 'yxhw'])
def test_ssd_decoder_boxes_keypoints_scores(order: str) -> None:
    outputs, boxes, points = ssd_outputs(order)
    shapes = {name: value.shape for name, value in outputs.items()}
    decoder = SsdAnchorDecoder(spec=ssd_spec(box_order=order), input_width=224,
                               input_height=224, output_shapes=shapes)
    raw = decoder.decode(outputs, 0.5)
    assert_found(raw, boxes=boxes, classes=[0, 0],
                 scores=[1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-0.5))])
    np.testing.assert_allclose(raw.keypoints[np.argsort(-raw.scores)], points, atol=1e-3)
    # 0.65 lies between the two sigmoid scores (0.88 and 0.62).
    assert len(decoder.decode(outputs, 0.65)) == 1


def test_ssd_outputs_found_by_shape_and_class_argmax() -> None:
    outputs, boxes, _ = ssd_outputs()
    logits = np.full((1, 2254, 2), -8.0, np.float32)
    logits[0, 300, 1] = 3.0
    outputs = {'scores': logits, 'boxes': outputs['Identity']}
    decoder = SsdAnchorDecoder(spec=ssd_spec(), input_width=224, input_height=224)
    raw = decoder.decode(outputs, 0.5)
    np.testing.assert_array_equal(raw.class_ids, [1])
    np.testing.assert_allclose(raw.boxes, boxes[:1], atol=1e-3)


def test_ssd_box_from_keypoints() -> None:
    outputs, _, points = ssd_outputs()
    rule = BoxFromKeypoints(center=0, radius=1, width_ratio=0.25)
    decoder = SsdAnchorDecoder(spec=ssd_spec(box_from_keypoints=rule), input_width=224,
                               input_height=224)
    raw = decoder.decode(outputs, 0.7)
    centre, edge = points[0, 0], points[0, 1]
    axis = edge - centre
    radius = float(np.hypot(*axis))
    unit = np.abs(axis / radius)
    half = (unit[0] * radius + unit[1] * 0.25 * radius,
            unit[1] * radius + unit[0] * 0.25 * radius)
    np.testing.assert_allclose(raw.boxes[0], [centre[0] - half[0], centre[1] - half[1],
                                              centre[0] + half[0], centre[1] + half[1]],
                               atol=1e-3)


@pytest.mark.parametrize('centre, edge, expected', [
    ((100, 150), (100, 50), (75, 50, 125, 250)),   # upright body
    ((100, 100), (200, 100), (0, 75, 200, 125)),   # lying body
])
def test_box_from_keypoints_orientation(centre, edge, expected) -> None:
    anchors = SsdAnchorSpec(strides=(8,), min_scale=0.1, max_scale=0.5,
                            fixed_anchor_size=True)
    spec = SsdDecoderSpec(anchors=anchors, box_scale=(256.0,) * 4, num_keypoints=2,
                          box_from_keypoints=BoxFromKeypoints(center=0, radius=1,
                                                              width_ratio=0.25))
    anchor_points = generate_ssd_anchors(anchors, 256, 256)
    regressors = np.zeros((1, len(anchor_points), 8), np.float32)
    regressors[0, 5] = encode_ssd(anchor_points[5], 256, np.array([0, 0, 1, 1]),
                                  np.array([centre, edge], np.float32))
    logits = np.full((1, len(anchor_points), 1), -9.0, np.float32)
    logits[0, 5] = 4.0
    decoder = SsdAnchorDecoder(spec=spec, input_width=256, input_height=256)
    raw = decoder.decode({'r': regressors, 's': logits}, 0.5)
    np.testing.assert_allclose(raw.boxes[0], expected, atol=1e-3)


def test_ssd_anchor_count_mismatch() -> None:
    with pytest.raises(DecoderError, match='2254 anchors'):
        SsdAnchorDecoder(spec=ssd_spec(), input_width=224, input_height=224,
                         output_shapes={'a': (1, 896, 12), 'b': (1, 896, 1)})


def test_ssd_too_few_values_for_keypoints() -> None:
    with pytest.raises(DecoderError, match='num_keypoints'):
        SsdAnchorDecoder(spec=ssd_spec(num_keypoints=6), input_width=224, input_height=224,
                         output_shapes={'a': (1, 2254, 12), 'b': (1, 2254, 1)})


def test_yolov5_shape_checked_at_creation() -> None:
    with pytest.raises(DecoderError, match='yolov5'):
        create_decoder(DecoderSpec(kind='yolov5', yolo=YoloDecoderSpec()), input_width=640,
                       input_height=640, num_classes=1, output_shapes={'o': (1, 100, 4)})


def test_yolo_card_end_to_end(tmp_path: Path) -> None:
    """A YOLOv8 card runs through backend, decoder, NMS and letterbox geometry."""
    onnx = pytest.importorskip('onnx')
    from onnx import helper, numpy_helper
    # A stand-in model: whatever the image, it outputs the synthetic head
    # for a 640x640 input, plus a duplicate of object 0 that NMS must drop.
    rows = yolov8_rows()
    duplicate = rows[ROWS_WITH_OBJECTS[0]].copy()
    duplicate[:2] += 4.0
    duplicate[4 + CLASSES[0]] = 0.8
    rows[0] = duplicate
    head = rows.T[None].astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('ReduceMax', ['images'], ['peak'], keepdims=0),
         helper.make_node('Mul', ['peak', 'zero'], ['nothing']),
         helper.make_node('Add', ['head', 'nothing'], ['output0'])],
        'fake_yolo',
        [helper.make_tensor_value_info('images', onnx.TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info('output0', onnx.TensorProto.FLOAT, list(head.shape))],
        initializer=[numpy_helper.from_array(head, 'head'),
                     numpy_helper.from_array(np.zeros((), np.float32), 'zero')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / 'fake.onnx')
    card_path = tmp_path / 'fake.yaml'
    card_path.write_text(yaml.safe_dump({
        'file': 'fake.onnx', 'format': 'onnx',
        'input': {'width': 640, 'height': 640, 'layout': 'NCHW', 'dtype': 'float32',
                  'color': 'rgb', 'resize': 'letterbox', 'std': [255.0] * 3},
        'decoder': {'type': 'auto'}, 'labels': ['person', 'bicycle', 'car'],
        'score_threshold': 0.5}))
    with Detector(card=load_card(card_path)) as detector:
        # 1280x960 source: scale 0.5, letterbox rows 80 above and below.
        detections = detector.detect(np.zeros((960, 1280, 3), np.uint8), 'bgr')
    assert [(d.label, round(d.score, 2)) for d in detections] == [('car', 0.9),
                                                                  ('person', 0.6)]
    expected = [[200, -60, 600, 740], [800, 640, 1000, 1080]]
    clipped = np.clip(expected, 0, [[1280, 960, 1280, 960]])
    found = [[d.x_min, d.y_min, d.x_max, d.y_max] for d in detections]
    np.testing.assert_allclose(found, clipped, atol=1e-3)


# GFL (NanoDet) head: a 64x48 input, so the grids are 8x6 (stride 8), 4x3 (16)
# and 2x2 (32, the last row of cells reaching below the input).
GFL_SIZE = (64, 48)
GFL_LEVELS = tuple(GflLevel(stride=stride, scores_output=f'cls_{stride}',
                            boxes_output=f'reg_{stride}') for stride in (8, 16, 32))
# One object per stride: stride, cell (column, row), box in input pixels, class, score.
# Cell centres are (index + 0.5) * stride.
GFL_OBJECTS = [
    (8, (5, 1), (36.0, 2.0, 60.0, 30.0), 2, 0.9),     # centre (44, 12)
    (16, (1, 2), (4.0, 14.0, 50.0, 47.0), 0, 0.8),    # centre (24, 40)
    (32, (1, 1), (0.0, 1.0, 63.0, 56.0), 1, 0.6),     # centre (48, 48), below the input
]


def encode_distance(distance: float, bins: int) -> np.ndarray:
    """Bin logits whose softmax expectation is ``distance`` (in strides) exactly."""
    low = min(int(math.floor(distance)), bins - 1)
    weights = np.zeros(bins, np.float64)
    weights[low] = 1.0 - (distance - low)
    if low + 1 < bins:
        weights[low + 1] = distance - low
    # exp(-1e4) is 0 in float32, so the other bins weigh nothing.
    return np.where(weights > 0, np.log(np.maximum(weights, 1e-300)), -1e4).astype(np.float32)


def encode_gfl_box(box, centre, stride: int, reg_max: int) -> np.ndarray:
    """Return the 4 * (reg_max + 1) logits of a box: left, top, right, bottom distances."""
    sides = (centre[0] - box[0], centre[1] - box[1], box[2] - centre[0], box[3] - centre[1])
    return np.concatenate([encode_distance(side / stride, reg_max + 1) for side in sides])


def gfl_outputs(objects=GFL_OBJECTS, *, size=GFL_SIZE, levels=GFL_LEVELS, reg_max: int = 7,
                num_classes: int = 3, offset: float = 0.5,
                seed: int = 2) -> dict[str, np.ndarray]:
    """Background everywhere (scores below 0.3, random distributions) but the objects."""
    rng = np.random.default_rng(seed)
    outputs = {}
    for level in levels:
        cols, rows = (math.ceil(side / level.stride) for side in size)
        outputs[level.scores_output] = rng.uniform(
            0.0, 0.3, (1, rows * cols, num_classes)).astype(np.float32)
        outputs[level.boxes_output] = rng.normal(
            0.0, 2.0, (1, rows * cols, 4 * (reg_max + 1))).astype(np.float32)
    by_stride = {level.stride: level for level in levels}
    for stride, (col, row), box, cls, score in objects:
        level = by_stride[stride]
        cell = row * math.ceil(size[0] / stride) + col
        centre = ((col + offset) * stride, (row + offset) * stride)
        outputs[level.scores_output][0, cell, cls] = score
        outputs[level.boxes_output][0, cell] = encode_gfl_box(box, centre, stride, reg_max)
    return outputs


def gfl_decoder(**options: object) -> GflDecoder:
    spec_options = {'levels': GFL_LEVELS, 'reg_max': 7, 'center_offset': 0.5}
    spec_options.update({key: options.pop(key) for key in list(options)
                         if key in ('levels', 'reg_max', 'center_offset', 'score_activation')})
    values = {'input_width': GFL_SIZE[0], 'input_height': GFL_SIZE[1], 'num_classes': 3}
    values.update(options)
    return GflDecoder(spec=GflDecoderSpec(**spec_options), **values)


def shapes_of(outputs: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {name: value.shape for name, value in outputs.items()}


def test_gfl_decodes_known_boxes_on_every_stride() -> None:
    outputs = gfl_outputs()
    decoder = gfl_decoder(output_shapes=shapes_of(outputs))
    raw = decoder.decode(outputs, 0.5)
    assert_found(raw, boxes=np.array([obj[2] for obj in GFL_OBJECTS], np.float32),
                 classes=[obj[3] for obj in GFL_OBJECTS], scores=[obj[4] for obj in GFL_OBJECTS])
    assert raw.keypoints is None and raw.scores.dtype == np.float32


def test_gfl_distances_are_softmax_expectations() -> None:
    # A spread distribution: the distance is the mean bin, not the most likely one.
    outputs = gfl_outputs([])
    logits = np.zeros(8, np.float32)
    logits[[1, 6]] = math.log(3.0)  # weights 3, 1, 1, 1, 1, 1, 3, 1 over bins 0..7
    expected = float(np.dot(np.exp(logits) / np.exp(logits).sum(), np.arange(8)))
    outputs['reg_16'][0, 4] = np.tile(logits, 4)
    outputs['cls_16'][0, 4, 1] = 0.7
    raw = gfl_decoder().decode(outputs, 0.5)
    centre = (0.5 * 16, 1.5 * 16)  # cell 4 of the 4-wide grid: column 0, row 1
    distance = expected * 16
    np.testing.assert_allclose(raw.boxes, [[centre[0] - distance, centre[1] - distance,
                                            centre[0] + distance, centre[1] + distance]],
                               rtol=1e-5)


def test_gfl_centre_offset() -> None:
    # The same outputs decoded with centres at index * stride move by half a stride.
    outputs = gfl_outputs()
    centred = gfl_decoder().decode(outputs, 0.5)
    corner = gfl_decoder(center_offset=0.0).decode(outputs, 0.5)
    half = np.array([obj[0] / 2 for obj in GFL_OBJECTS], np.float32)[:, None]
    np.testing.assert_allclose(corner.boxes, centred.boxes - half, atol=1e-4)


def test_gfl_every_class_above_the_threshold_is_a_candidate() -> None:
    outputs = gfl_outputs()
    outputs['cls_8'][0, 13, 0] = 0.7  # the stride-8 object's cell (row 1, column 5)
    raw = gfl_decoder().decode(outputs, 0.5)
    same_cell = raw.boxes[np.isin(raw.scores, np.float32([0.9, 0.7]))]
    assert len(raw) == 4 and len(same_cell) == 2
    np.testing.assert_array_equal(same_cell[0], same_cell[1])
    assert sorted(raw.class_ids[np.isin(raw.scores, np.float32([0.9, 0.7]))]) == [0, 2]


def test_gfl_threshold() -> None:
    outputs = gfl_outputs()
    decoder = gfl_decoder()
    assert sorted(decoder.decode(outputs, 0.7).scores.tolist()) == pytest.approx([0.8, 0.9])
    assert sorted(decoder.decode(outputs, 0.8).scores.tolist()) == pytest.approx([0.8, 0.9])
    nothing = decoder.decode(outputs, 0.95)
    assert len(nothing) == 0 and nothing.boxes.shape == (0, 4)
    # The background (below 0.3) joins in at a low threshold.
    assert len(decoder.decode(outputs, 0.25)) > 3


def test_gfl_sigmoid_scores() -> None:
    outputs = gfl_outputs()
    for level in GFL_LEVELS:
        probabilities = outputs[level.scores_output]
        outputs[level.scores_output] = np.log(probabilities / (1.0 - probabilities))
    raw = gfl_decoder(score_activation='sigmoid').decode(outputs, 0.5)
    assert_found(raw, boxes=np.array([obj[2] for obj in GFL_OBJECTS], np.float32),
                 classes=[obj[3] for obj in GFL_OBJECTS], scores=[obj[4] for obj in GFL_OBJECTS])


def test_gfl_nms_across_strides() -> None:
    # The stride-8 object seen again at stride 16 (score 0.7) and as another class
    # (score 0.75): NMS per class drops the duplicate, keeps the other class.
    box = GFL_OBJECTS[0][2]
    shifted = (box[0] + 2.0, box[1], box[2] + 2.0, box[3] + 1.0)
    extra = [(16, (2, 0), shifted, 2, 0.7), (16, (3, 1), box, 1, 0.75)]
    outputs = gfl_outputs(GFL_OBJECTS + extra)
    raw = gfl_decoder().decode(outputs, 0.5)
    assert len(raw) == 5
    kept = raw.select(non_max_suppression(raw.boxes, raw.scores, raw.class_ids,
                                          iou_threshold=0.6, max_detections=10))
    np.testing.assert_allclose(kept.scores, [0.9, 0.8, 0.75, 0.6], rtol=1e-6)
    np.testing.assert_array_equal(kept.class_ids, [2, 0, 1, 1])
    np.testing.assert_allclose(kept.boxes[2], box, atol=1e-3)


def test_gfl_tensorflow_output_names() -> None:
    # A card naming TensorFlow tensors ('Identity:0') finds the outputs a converter
    # named without the suffix, and the other way round.
    outputs = gfl_outputs()
    renamed = {f'{name}:0': value for name, value in outputs.items()}
    decoder = gfl_decoder(output_shapes=shapes_of(renamed))
    assert len(decoder.decode(renamed, 0.5)) == 3
    levels = tuple(GflLevel(stride=level.stride, scores_output=f'{level.scores_output}:0',
                            boxes_output=f'{level.boxes_output}:0') for level in GFL_LEVELS)
    assert len(gfl_decoder(levels=levels).decode(outputs, 0.5)) == 3


@pytest.mark.parametrize('change, message', [
    (lambda o: o.pop('reg_16'),
     "decoder.levels[1].boxes_output: the model has no output 'reg_16'"),
    (lambda o: o.update(cls_32=np.zeros((1, 6, 3), np.float32)),
     'decoder.levels[2].scores_output: stride 32 on the 64x48 input gives 4 cells'),
    (lambda o: o.update(reg_8=np.zeros((1, 48, 44), np.float32)),
     "decoder.levels[0].boxes_output: output 'reg_8' has shape (1, 48, 44); reg_max 7 "
     'needs (1, 48, 32) (reg_max 10?)'),
    (lambda o: o.update(cls_8=np.zeros((1, 48, 4), np.float32)),
     "decoder.levels[0].scores_output: output 'cls_8' scores 4 classes but the card has 3 "
     'labels'),
    (lambda o: o.update(reg_16=np.zeros((12, 32), np.float32)),
     "decoder.levels[1].boxes_output: output 'reg_16' has shape (12, 32); expected (1, cells"),
])
def test_gfl_outputs_that_do_not_fit(change, message: str) -> None:
    outputs = gfl_outputs()
    change(outputs)
    with pytest.raises(DecoderError) as at_creation:
        gfl_decoder(output_shapes=shapes_of(outputs))
    assert message in str(at_creation.value)
    # Without shapes up front, the first outputs are checked.
    with pytest.raises(DecoderError) as at_decoding:
        gfl_decoder().decode(outputs, 0.5)
    assert message in str(at_decoding.value)


def test_gfl_from_card_spec_checks_label_count() -> None:
    outputs = gfl_outputs()
    spec = DecoderSpec(kind='gfl', gfl=GflDecoderSpec(levels=GFL_LEVELS, reg_max=7,
                                                      center_offset=0.5))
    decoder = create_decoder(spec, input_width=64, input_height=48, num_classes=3,
                             output_shapes=shapes_of(outputs))
    assert isinstance(decoder, GflDecoder) and len(decoder.decode(outputs, 0.5)) == 3
    with pytest.raises(DecoderError, match='the card has 80 labels'):
        create_decoder(spec, input_width=64, input_height=48, num_classes=80,
                       output_shapes=shapes_of(outputs))


def test_gfl_card_end_to_end(tmp_path: Path) -> None:
    """A NanoDet-like card runs through backend, decoder, NMS across strides and letterbox."""
    onnx = pytest.importorskip('onnx')
    from onnx import helper, numpy_helper
    # NanoDet-m's layout: 416x416, strides 8/16/32, 11 bins per side, 80 classes;
    # outputs named as converted from TF.js, the card naming them as TF.js does.
    levels = tuple(GflLevel(stride=stride, scores_output=f'Identity{scores}',
                            boxes_output=f'Identity{boxes}')
                   for stride, scores, boxes in ((8, '', '_3'), (16, '_1', '_4'),
                                                 (32, '_2', '_5')))
    # In tensor pixels: a person (class 0) at stride 16, the same person seen
    # again at stride 32 with a lower score (NMS drops it), a dog (class 16) at
    # stride 8 beside it.
    objects = [(16, (10, 12), (120.0, 100.0, 220.0, 300.0), 0, 0.85),
               (32, (5, 6), (124.0, 104.0, 222.0, 296.0), 0, 0.6),
               (8, (40, 30), (300.0, 220.0, 360.0, 280.0), 16, 0.7)]
    outputs = gfl_outputs(objects, size=(416, 416), levels=levels, reg_max=10, num_classes=80)
    constants = [numpy_helper.from_array(value, f'{name}_value')
                 for name, value in outputs.items()]
    nodes = [helper.make_node('ReduceMax', ['images'], ['peak'], keepdims=0),
             helper.make_node('Mul', ['peak', 'zero'], ['nothing'])]
    nodes += [helper.make_node('Add', [f'{name}_value', 'nothing'], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes, 'fake_nanodet',
        [helper.make_tensor_value_info('images', onnx.TensorProto.FLOAT, [1, 3, 416, 416])],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(value.shape))
         for name, value in outputs.items()],
        initializer=constants + [numpy_helper.from_array(np.zeros((), np.float32), 'zero')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / 'fake.onnx')
    labels = [f'class_{i}' for i in range(80)]
    labels[0], labels[16] = 'person', 'dog'
    card_path = tmp_path / 'fake.yaml'
    card_path.write_text(yaml.safe_dump({
        'file': 'fake.onnx', 'format': 'onnx',
        'input': {'width': 416, 'height': 416, 'layout': 'NCHW', 'dtype': 'float32',
                  'color': 'bgr', 'resize': 'letterbox', 'mean': [103.53, 116.28, 123.675],
                  'std': [57.375, 57.12, 58.395], 'pad_value': 114},
        'decoder': {'type': 'gfl', 'reg_max': 10, 'center_offset': 0.5,
                    'levels': [{'stride': level.stride,
                                'scores_output': f'{level.scores_output}:0',
                                'boxes_output': f'{level.boxes_output}:0'}
                               for level in levels]},
        'labels': labels, 'score_threshold': 0.4, 'nms_iou_threshold': 0.6}))
    with Detector(card=load_card(card_path)) as detector:
        # 832x624 source: scale 0.5, letterbox rows 52 above and below.
        detections = detector.detect(np.zeros((624, 832, 3), np.uint8), 'bgr')
    assert [(d.label, d.class_id, round(d.score, 2)) for d in detections] == [
        ('person', 0, 0.85), ('dog', 16, 0.7)]
    found = [[d.x_min, d.y_min, d.x_max, d.y_max] for d in detections]
    np.testing.assert_allclose(found, [[240, 96, 440, 496], [600, 336, 720, 456]], atol=1e-3)
