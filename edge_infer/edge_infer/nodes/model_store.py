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
Model store node: one per host; shares model versions with its peers and installs them.

Announces the versions its store holds (:class:`~edge_infer.core.rollout.VersionStore`)
and the one its detector serves on ``/model_versions`` (diagnostic_msgs/DiagnosticStatus,
transient local: name = host, hardware_id = its chunk service, message = the version
installed, a value per version = its manifest), and serves their files in chunks on
``~/chunk`` (edge_infer_msgs/ModelChunk).  A version a peer announces and this host
lacks is fetched chunk by chunk from any peer that has it, into a partial file that a
restart resumes at its size; then its sizes and sha256s, its signature and the AP gate
(AP@0.5 on ``validation_frames`` frames of the random set ``validation_seed``) decide:
admitted, or rejected (one line, counted, files deleted, remembered).  The newest
admitted version this host may install (canaries first: the others wait until every
canary announces it installed) goes to the detector on ``model_install``
(std_msgs/String: the card's path, transient local).  A version named on
``/model_rollback`` (std_msgs/String) is rejected here and the newest other installed.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
import socket
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from edge_infer.backends.base import BackendError
from edge_infer.core.cards import CardError, load_card, ModelCard
from edge_infer.core.model_sealing import KeyFileError, ModelKeys
from edge_infer.core.models import ModelFileError
from edge_infer.core.params import ParameterSpec
from edge_infer.core.rollout import (
    ModelVersion, newest_installable, ROLLOUT_QOS, RolloutError, verify_version, VersionStore)
from edge_infer.data.evaluation import evaluate_frames, GroundTruthBox
from edge_infer.data.random_set import random_frames, RandomSet
from edge_infer.data.sample_bags import ground_truth_boxes
from edge_infer.inference.detector import Detector, DetectorError
from edge_infer.nodes.base import EdgeInferNode, main_for, StartupError
from edge_infer_msgs.msg import ModelInfo
from edge_infer_msgs.srv import ModelChunk
import numpy as np
from rclpy.client import Client
from std_msgs.msg import String

VERSIONS_TOPIC = '/model_versions'
ROLLBACK_TOPIC = '/model_rollback'
INSTALL_TOPIC = 'model_install'
WORK_PERIOD_S = 0.5

PARAMETERS = (
    ParameterSpec(name='host', default='',
                  description="This host's name in announcements and canary lists; empty: "
                              'the machine name.'),
    ParameterSpec(name='store_dir', default='',
                  description='Folder of the version store (required).'),
    ParameterSpec(name='model_verify_key', default='',
                  description='Ed25519 public key file (PEM) that fetched versions must be '
                              'signed for; empty: the file $EDGE_INFER_MODEL_VERIFY_KEY names.'),
    ParameterSpec(name='chunk_bytes', default=256 * 1024, minimum=1024, maximum=16 * 1024 * 1024,
                  description='Bytes asked for per chunk.'),
    ParameterSpec(name='chunk_timeout', default=10.0, minimum=0.1, maximum=600.0,
                  description='Seconds to wait for a chunk before asking another peer.'),
    ParameterSpec(name='validation_seed', default=0,
                  description='Seed of the random set a fetched version is validated on.'),
    ParameterSpec(name='validation_frames', default=20, minimum=1, maximum=10000,
                  description='Frames of that set for the AP gate.'),
    ParameterSpec(name='backend', default='',
                  description="Runtimes for the validation, as the detector's 'backend'."),
)


class ModelStoreNode(EdgeInferNode):
    """Shares model versions with peers, checks fetched ones and installs the newest."""

    def __init__(self) -> None:
        """Declare the parameters; the store opens on configure."""
        super().__init__(node_name='model_store', parameters=PARAMETERS)

    def build(self) -> None:
        """Open the store, the topics and the chunk service; the fetching thread starts."""
        p = self.params
        if not p['store_dir']:
            raise StartupError("model_store: parameter 'store_dir' is required")
        try:
            self._keys = ModelKeys.load(require_signed=True, verify_key=p['model_verify_key'])
        except KeyFileError as error:
            raise StartupError(f'model_store: {error}') from error
        self.store = VersionStore(Path(p['store_dir']))
        self.host = p['host'] or socket.gethostname()
        self._lock = threading.Lock()
        # Peers, as they last announced: host -> (chunk service, installed, versions).
        self._peers: dict[str, tuple[str, str, dict[str, ModelVersion]]] = {}
        self._chunk_clients: dict[str, Client] = {}
        # What the detector on this host says it serves: (card name, model sha256).
        self._serving = ('', '')
        self._install_sent = ''
        self._announced: tuple[object, ...] = ()
        self._rolled_back: list[str] = []
        self._validation: list[tuple[int, np.ndarray, list[GroundTruthBox]]] | None = None
        self._count = {'fetched_bytes': 0, 'admitted': 0, 'rejected': 0, 'bad_announcements': 0}
        for key in self._count:
            self.report(f'rollout.{key}', partial(self._count.__getitem__, key))
        self.report('rollout.installed', lambda: self._installed())
        self._announce_pub = self.publisher(DiagnosticStatus, VERSIONS_TOPIC, ROLLOUT_QOS)
        self._install_pub = self.publisher(String, INSTALL_TOPIC, ROLLOUT_QOS)
        self.subscription(DiagnosticStatus, VERSIONS_TOPIC, ROLLOUT_QOS, self._on_announcement)
        self.subscription(String, ROLLBACK_TOPIC, ROLLOUT_QOS, self._on_rollback)
        self.subscription(ModelInfo, 'model_info', 'model_info', self._on_model_info)
        self.create_service(ModelChunk, '~/chunk', self._serve_chunk)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='model_store', daemon=True)
        self.on_start(self._worker.start)
        self.on_stop(self._stop_worker)

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join()

    # --- executor thread -----------------------------------------------------------

    def _on_announcement(self, msg: DiagnosticStatus) -> None:
        if msg.name == self.host:
            return
        try:
            versions = {kv.key: ModelVersion.from_json(kv.value) for kv in msg.values}
            if any(key != version.version for key, version in versions.items()):
                raise RolloutError('a value is keyed by another version than its manifest')
        except RolloutError as error:
            self._count['bad_announcements'] += 1
            self.get_logger().warning(f'ignoring the announcement of {msg.name!r}: {error}',
                                      throttle_duration_sec=10.0)
            return
        if msg.hardware_id not in self._chunk_clients:
            # Here, on the executor's thread, as every other entity of the node.
            self._chunk_clients[msg.hardware_id] = self.create_client(ModelChunk, msg.hardware_id)
        with self._lock:
            self._peers[msg.name] = (msg.hardware_id, msg.message, versions)

    def _on_rollback(self, msg: String) -> None:
        with self._lock:
            self._rolled_back.append(msg.data)

    def _on_model_info(self, msg: ModelInfo) -> None:
        self._serving = (msg.model_name, msg.model_sha256)

    def _serve_chunk(self, request: ModelChunk.Request,
                     response: ModelChunk.Response) -> ModelChunk.Response:
        try:
            data, size = self.store.read_chunk(request.version, request.file, request.offset,
                                               request.length)
        except (RolloutError, OSError) as error:
            response.ok, response.error = False, str(error)
            return response
        response.ok, response.size, response.data = True, size, data
        return response

    # --- the store's own thread ----------------------------------------------------

    def _work(self) -> None:
        while not self._stop.wait(WORK_PERIOD_S):
            try:
                self._step()
            except (OSError, RolloutError) as error:
                self.get_logger().error(f'model store: {error}', throttle_duration_sec=10.0)

    def _step(self) -> None:
        with self._lock:
            rolled_back, self._rolled_back = self._rolled_back, []
            peers = dict(self._peers)
        for version in rolled_back:
            if version not in self.store.rejected():
                self._reject(version, 'rolled back')
        wanted = self._wanted(peers)
        if wanted is not None:
            self._fetch(*wanted)
        versions = self.store.versions()
        target = newest_installable(versions, self.host,
                                    {host: peer[1] for host, peer in peers.items()})
        if target is not None and target.version != self._install_sent:
            self._install_pub.publish(String(data=str(self.store.card_path(target))))
            self._install_sent = target.version
            self.get_logger().info(f'installing version {target.version}')
        self._announce(versions)

    def _installed(self) -> str:
        """Return the version the detector serves: its card's name and model's sha256."""
        name, sha256 = self._serving
        for version in self.store.versions().values():
            try:
                if version.file(version.model).sha256 == sha256 \
                        and load_card(self.store.card_path(version)).name == name:
                    return version.version
            except (CardError, OSError):
                continue
        return ''

    def _announce(self, versions: dict[str, ModelVersion]) -> None:
        installed = self._installed()
        state = (tuple(sorted(versions)), installed)
        if state == self._announced:
            return
        self._announced = state
        self._announce_pub.publish(DiagnosticStatus(
            level=DiagnosticStatus.OK, name=self.host, message=installed,
            hardware_id=self.resolve_service_name('~/chunk'),
            values=[KeyValue(key=v.version, value=v.to_json()) for v in versions.values()]))

    def _wanted(self, peers: dict[str, tuple[str, str, dict[str, ModelVersion]]]
                ) -> tuple[ModelVersion, list[str]] | None:
        """Return a version some peer has and this store lacks, and the peers' services."""
        have, rejected = self.store.versions(), self.store.rejected()
        for _, _, versions in peers.values():
            for name, manifest in sorted(versions.items()):
                if name not in have and name not in rejected:
                    return manifest, [service for service, _, theirs in peers.values()
                                      if theirs.get(name) == manifest]
        return None

    def _fetch(self, manifest: ModelVersion, services: list[str]) -> None:
        start = time.monotonic()
        for entry in manifest.files:
            offset = self.store.partial_size(manifest.version, entry.name)
            if offset:
                self.get_logger().info(f'resuming {manifest.version}/{entry.name} at offset '
                                       f'{offset} of {entry.size}')
            while offset < entry.size:
                data = self._chunk(services, manifest, entry.name, offset)
                if data is None:
                    return  # no peer answered: the next step tries again from here
                offset = self.store.append(manifest.version, entry.name, offset, data)
                self._count['fetched_bytes'] += len(data)
        try:
            folder = self.store.finish(manifest)
            card = verify_version(folder, manifest, self._keys)
            ap = self._validate(card, manifest)
        except (RolloutError, ModelFileError, BackendError, DetectorError) as error:
            self._reject(manifest.version, str(error))
            return
        self.store.admit(manifest)
        self._count['admitted'] += 1
        self.get_logger().info(
            f'admitted version {manifest.version} in {time.monotonic() - start:.2f} s'
            + (f', AP@0.5 {ap:.3f} >= gate {manifest.ap_gate:g}' if ap is not None else ''))

    def _chunk(self, services: list[str], manifest: ModelVersion, name: str,
               offset: int) -> bytes | None:
        request = ModelChunk.Request(version=manifest.version, file=name, offset=offset,
                                     length=self.params['chunk_bytes'])
        for service in services:
            client = self._chunk_clients.get(service)
            if client is None or not client.service_is_ready():
                continue
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(self.params['chunk_timeout']) or self._stop.is_set():
                client.remove_pending_request(future)
                continue
            response = future.result()
            if response is not None and response.ok and len(response.data) \
                    and response.size == manifest.file(name).size:
                return bytes(response.data)
        return None

    def _validate(self, card: ModelCard, manifest: ModelVersion) -> float | None:
        """Return the AP@0.5 of the version on the validation frames; reject under the gate."""
        if not manifest.ap_gate:
            return None
        if self._validation is None:
            spec = RandomSet(seed=self.params['validation_seed'],
                             frames=self.params['validation_frames'])
            self._validation = [(frame.stamp_ns, image, ground_truth_boxes(frame))
                                for image, frame in random_frames(spec)]
        with Detector(card=card, backend=self.params['backend'] or None,
                      model_keys=self._keys) as detector:
            ap = evaluate_frames(detector, self._validation).summary.mean_average_precision
        if ap is None or ap < manifest.ap_gate:
            raise RolloutError(f'AP@0.5 {ap if ap is None else round(ap, 3)} on '
                               f'{len(self._validation)} validation frames is under the '
                               f'gate {manifest.ap_gate:g}')
        return ap

    def _reject(self, version: str, reason: str) -> None:
        self.store.reject(version, reason)
        self._count['rejected'] += 1
        if self._install_sent == version:
            self._install_sent = ''
        self.get_logger().error(f'rejected version {version}: {reason}')


def main() -> None:
    """Run the model store node."""
    main_for(ModelStoreNode)
