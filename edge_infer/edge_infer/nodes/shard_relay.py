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
Shard relay node: runs one piece of a split network and passes its tensor on.

Shard 0 subscribes the preprocess node's ``input_tensor``; shard ``i`` subscribes
``shard_<i>/input``. Every shard but the last runs its piece and publishes its cut
tensor, in the layout's wire codec, on ``shard_<i+1>/input``; the last one decodes the
model outputs with the card's decoder and publishes ``detections`` and ``model_info``
exactly as the single detector does, the trace extended by each relay's stages
(``shard0``, ``shard0.encode``, ``shard1.decode``, ``shard1``, ..., ``postprocess``).

With ``fallback`` ``rest`` (or ``whole`` on shard 0), a relay keeps each forwarded
tensor until the frame's detections come back. A frame unanswered after
``deadline_ms`` is completed here, and the relay runs the rest of the network itself
until a probe frame (one per second while a downstream subscriber is matched) is
answered again. See :mod:`edge_infer.sharding.relay`. The tensors and detections go
through the transport (``edge_infer.transport``), numbered, so every hop counts what it
lost; the input's thread runs the shards and wakes for the deadline between frames,
so no load of frames can hold a timed-out frame back.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time

from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.frames import TensorFrame
from edge_infer.core.latency import Stage
from edge_infer.core.model_sealing import (
    encrypted_path, KeyFileError, ModelKeys, open_model, VERIFY_KEY_ENV)
from edge_infer.core.models import model_path, ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.preprocess import Geometry
from edge_infer.inference.detector import Detector, DetectorError
from edge_infer.nodes.base import (
    EdgeInferNode, main_for, SHARED_MEMORY_PARAMETER, StartupError)
from edge_infer.nodes.conversions import detections_to_msgs, model_info_msg
from edge_infer.sharding.layout import (
    DEFAULT_DEADLINE_MS, FALLBACKS, Layout, LayoutError, load_layout, parse_backends,
    ShardSpec)
from edge_infer.sharding.relay import (
    cached_shards, decode_input, DEFAULT_BACKENDS, EncodingMismatchError, FallbackMonitor,
    run_shards, shard_stage, ShardInputError, ShardRunner)
from edge_infer.sharding.split import SplitError
from edge_infer.sharding.wire import CodecError, COMPRESSIONS, encode, ShardFrame, WIRE_CODECS
from edge_infer.transport.input import FrameInput
from edge_infer.transport.kinds import DETECTIONS, SHARD_TENSORS, TENSORS
from edge_infer.transport.messages import header_msg, stage_to_msg, time_to_ns
from edge_infer.transport.output import FrameOutput
from edge_infer_msgs.msg import DetectionArray, ModelInfo
import numpy as np

FROM_LAYOUT = 'layout'

