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
Start edge_infer nodes as separate processes, the way ``ros2 launch`` would.

Where ``launch`` is not installed (the PyPI ROS wheels do not carry it), the demo and
the integration tests still run the real node executables over real DDS, from the same
:class:`~edge_infer.bringup.plan.NodeSpec` list that the launch file uses.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Mapping, Sequence, TextIO

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from edge_infer.bringup.hosts import Host
from edge_infer.bringup.plan import dds_environment, NodeSpec, PACKAGE, ParameterOverride
import yaml

# The detector node logs "'<model>' on <runtime>" once its model is loaded.
DETECTOR_READY_LINE = "' on "
STARTUP_TIMEOUT_S = 120.0
# Time for the subscriptions of a newly started node to match the running ones.
DISCOVERY_WAIT_S = 1.0


def executable_dir(package: str = PACKAGE) -> Path:
    """Folder of a package's node executables (``lib/<package>`` in its prefix)."""
    return Path(get_package_prefix(package)) / 'lib' / package


def config_dir(package: str = PACKAGE) -> Path:
    """Return the package's installed ``config`` folder."""
    return Path(get_package_share_directory(package)) / 'config'


def node_environment(*, dds_profile: str = 'local',
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: the DDS profile, unbuffered line output."""
    env = dict(os.environ if base is None else base)
    env.update(dds_environment(dds_profile, config_dir=config_dir(),
                               ros_distro=env.get('ROS_DISTRO')))
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    return env


_PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    # A node must not outlive the tool or test that started it, even when that one
    # crashes: Linux sends the node SIGTERM when its parent ends.
    if sys.platform.startswith('linux'):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class NodeProcess:
    """One running node executable whose output is collected line by line."""

    def __init__(self, *, spec: NodeSpec, command: Sequence[str], env: Mapping[str, str],
                 echo: TextIO | None) -> None:
        self.spec = spec
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._echo = echo
        self.popen = subprocess.Popen(
            list(command), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, bufsize=1, preexec_fn=_end_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._lock:
                self._lines.append(line.rstrip('\n'))
            if self._echo is not None:
                self._echo.write(f'[{self.spec.name}] {line}')
                self._echo.flush()

    def output(self) -> str:
        """Everything the process printed so far."""
        with self._lock:
            return '\n'.join(self._lines)

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """Wait until ``text`` appears in the output; False on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.popen.poll() is not None:
                self._reader.join(timeout=1.0)
                return text in self.output()
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 5.0) -> int:
        """Interrupt like Ctrl-C (nodes flush their reports), kill if it hangs."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(timeout=1.0)
        return self.popen.returncode


class NodeGroup:
    """Several node processes started together and stopped together."""

    def __init__(
            self, *, specs: Sequence[NodeSpec], namespace: str = '',
            params_file: Path | None = None,
            overrides: Mapping[str, Mapping[str, ParameterOverride]] | None = None,
            dds_profile: str = 'local', env: Mapping[str, str] | None = None,
            echo: TextIO | None = None, host: Host | None = None) -> None:
        """
        Prepare the nodes; :meth:`start` (or ``with``) starts them.

        :param host: a simulated host to run them in (``edge_infer.bringup.hosts``).
        """
        self._specs = list(specs)
        self._host = host
        self._scratch: Path | None = None
        self._namespace = namespace
        self._params_file = params_file
        self._overrides = overrides or {}
        self._env = node_environment(dds_profile=dds_profile, base=env)
        self._echo = echo
        self.processes: dict[str, NodeProcess] = {}

    def start(self) -> NodeGroup:
        """Start every node; returns self for ``with`` statements."""
        directory = executable_dir()
        self._scratch = Path(tempfile.mkdtemp(prefix='edge_infer_nodes_'))
        for spec in self._specs:
            overrides = spec.parameter_overrides(namespace=self._namespace,
                                                 overrides=self._overrides.get(spec.name))
            overrides_file = None
            if overrides:
                overrides_file = self._scratch / f'{spec.name}.yaml'
                overrides_file.write_text(yaml.safe_dump(overrides))
            command = spec.command(
                executable_dir=directory, namespace=self._namespace,
                params_file=self._params_file, overrides_file=overrides_file)
            if self._host is not None:
                command = self._host.command(command)
            self.processes[spec.name] = NodeProcess(
                spec=spec, command=command, env=self._env, echo=self._echo)
        return self

    def __getitem__(self, name: str) -> NodeProcess:
        return self.processes[name]

    def exited(self) -> dict[str, int]:
        """Nodes that have already ended, with their exit codes."""
        return {name: p.popen.returncode for name, p in self.processes.items()
                if p.popen.poll() is not None}

    def stop(self) -> dict[str, int]:
        """
        Stop all nodes in start order; returns their exit codes.

        Upstream first, so that each downstream node still takes in what was in flight
        and hears the final reports of the nodes before it.
        """
        codes = {name: process.stop() for name, process in self.processes.items()}
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        return codes

    def __enter__(self) -> NodeGroup:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
