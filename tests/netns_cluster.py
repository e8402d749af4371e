"""A Ray cluster whose nodes are separate hosts on a private network, on this one machine.

Each host is a Linux network namespace with its own address on a bridge the harness makes
(veth pairs: ``10.77.<n>.10``, ``.11``, ...; the bridge, in the machine's own namespace, is
``.1``), and its Ray node is started with Ray's own ``ray start``, as on VMs. Every process on a
host runs in a mount namespace of its own (``ip netns exec`` makes one) where the host's own
working folder is mounted at one path, the same on every host (:attr:`NetnsCluster.host_root`:
``HOME``, ``TMPDIR`` and Ray's temp folder, as ``/tmp/ray`` is on VMs; short, since Ray's socket
paths must fit in 107 bytes), and the folder that holds every host's real folder is covered by an
empty tmpfs: a process on a host sees its own disk and no other host's, as on VMs. Unlike VMs,
the hosts share one process table: Ray's driver looks for "its" raylet with ``ps`` and would
take the head's, which is why shoal's job launcher names its node to Ray
(``shoal.runtime.job_launcher``). Connections stay between the addresses the harness gave.
:meth:`NetnsCluster.start_s3` serves S3 (moto's server) on the bridge, for stages
that every host reaches. Everything it made (namespaces, links, processes, folders) is removed by
:meth:`NetnsCluster.down`, which the fixtures call also when a test fails.

It needs root (network namespaces): :func:`netns_refusal` says why it cannot run, for a skip.

Runs in the test process (the harness) and, through ``ip netns exec``, on the hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def netns_refusal() -> str | None:
    """None when this process can make network namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the ip command (Debian's iproute2) is not installed; bash .ci/dev test installs it as root"
    probe = f"shoalprobe{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` is refused here: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str
    folder: Path


@dataclass
class NetnsCluster:
    """``count`` hosts on one bridge; :meth:`start_ray` starts a Ray node on each."""

    root: Path
    count: int
    tag: str = field(default_factory=lambda: f"s{os.getpid() % 10000}")
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    s3_server: subprocess.Popen[bytes] | None = None
    s3_env: dict[str, str] = field(default_factory=dict)

    @property
    def subnet(self) -> str:
        return f"10.77.{os.getpid() % 200 + 20}"

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet}.1"

    def up(self) -> NetnsCluster:
        self.host_root.mkdir(parents=True, exist_ok=True)  # the mount point, empty in this namespace
        self.bridge = f"{self.tag}br"
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index in range(self.count):
            netns, outer, inner = f"{self.tag}h{index}", f"{self.tag}v{index}", f"{self.tag}i{index}"
            address = f"{self.subnet}.{10 + index}"
            _ip("netns", "add", netns)
            folder = self.root / f"host{index}"
            (folder / "r").mkdir(parents=True)
            self.hosts.append(Host(f"host{index}", netns, address, folder))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", netns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("netns", "exec", netns, "ip", "addr", "add", f"{address}/24", "dev", inner)
            _ip("netns", "exec", netns, "ip", "link", "set", inner, "up")
            _ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
            _ip("netns", "exec", netns, "ip", "route", "add", "default", "via", self.bridge_address)
        return self

    def env_of(self, host: Host, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process on ``host``: its own folder, nothing of the caller's Ray."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SHOAL_"))}
        home = str(self.host_root)
        return {**env, **self.s3_env, "TMPDIR": home, "HOME": home, **(extra or {})}

    @property
    def host_root(self) -> Path:
        """Where every host sees its own working folder (and only its own): one path on all."""
        return Path(f"/tmp/shoal-mh-{self.tag}")

    @property
    def ray_temp(self) -> Path:
        """Ray's temp folder, on every host its own."""
        return self.host_root / "r"

    def on_host(self, host: Host, *args: str) -> list[str]:
        """The command that runs ``args`` on ``host``: in its network namespace and a mount
        namespace of its own (``ip netns exec`` makes one), where the host's folder is mounted on
        :attr:`host_root` and every host's real folder is hidden under an empty tmpfs."""
        private = (
            'mount --bind "$0" "$1" && mount -t tmpfs -o size=64k,mode=0700 hidden "$2" '
            '&& cd "$1" && shift 2 && exec "$@"'
        )
        return [
            "ip",
            "netns",
            "exec",
            host.netns,
            "sh",
            "-c",
            private,
            str(host.folder),
            str(self.host_root),
            str(self.root),
            *args,
        ]

    def run(
        self, host: Host, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` on ``host`` (in its namespaces, from its folder) and wait for it."""
        return subprocess.run(
            self.on_host(host, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=host.folder,
            env=self.env_of(host, env),
        )

    def start_ray(self, resources: dict[str, float], cpus: int = 1) -> str:
        """A Ray head on the first host, then a node on each other one (those at once); the
        head's address."""
        from concurrent.futures import ThreadPoolExecutor

        common = [f"--num-cpus={cpus}", "--disable-usage-stats", f"--resources={json.dumps(resources)}"]
        head = self.hosts[0]
        address = f"{head.address}:6379"

        def start(host: Host) -> None:
            role = (
                ["--head", "--port=6379", "--include-dashboard=false"]
                if host is head
                else [f"--address={address}"]
            )
            done = self.run(
                host, RAY, "start", *role, f"--node-ip-address={host.address}",
                f"--temp-dir={self.ray_temp}", *common,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"ray start on {host.name} failed:\n{done.stdout}\n{done.stderr}")

        start(head)
        with ThreadPoolExecutor(len(self.hosts)) as starting:
            list(starting.map(start, self.hosts[1:]))  # raises the first failure
        return address

    def start_s3(self) -> dict[str, str]:
        """moto's S3 server on the bridge (this machine's side of the private network); the
        environment that points s3fs (botocore) at it, for the hosts and the callers."""
        import socket

        with socket.socket() as probe:  # a free port on the bridge address
            probe.bind((self.bridge_address, 0))
            port = probe.getsockname()[1]
        log = open(self.root / "moto.log", "wb")  # noqa: SIM115 - kept open for the server's life
        self.s3_server = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", self.bridge_address, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((self.bridge_address, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.s3_server.poll() is not None:
                    raise RuntimeError(
                        f"moto's S3 server did not start; see {self.root / 'moto.log'}"
                    ) from None
                time.sleep(0.2)
        self.s3_env = {
            "AWS_ENDPOINT_URL_S3": f"http://{self.bridge_address}:{port}",
            "AWS_ACCESS_KEY_ID": "shoal-test",
            "AWS_SECRET_ACCESS_KEY": "shoal-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        return self.s3_env

    def pids(self) -> list[int]:
        """The live processes on the hosts (zombies, which only wait to be reaped, left out)."""
        import psutil

        found: list[int] = []
        for host in self.hosts:
            for pid in _ip("netns", "pids", host.netns, check=False).stdout.split():
                try:
                    if psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
                        found.append(int(pid))
                except psutil.NoSuchProcess:
                    continue
        return found

    def down(self) -> None:
        """Stop every process on the hosts (by pid) and the S3 server, then remove the namespaces,
        the bridge and the folders."""
        if self.s3_server is not None:
            self.s3_server.terminate()
            try:
                self.s3_server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.s3_server.kill()
                self.s3_server.wait(timeout=10)
        for sig, grace_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):  # nothing here keeps state
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace_s
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.host_root.rmdir()