PARAMETERS = (
    ParameterSpec(name='layout', default='',
                  description='Layout YAML of the sharded deployment (edge_infer.sharding.'
                              'layout); the relay splits the model at its cuts.'),
    ParameterSpec(name='shard', default=0, minimum=0, maximum=1000,
                  description='Index of the shard this relay runs.'),
    ParameterSpec(name='shard_files', default=[],
                  description="The chain's shard ONNX files in order, instead of splitting "
                              'the model from the layout.'),
    ParameterSpec(name='model', default='',
                  description="Model card (name or path); empty: the layout's. Its decoder "
                              "turns the last shard's outputs into detections."),
    ParameterSpec(name='input_topic', default='',
                  description="Topic of incoming tensors; empty: 'input_tensor' for shard 0, "
                              "'shard_<i>/input' for the others."),
    ParameterSpec(name='output_topic', default='',
                  description="Topic of the outgoing tensor; empty: 'shard_<i+1>/input'."),
    ParameterSpec(name='codec', default=FROM_LAYOUT, choices=(FROM_LAYOUT, *WIRE_CODECS),
                  description="Wire codec of intermediate tensors; 'layout': the layout's "
                              '(raw without a layout).'),
    ParameterSpec(name='compression', default=FROM_LAYOUT,
                  choices=(FROM_LAYOUT, *COMPRESSIONS),
                  description="Lossless compression on the wire; 'layout': the layout's "
                              '(none without a layout).'),
    ParameterSpec(name='backend', default='',
                  description="Runtimes to try in order, e.g. 'tensorrt, onnxruntime'; "
                              "empty: the layout's, else onnxruntime."),
    ParameterSpec(name='threads', default=0, minimum=0, maximum=256,
                  description="Inference threads; 0: the layout's, else the runtime's default."),
    ParameterSpec(name='deadline_ms', default=0.0, minimum=0.0, maximum=600000.0,
                  description='Milliseconds to wait for the detections of a forwarded frame '
                              "before completing it here; 0: the layout's."),
    ParameterSpec(name='fallback', default=FROM_LAYOUT, choices=(FROM_LAYOUT, *FALLBACKS),
                  description="When the downstream shard stops answering: 'rest' runs the "
                              "remaining shards here, 'whole' (shard 0) the whole model, "
                              "'none' nothing; 'layout': the layout's, else 'rest'."),
    ParameterSpec(name='require_signed_models', default=False,
                  description='Split only a model whose signature verifies (as the '
                              "detector's parameter of that name); needs a 'layout'."),
    ParameterSpec(name='model_verify_key', default='',
                  description='Ed25519 public key file (PEM) that verifies model '
                              f'signatures; empty: the file ${VERIFY_KEY_ENV} names.'),
    SHARED_MEMORY_PARAMETER,
)


@dataclass(frozen=True)
class _Frame:
    """A frame in a relay: its tensor at this point of the network, and its data."""

    array: np.ndarray
    geometry: Geometry
    stamp_ns: int
    frame_id: str
    stages: tuple[Stage, ...]


