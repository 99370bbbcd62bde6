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
Simulated hosts on one Linux machine, for fleet tests and benchmarks (root only).

Each host is a network namespace on a LAN of its own (a bridge in a namespace of its
own, so nothing is added to the machine's own network), with, as a robot or a container
has, its own /dev/shm, its own PID namespace (processes on different hosts get the same
small PIDs) and its own boot id and machine id. Options make hosts share the /dev/shm
of the first one (containers sharing an IPC namespace) or its boot id (containers on
one machine). A host's link can be cut and restored.

Processes start in a host through this module's ``enter`` command (see
:meth:`Host.command`): it joins the host's namespaces, starts the program there and
passes SIGINT and SIGTERM on to it, so a node in a host stops as cleanly as one outside.
What is known to work here: ``shared/HOSTS_AS_NAMESPACES.md``.
"""

from __future__ import annotations

import argparse
import ctypes
from dataclasses import dataclass
import os
from pathlib import Path
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Sequence
import uuid

__all__ = ['Host', 'HostsUnavailable', 'SimulatedHosts', 'behind_door', 'hosts_available',
           'pid_in_host']

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWPID = 0x20000000
_PR_SET_PDEATHSIG = 1
# How long a host takes to come up at most.
_START_TIMEOUT_S = 10.0
_SHM_SIZE = '512m'
_SWITCH = 'lan'


class HostsUnavailable(RuntimeError):
    """Simulated hosts cannot be made here (not root, no ``ip netns``, no ``unshare``)."""


def hosts_available() -> str:
    """Return '' where simulated hosts can be made, else why not (for a skip reason)."""
    if not sys.platform.startswith('linux'):
        return 'simulated hosts need Linux namespaces'
    if os.geteuid() != 0:
        return 'simulated hosts need root (network, mount and PID namespaces)'
    missing = [tool for tool in ('ip', 'unshare', 'mount') if shutil.which(tool) is None]
    if missing:
        return f'simulated hosts need {", ".join(missing)}'
    return ''


def _run(*command: str) -> None:
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        raise HostsUnavailable(f'{" ".join(command)}: {finished.stderr.strip()}')


@dataclass
class Host:
    """One simulated host: its namespaces, its address on the LAN, its processes' door."""

    name: str
    netns: str
    address: str
    #: The switch's end of this host's cable.
    port: str
    switch: str
    holder: subprocess.Popen
    #: The first process of the host's PID namespace (its 'init'); its namespaces are
    #: the host's.
    init_pid: int

    def command(self, argv: Sequence[str]) -> list[str]:
        """Return the command line that runs ``argv`` inside this host."""
        return [sys.executable, '-m', 'edge_infer.bringup.hosts', 'enter',
                '--target', str(self.init_pid), '--cwd', os.getcwd(), '--', *argv]

    def cut(self) -> None:
        """Cut the host's cable at the switch: no packet in or out."""
        _run('ip', '-n', self.switch, 'link', 'set', self.port, 'down')

    def block_multicast(self) -> None:
        """
        Stop multicast to this host at the switch, as many Wi-Fi and cloud networks do.

        Multicast DDS discovery then finds nobody on other hosts (those beside each other
        on this host still meet). A route of the host's own would not do: a socket that
        names its outgoing interface, as Fast DDS's do, sends without one.
        """
        _run('bridge', '-n', self.switch, 'link', 'set', 'dev', self.port,
             'mcast_flood', 'off')

    def restore(self) -> None:
        """Plug the cable back in; multicast routing is set again, as after a real cut."""
        _run('ip', '-n', self.switch, 'link', 'set', self.port, 'up')
        # A link that went down loses its multicast route, and up does not bring it back.
        subprocess.run(['ip', '-n', self.netns, 'route', 'replace', '224.0.0.0/4',
                        'dev', 'eth0'], capture_output=True)