class ShardRelayNode(EdgeInferNode):
    """Runs one shard of a split network; the last one publishes the detections."""

    def __init__(self) -> None:
        """Declare the parameters; the shard loads on configure."""
        # Set first: a failed configure releases whatever it got to.
        self._runners: list[ShardRunner] = []
        self._detector: Detector | None = None
        super().__init__(node_name='shard_relay', parameters=PARAMETERS)

    def build(self) -> None:
        """Load the shard, its fallback and its topics."""
        p = self.params
        layout = self._layout()
        card = self._card(layout)
        keys = self._model_keys()
        files = self._shard_files(layout, card, keys)
        index = p['shard']
        if index >= len(files):
            raise StartupError(f"shard_relay: parameter 'shard': {index} is not below the "
                               f'number of shards, {len(files)}')
        self._index, self._count = index, len(files)
        self._last = index == len(files) - 1
        shard_spec = layout.shards[index] if layout is not None else None
        self._codec = _setting(p['codec'], layout.codec if layout else None, 'raw')
        self._compression = _setting(
            p['compression'], layout.compression if layout else None, '')
        self._input_encoding = (self._codec, self._compression)
        self._stage_name = shard_stage(index)
        self._decode_stage = shard_stage(index, 'decode')
        self._encode_stage = shard_stage(index, 'encode')
        self._fallback = 'none' if self._last else _setting(
            p['fallback'], shard_spec.fallback if shard_spec else None, 'rest')
        if self._fallback == 'whole' and index > 0:
            raise StartupError("shard_relay: parameter 'fallback': 'whole' needs the model "
                               "input, which only shard 0 receives; use 'rest'")
        backends = _backends(p['backend'], shard_spec)
        threads = p['threads'] or (shard_spec.threads if shard_spec else None) or None
        needed = files[index:] if self._fallback == 'rest' else files[index:index + 1]
        try:
            runners = [ShardRunner(path=path, backends=backends, threads=threads,
                                   on_failure=self._log_backend_failure) for path in needed]
            self._detector = (Detector(card=card, model_keys=keys)
                              if self._last or self._fallback != 'none' else None)
        except (BackendError, ModelFileError, DetectorError) as error:
            raise StartupError(f'shard_relay: shard {index}: {error}') from error
        self._runners = runners
        self._runner, self._rest = runners[0], runners[1:]
        self._check_cuts(layout)
        self._wire_bytes = 0
        self._wire_frames = 0
        self._last_wire_bytes = 0
        deadline_ms = p['deadline_ms'] or (
            layout.deadline_for(index) if layout is not None else DEFAULT_DEADLINE_MS)
        self._monitor: FallbackMonitor[_Frame] | None = None
        # The input's thread routes, forwards and expires frames; the executor thread
        # takes the answers.
        self._lock = threading.Lock()
        if self._fallback != 'none':
            self._monitor = FallbackMonitor(deadline_s=deadline_ms / 1000.0)
            self.subscription(DetectionArray, 'detections', 'detections', self._on_detections,
                              authenticated=True)
        input_topic = p['input_topic'] or ('input_tensor' if index == 0
                                           else f'shard_{index}/input')
        self._shard_output: FrameOutput[ShardFrame] | None = None
        if not self._last:
            self._shard_output = FrameOutput(
                self, kind=SHARD_TENSORS, topic=p['output_topic'] or f'shard_{index + 1}/input',
                profile='tensors')
        if self._detector is not None:
            self.detections = FrameOutput(self, kind=DETECTIONS, topic='detections',
                                          profile='detections')
            # Transient local: kept for late subscribers as long as this publisher lives.
            self._info_pub = self.publisher(ModelInfo, 'model_info', 'model_info')
            info = model_info_msg(card, model_sha256=self._detector.model_sha256,
                                  backend=self._runner.backend_name)
            info.header.stamp = self.get_clock().now().to_msg()
            self._info_pub.publish(info)
        self.tensors: FrameInput[TensorFrame] | FrameInput[ShardFrame]
        if index == 0:
            # The preprocess node's model inputs, through shared memory on this host.
            self.tensors = FrameInput(self, kind=TENSORS, topic=input_topic, profile='tensors',
                                      handle=self._on_model_input,
                                      shared_memory=p['shared_memory'],
                                      deadline=self._next_expiry, on_deadline=self._expire)
        else:
            self.tensors = FrameInput(self, kind=SHARD_TENSORS, topic=input_topic,
                                      profile='tensors', handle=self._on_shard_tensor,
                                      shared_memory=False, deadline=self._next_expiry,
                                      on_deadline=self._expire)
        self._report()
        where = ('detections' if self._shard_output is None else
                 f"'{self._runner.outputs[0].name}' to '{self._shard_output.topic}' as "
                 f"{self._codec}{'+' + self._compression if self._compression else ''}")
        fallback = ('' if self._last else f"; fallback '{self._fallback}'" + (
            f' after {deadline_ms:g} ms' if self._monitor else ''))
        self.get_logger().info(
            f"shard {index} of {self._count} of '{card.name}' on "
            f"{self._runner.backend_name}: '{self._runner.input_spec.name}' "
            f'{self._runner.input_spec.describe()} from {input_topic!r} -> {where}{fallback}')

    def release(self) -> None:
        """Close the shards' backends and the fallback's: the accelerator is free."""
        runners, self._runners = self._runners, []
        for runner in runners:
            runner.close()
        detector, self._detector = self._detector, None
        if detector is not None:
            detector.close()

    def _layout(self) -> Layout | None:
        p = self.params
        if bool(p['layout']) == bool(p['shard_files']):
            raise StartupError("shard_relay: give parameter 'layout' (with 'shard') or "
                               "'shard_files' (with 'shard' and 'model'): exactly one of them")
        if not p['layout']:
            return None
        try:
            return load_layout(p['layout'])
        except LayoutError as error:
            raise StartupError(f"shard_relay: parameter 'layout': {error}") from error

    def _card(self, layout: Layout | None) -> ModelCard:
        model = self.params['model']
        if layout is not None:
            if model and model != layout.model:
                raise StartupError(
                    f"shard_relay: parameter 'model': {model!r} differs from the layout's "
                    f'model {layout.model!r}; leave it empty or make them agree')
            model = layout.model
        if not model:
            raise StartupError("shard_relay: parameter 'model': needed with 'shard_files'")
        try:
            card = load_card(model)
        except (CardError, OSError) as error:
            raise StartupError(f"shard_relay: parameter 'model': {error}") from error
        if card.model_format != 'onnx':
            raise StartupError(
                f"shard_relay: parameter 'model': {card.name!r} is a {card.model_format} "
                'model; shards are cut from ONNX models')
        return card

    def _model_keys(self) -> ModelKeys:
        p = self.params
        try:
            keys = ModelKeys.load(require_signed=p['require_signed_models'],
                                  verify_key=p['model_verify_key'])
        except KeyFileError as error:
            raise StartupError(f'shard_relay: {error}') from error
        if keys.require_signed and p['shard_files']:
            raise StartupError("shard_relay: parameter 'require_signed_models': the files of "
                               "'shard_files' carry no signature; give a 'layout', whose "
                               'model is verified before it is split')
        return keys

    def _shard_files(self, layout: Layout | None, card: ModelCard, keys: ModelKeys) -> list:
        if layout is None:
            return list(self.params['shard_files'])
        sealed = encrypted_path(model_path(card))
        if sealed.is_file():
            # Shards are files: splitting would write the decrypted model to disk.
            raise StartupError(f"shard_relay: model '{card.name}' is encrypted ({sealed}); "
                               'shards are cut into plain files, so a sharded deployment '
                               'takes a plain model (signed, with require_signed_models)')
        try:
            model = open_model(card, keys)
            return cached_shards(model_path=model.path, model_sha256=model.sha256,
                                 cuts=layout.cuts)
        except (ModelFileError, SplitError, OSError) as error:
            raise StartupError(f"shard_relay: cannot split '{card.name}' at the layout's "
                               f'cuts: {error}') from error

    def _check_cuts(self, layout: Layout | None) -> None:
        outputs = [spec.name for spec in self._runner.outputs]
        if not self._last and len(outputs) != 1:
            raise StartupError(f'shard_relay: shard {self._index} has outputs {outputs}; '
                               'a shard before the last passes on exactly one tensor')
        if layout is None:
            return
        # The splitter orders cuts along the network; a layout listing them in another
        # order would chain shards that do not fit.
        ends = (layout.cuts[self._index - 1] if self._index else self._runner.input_spec.name,
                outputs[0] if self._last else layout.cuts[self._index])
        if (self._runner.input_spec.name, outputs[0]) != ends:
            raise StartupError(
                f'shard_relay: layout cuts {list(layout.cuts)} are not in network order: '
                f"shard {self._index} runs from '{self._runner.input_spec.name}' to "
                f"'{outputs[0]}', not from '{ends[0]}' to '{ends[1]}'")

    def _log_backend_failure(self, backend: str, reason: str) -> None:
        self.get_logger().warning(f"backend '{backend}' cannot run this shard: {reason}")

    def _report(self) -> None:
        self.report('shard', lambda: self._index)
        self.report('wire_bytes_per_frame', lambda: (
            round(self._wire_bytes / self._wire_frames) if self._wire_frames else 0))
        self.report('wire_bytes_last', lambda: self._last_wire_bytes)
        monitor = self._monitor
        if monitor is None:
            return
        self.report('mode', lambda: monitor.state)
        self.report('forwarded', lambda: monitor.forwarded)
        self.report('acknowledged', lambda: monitor.acknowledged)
        self.report('superseded', lambda: monitor.superseded)
        self.report('completed_locally', lambda: monitor.timed_out)
        self.report('ran_locally', lambda: monitor.ran_locally)
        self.report('late_answers', lambda: monitor.late_answers)
        self.report('fallback_switches', lambda: monitor.switches)
        self.report('pending', lambda: monitor.pending)

    def _on_model_input(self, frame: TensorFrame) -> None:
        # Shard 0: the preprocess node's tensor, counted received by the input.
        try:
            self._runner.check(frame.tensor)
        except ShardInputError as error:
            self.drop_frame('tensor_mismatch', error)
            return
        self._route(_Frame(array=frame.tensor, geometry=frame.geometry,
                           stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           stages=frame.stages))

    def _on_shard_tensor(self, frame: ShardFrame) -> None:
        # The previous relay's cut tensor, in the layout's wire codec.
        received_ns = time.time_ns()
        codec, compression = self._input_encoding
        try:
            array = decode_input(frame.encoded, spec=self._runner.input_spec,
                                 codec=codec, compression=compression)
        except EncodingMismatchError as error:
            self.drop_frame('codec_mismatch', error)
            return
        except ShardInputError as error:
            self.drop_frame('tensor_mismatch', error)
            return
        except (CodecError, ValueError) as error:
            self.drop_frame('bad_tensor', error)
            return
        self._route(_Frame(
            array=array, geometry=frame.geometry, stamp_ns=frame.stamp_ns,
            frame_id=frame.frame_id,
            stages=(*frame.stages, self._stage(self._decode_stage, received_ns))))

    def _route(self, frame: _Frame) -> None:
        if not _finite_on_wire(frame.array, 'raw'):
            # A NaN or infinite input (an int8 scale that overflows, say) makes NaN
            # scores, which the decoder's threshold hides: the frame would be published
            # as one without detections. Refused, as the detector refuses it.
            self.drop_frame('non_finite', ValueError(
                f'the input of shard {self._index} holds NaN or infinity'))
            return
        if self._last:
            self._complete(frame, first=self._index, runners=[self._runner])
            return
        if self._monitor is None:
            self._forward(frame)
            return
        with self._lock:
            forward = self._monitor.route(time.monotonic(), peer_present=self._peer_present())
        if forward:
            self._forward(frame)
        elif self._fallback == 'whole':
            self._whole(frame)
        else:
            self._complete(frame, first=self._index, runners=[self._runner, *self._rest])

    def _peer_present(self) -> bool:
        return self._shard_output is not None and self._shard_output.subscribers() > 0

    def _forward(self, frame: _Frame) -> None:
        if self._monitor is None and not self._peer_present():
            self.counters.drop('no_subscriber')
            return
        start = time.time_ns()
        (output,) = self._runner.run(frame.array).values()
        shard = self._stage(self._stage_name, start)
        if not _finite_on_wire(output, self._codec):
            # A NaN input, or an activation beyond fp16's range, would reach the next
            # shard and its detections: refused here, as the detector refuses it.
            self.drop_frame('non_finite', ValueError(
                f'the output of shard {self._index} holds NaN or infinity as '
                f'{self._codec} on the wire'))
            return
        encode_start = time.time_ns()
        try:
            encoded = encode(output, codec=self._codec, compression=self._compression)
        except CodecError as error:
            self.drop_frame('codec_error', error)
            return
        stages = (*frame.stages, shard, self._stage(self._encode_stage, encode_start))
        self._next_shard().publish(ShardFrame(
            encoded=encoded, name=self._runner.outputs[0].name, geometry=frame.geometry,
            stamp_ns=frame.stamp_ns, frame_id=frame.frame_id, stages=stages))
        self._last_wire_bytes = len(encoded.data)
        self._wire_bytes += self._last_wire_bytes
        self._wire_frames += 1
        if self._monitor is None:
            self.counters.process()
            return
        with self._lock:
            if self._was_local():
                self.get_logger().info(f'probing shard {self._index + 1} with one frame',
                                       throttle_duration_sec=10.0)
            kept = frame.array if self._fallback == 'whole' else output
            # The key that the stage's start in the answer's trace gives back.
            self._monitor.sent(start, _Frame(
                array=kept, geometry=frame.geometry, stamp_ns=frame.stamp_ns,
                frame_id=frame.frame_id, stages=stages), time.monotonic())

    def _was_local(self) -> bool:
        return self._monitor is not None and self._monitor.state == 'local'

    def _next_shard(self) -> FrameOutput[ShardFrame]:
        if self._shard_output is None:
            raise RuntimeError('the last shard has no next shard to forward to')
        return self._shard_output

    def _local_detector(self) -> Detector:
        if self._detector is None:
            raise RuntimeError("a shard without a fallback ('none') completes no frame")
        return self._detector

    def _complete(self, frame: _Frame, *, first: int, runners: list[ShardRunner]) -> None:
        outputs, stages = run_shards(runners, frame.array, first_index=first)
        done = (*frame.stages, *(self._stage(name, start, end) for name, start, end in stages))
        start = time.time_ns()
        try:
            detections = self._local_detector().postprocess(outputs, frame.geometry)
        except DetectorError as error:
            self.drop_frame(error.reason, error)
            return
        self._publish(detections, frame, (*done, self._stage('postprocess', start)))

    def _whole(self, frame: _Frame) -> None:
        detector = self._local_detector()
        try:
            detections = detector.infer(frame.array, frame.geometry)
        except DetectorError as error:
            self.drop_frame(error.reason, error)
            return
        self._publish(detections, frame, (*frame.stages, *(
            self._stage(name, *times) for name, times in detector.last_stages.items())))

    def _publish(self, detections: list, frame: _Frame, stages: tuple[Stage, ...]) -> None:
        out = DetectionArray(header=header_msg(frame.stamp_ns, frame.frame_id),
                             image_width=frame.geometry.source_width,
                             image_height=frame.geometry.source_height)
        out.detections = detections_to_msgs(detections)
        out.trace = [stage_to_msg(stage) for stage in stages]
        self.detections.publish(out)
        self.counters.process()

    def _on_detections(self, msg: DetectionArray) -> None:
        monitor = self._monitor
        if monitor is None or (msg.trace and msg.trace[-1].node == self.get_name()):
            return  # no fallback; or our own, from running the rest here
        for timing in msg.trace:
            if timing.stage == self._stage_name and timing.node == self.get_name():
                with self._lock:
                    was_local = self._was_local()
                    superseded = monitor.acknowledge(time_to_ns(timing.start))
                if superseded is not None:
                    self.counters.process()
                    # Forwarded before this one and dropped downstream for a fresher one.
                    self.counters.drop('superseded_downstream', superseded)
                    if was_local:
                        self.get_logger().info(
                            f'shard {self._index + 1} answers again; back to the split')
                        self.set_health(ok=True, message='running')
                return

    def _next_expiry(self) -> float | None:
        if self._monitor is None:
            return None  # no fallback, nothing to wait for
        with self._lock:
            return self._monitor.next_expiry()

    def _expire(self) -> None:
        monitor = self._monitor
        if monitor is None:
            return  # no fallback: nothing expires
        with self._lock:
            was_local = self._was_local()
            kept, superseded = monitor.expire(time.monotonic())
        if kept is None:
            return
        if not was_local:
            message = (f'shard {self._index + 1} did not answer within '
                       f'{monitor.deadline_s * 1000:g} ms; running '
                       f"{'the whole model' if self._fallback == 'whole' else 'the rest'} "
                       'here until it does')
            self.get_logger().warning(message)
            self.set_health(ok=True, message=message)
        # Only the freshest unanswered frame is worth completing; the older ones were
        # forwarded to a peer that is gone and are superseded by it.
        self.counters.drop('peer_timeout', superseded)
        if self._fallback == 'whole':
            self._whole(kept)
        else:
            self._complete(kept, first=self._index + 1, runners=self._rest)

    def _stage(self, name: str, start_ns: int, end_ns: int | None = None) -> Stage:
        return Stage(stage=name, node=self.get_name(), start_ns=start_ns,
                     end_ns=time.time_ns() if end_ns is None else end_ns)


def _finite_on_wire(array: np.ndarray, codec: str) -> bool:
    """Return whether ``array`` stays finite as ``codec`` sends it (fp16 ends at 65504)."""
    if not np.issubdtype(array.dtype, np.floating):
        return True
    with np.errstate(over='ignore'):  # the overflow is what is looked for
        return bool(np.isfinite(array.astype(np.float16) if codec == 'fp16' else array).all())


def _setting(value: str, from_layout: str | None, default: str) -> str:
    if value != FROM_LAYOUT:
        return value
    return default if from_layout is None else from_layout


def _backends(value: str, shard_spec: ShardSpec | None) -> tuple[str, ...]:
    return (parse_backends(value) or (shard_spec.backend if shard_spec else ())
            or DEFAULT_BACKENDS)


def main() -> None:
    """Run the shard relay node."""
    main_for(ShardRelayNode)