class SimulatedHosts:
    """
    Hosts as namespaces, made on entry and removed on exit with everything in them.

    :param names: the hosts, in order; the first one's /dev/shm and boot id are the ones
        shared when asked.
    :param share_shm: hosts that see the /dev/shm of the first host (which must be among
        them): containers that share an IPC namespace.
    :param share_boot_id: hosts that keep the machine's boot id and machine id (several
        containers on one machine); the others get their own.
    """

    def __init__(self, names: Sequence[str], *, share_shm: Sequence[str] = (),
                 share_boot_id: Sequence[str] = ()) -> None:
        reason = hosts_available()
        if reason:
            raise HostsUnavailable(reason)
        if len(set(names)) != len(names) or not names:
            raise ValueError(f'hosts need distinct names, got {list(names)}')
        self._names = list(names)
        self._share_shm = set(share_shm)
        self._share_boot_id = set(share_boot_id)
        self._tag = secrets.token_hex(2)
        # A /24 of 10.0.0.0/8 inside namespaces made here and nowhere else.
        self._subnet = f'10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}'
        self._switch = f'ei{self._tag}_{_SWITCH}'
        self._scratch = Path(tempfile.mkdtemp(prefix=f'ei_hosts_{self._tag}_'))
        self.hosts: dict[str, Host] = {}
        self._made_netns: list[str] = []
        self._mounts: list[Path] = []

    def __enter__(self) -> SimulatedHosts:
        try:
            self._make_switch()
            for index, name in enumerate(self._names):
                self.hosts[name] = self._make_host(index, name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _netns(self, name: str) -> str:
        netns = f'ei{self._tag}_{name}'
        _run('ip', 'netns', 'add', netns)
        self._made_netns.append(netns)
        _run('ip', '-n', netns, 'link', 'set', 'lo', 'up')
        return netns

    def _make_switch(self) -> None:
        switch = self._netns(_SWITCH)
        _run('ip', '-n', switch, 'link', 'add', 'br0', 'type', 'bridge')
        # Multicast (DDS discovery) floods every port, as on a plain switch.
        _run('ip', 'netns', 'exec', switch, 'sh', '-c',
             'echo 0 > /sys/class/net/br0/bridge/multicast_snooping')
        _run('ip', '-n', switch, 'link', 'set', 'br0', 'up')

    def _make_host(self, index: int, name: str) -> Host:
        netns = self._netns(name)
        port = f'p{index}'
        address = f'{self._subnet}.{index + 1}'
        _run('ip', '-n', self._switch, 'link', 'add', port, 'type', 'veth',
             'peer', 'name', 'eth0', 'netns', netns)
        _run('ip', '-n', self._switch, 'link', 'set', port, 'master', 'br0', 'up')
        _run('ip', '-n', netns, 'addr', 'add', f'{address}/24', 'dev', 'eth0')
        _run('ip', '-n', netns, 'link', 'set', 'eth0', 'multicast', 'on', 'up')
        _run('ip', '-n', netns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
        holder, init_pid = self._hold(index, name, netns)
        return Host(name=name, netns=netns, address=address, port=port, switch=self._switch,
                    holder=holder, init_pid=init_pid)

    def _hold(self, index: int, name: str, netns: str) -> tuple[subprocess.Popen, int]:
        # One long-lived process per host holds its mount and PID namespaces; every
        # process of the host joins them (joining per process would give each its own).
        folder = self._scratch / name
        folder.mkdir()
        ready = folder / 'ready'
        # Each /dev/shm is a tmpfs mounted here first, so that the hosts that share one
        # can all bind it (a mount cannot be bound from another mount namespace).
        shm = self._scratch / (self._names[0] if name in self._share_shm else name) / 'shm'
        if not shm.exists():
            shm.mkdir()
            _run('mount', '-t', 'tmpfs', '-o', f'size={_SHM_SIZE},mode=1777', 'tmpfs', str(shm))
            self._mounts.append(shm)
        steps = [f'mount --bind {shm} /dev/shm']
        if name not in self._share_boot_id:
            for file, target in (('boot_id', '/proc/sys/kernel/random/boot_id'),
                                 ('machine-id', '/etc/machine-id')):
                (folder / file).write_text(
                    (str(uuid.uuid4()) if file == 'boot_id' else uuid.uuid4().hex) + '\n')
                if Path(target).exists():
                    steps.append(f'mount --bind {folder / file} {target}')
        steps += [f'touch {ready}', 'exec sleep infinity']
        holder = subprocess.Popen(
            ['ip', 'netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private',
             '--pid', '--fork', '--mount-proc', '--kill-child', 'sh', '-c', ' && '.join(steps)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not ready.exists():
            if holder.poll() is not None or time.monotonic() > deadline:
                holder.kill()
                assert holder.stderr is not None  # started with stderr=PIPE
                raise HostsUnavailable(
                    f'host {name} did not come up: {holder.stderr.read().decode().strip()}')
            time.sleep(0.01)
        return holder, _descendant_in_other_pid_namespace(holder.pid)

    def close(self) -> None:
        """Stop every host's processes, remove the namespaces and the scratch files."""
        for host in self.hosts.values():
            # The PID namespace ends with its first process, and every process in it.
            try:
                os.kill(host.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            host.holder.kill()
            host.holder.wait()
        self.hosts.clear()
        for netns in reversed(self._made_netns):
            subprocess.run(['ip', 'netns', 'delete', netns], capture_output=True)
        self._made_netns.clear()
        for mount in self._mounts:
            subprocess.run(['umount', '--lazy', str(mount)], capture_output=True)
        self._mounts.clear()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _descendant_in_other_pid_namespace(pid: int) -> int:
    # ip netns exec -> unshare -> (fork) sh: the first process in another PID namespace.
    own = os.readlink('/proc/self/ns/pid')
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            if os.readlink(f'/proc/{current}/ns/pid') != own:
                return current
            children = Path(f'/proc/{current}/task/{current}/children').read_text().split()
        except OSError:
            continue
        pending += [int(child) for child in children]
    raise HostsUnavailable(f'no process of a PID namespace of its own under {pid}')


def behind_door(door_pid: int) -> int:
    """
    Return the PID (as seen here) of the program a door to a host started.

    :meth:`Host.command` runs ``enter``, which forks the program into the host: to
    signal the program itself (``kill -9`` a node), signal this PID, not the door's.
    """
    return int(Path(f'/proc/{door_pid}/task/{door_pid}/children').read_text().split()[0])


def pid_in_host(pid: int) -> int:
    """Return the PID that process ``pid`` has inside its own PID namespace."""
    status = Path(f'/proc/{pid}/status').read_text()
    (line,) = [line for line in status.splitlines() if line.startswith('NSpid:')]
    return int(line.split()[-1])


def _setns(descriptor: int, kind: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(descriptor, kind) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'setns: {os.strerror(error)}')


def enter(target: int, cwd: str, argv: Sequence[str]) -> int:
    """
    Run ``argv`` in the namespaces of process ``target``; return its exit status.

    SIGINT and SIGTERM reach the program as they reach this process, so that a node in
    a host stops as cleanly as one outside (nsenter passes no signal on).
    """
    # All opened first: the host's /proc, once joined, knows no such process number.
    namespaces = [(os.open(f'/proc/{target}/ns/{name}', os.O_RDONLY | os.O_CLOEXEC), kind)
                  for name, kind in (('net', _CLONE_NEWNET), ('mnt', _CLONE_NEWNS),
                                     ('pid', _CLONE_NEWPID))]
    # Joining a mount namespace needs a process of one thread: this one, before anything
    # starts a thread. The PID namespace applies to the children made from now on.
    for descriptor, kind in namespaces:
        _setns(descriptor, kind)
        os.close(descriptor)
    os.chdir(cwd)
    child = os.fork()
    if child == 0:
        try:
            # The program must not outlive this door to it, whatever ends it.
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            os.execvp(argv[0], list(argv))
        finally:
            os._exit(127)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: os.kill(child, number))
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status) % 256


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_infer.bringup.hosts enter --target PID --cwd DIR -- PROGRAM ...``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    commands = parser.add_subparsers(dest='verb', required=True)
    entering = commands.add_parser('enter', help="run a program in a host's namespaces")
    entering.add_argument('--target', type=int, required=True)
    entering.add_argument('--cwd', default='/')
    entering.add_argument('program', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ['--'] else args.program
    if not program:
        parser.error('enter: which program?')
    return enter(args.target, args.cwd, program)


if __name__ == '__main__':
    sys.exit(main())
