"""Built-in plugin: the ``local`` compute pool, a real multi-node Ray cluster on this machine.

Each pool node is one Ray node (node 0 is the head, holding the GCS). Nodes are started by
:mod:`shoal.runtime.node_launcher` in their own session, so the pool outlives the process that
started it and a later process attaches to it by address. Everything listens on 127.0.0.1;
every node gets its own Ray temp folder under ``$SHOAL_HOME/pools/<NAME>/`` (shared temp
folders break Ray's runtime environments on one machine). Node sizes come from the instance
family. State (addresses, process ids) lives in ``state.json`` beside the pool definition, under
a file lock, so several processes can scale the same pool.

Runs on the driver / CLI of this machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from filelock import FileLock

from shoal.contributions import ComputePoolBackendSpec
from shoal.errors import ConfigError, ShoalError
from shoal.extras import DASHBOARD_MODULES, require
from shoal.hookspecs import hookimpl
from shoal.plugins.local_pool_state import LocalNode, LocalPoolState, load_state, save_state
from shoal.pools.backend import ComputePoolBackend, PoolNode, ProgressCallback, check_known_options
from shoal.pools.connect import LOOPBACK_ENV
from shoal.pools.families import resolve_family
from shoal.pools.node_spec import NodeLaunchSpec, NodeStarted
from shoal.pools.records import PoolRecord, pool_dir

GIB = 1024**3
KNOWN_OPTIONS = {
    "families",
    "cpus_per_node",
    "memory_gb_per_node",
    "object_store_mb",
    "idle_timeout_s",
    "node_resource",
    "include_dashboard",
    "use_gpus",
}
FAST_HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_timeout_ms": 500,
    "health_check_initial_delay_ms": 0,
}


class PoolStartError(ShoalError):
    """A node of a local pool did not start; the message holds the launcher's output."""


class LocalPoolBackend(ComputePoolBackend):
    """A Ray cluster on this machine with one Ray node per pool node."""

    shares_filesystem = True

    def __init__(self, record: PoolRecord) -> None:
        super().__init__(record)
        self.validate_options(record.options)
        self.family = resolve_family(record.instance_family, record.options)
        self.dir = pool_dir(record.name)
        self._lock = FileLock(str(self.dir / "state.lock"), timeout=600)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        check_known_options("local", options, KNOWN_OPTIONS)
        if options.get("include_dashboard"):
            require(DASHBOARD_MODULES, "a pool with Ray's dashboard (include_dashboard=True)")

    # -- state ---------------------------------------------------------------------------

    @property
    def _state_file(self) -> Path:
        return self.dir / "state.json"

    def _load(self) -> LocalPoolState | None:
        return load_state(self._state_file, self.record.name)

    def _save(self, state: LocalPoolState) -> None:
        save_state(self._state_file, state)

    # -- processes -----------------------------------------------------------------------

    @staticmethod
    def _ray_temp_root(pool_id: str) -> Path:
        """A short folder for the nodes' Ray files: Ray's Unix socket paths must stay under 108 bytes,
        which rules out folders inside a deep SHOAL_HOME."""
        base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
        digest = hashlib.sha1(pool_id.encode()).hexdigest()[:10]
        user_root = base / f"shoal-{os.getuid()}"
        root = user_root / digest
        for folder in (user_root, root):  # only this user: Ray's logs and sockets live below
            folder.mkdir(mode=0o700, exist_ok=True)
            private_folder(folder)
        return root

    def _env(self, pool_id: str, index: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(LOOPBACK_ENV)
        env.update({"RAY_AUTH_MODE": "disabled", "SHOAL_POOL_ID": pool_id, "SHOAL_POOL_NODE": str(index)})
        # where node agents keep their jobs' folders (shoal.runtime.node_agent.AGENTS_DIR_VAR)
        env["SHOAL_AGENTS_DIR"] = str(self._ray_temp_root(pool_id) / "agents")
        # Ray's metrics exporters default to fixed ports (44217, 44227): two pools would collide.
        env.update({"AUTOSCALER_METRIC_PORT": "0", "DASHBOARD_METRIC_PORT": "0"})
        return env

    def _launch(self, state: LocalPoolState, index: int) -> LocalNode:
        """Start node ``index`` and wait until it is up; return what the state keeps of it."""
        return self._await_node(index, self._spawn_node(state, index))

    def _spawn_node(
        self, state: LocalPoolState, index: int, *, address_later: bool = False
    ) -> tuple[subprocess.Popen[str], str]:
        """Start the launcher of node ``index`` (it returns once the node is up); do not wait.
        With ``address_later`` a worker's launcher does its imports and then waits for the head's
        GCS address on its standard input (:meth:`_await_node` sends it)."""
        head = index == 0
        spec = NodeLaunchSpec(
            head=head,
            temp_dir=str(self._ray_temp_root(state.pool_id) / f"n{index}"),
            num_cpus=self.family.cpus,
            num_gpus=self.family.gpus if self.record.options.get("use_gpus") else 0,
            memory=int(self.family.memory_gb * GIB),
            object_store_memory=int(self.record.options.get("object_store_mb", 200)) * 1024**2,
            node_name=f"{self.record.name}-{index}",
            resources={self.node_resource: 1},
            labels={"shoal-pool": self.record.name, "shoal-node": str(index)},
            include_dashboard=bool(self.record.options.get("include_dashboard", False)),
            system_config=dict(FAST_HEALTH_CHECKS) if head else {},
            gcs_address=None if head or address_later else state.gcs_address,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "shoal.runtime.node_launcher", spec.to_json()],
            env=self._env(state.pool_id, index),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if address_later else subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            umask=0o077,  # every file Ray and shoal write for the node: its owner's only
        )
        return process, spec.temp_dir

    def _await_node(
        self, index: int, launched: tuple[subprocess.Popen[str], str], address: str | None = None
    ) -> LocalNode:
        """Wait for a launcher started by :meth:`_spawn_node` (sending it the GCS address it
        waits for, if any); raise :class:`PoolStartError` with its output if the node failed."""
        process, temp_dir = launched
        try:
            out, err = process.communicate(input=address + "\n" if address is not None else None, timeout=180)
        except subprocess.TimeoutExpired:
            self._kill_session(process.pid)
            raise PoolStartError(
                f"Node {index} of pool {self.record.name} did not start within 180 s. Ray logs: {temp_dir}"
            ) from None
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if process.returncode != 0 or not lines:
            self._kill_session(process.pid)
            raise PoolStartError(
                f"Node {index} of pool {self.record.name} failed to start (exit {process.returncode}). "
                f"Ray logs: {temp_dir}. Last output:\n{err[-2000:]}"
            )
        return LocalNode.started(index, process.pid, NodeStarted.from_json(lines[-1]))

    def _start_janitor(self, state: LocalPoolState) -> int:
        """Start the idle-node janitor in its own session, carrying the pool's marker."""
        process = subprocess.Popen(
            [sys.executable, "-m", "shoal.runtime.pool_janitor", self.record.name],
            env={**self._env(state.pool_id, -1), "RAY_ADDRESS": state.gcs_address or ""},
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "janitor.log", "ab"),  # noqa: SIM115
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        return process.pid

    def _kill_session(
        self,
        sid: int,
        pool_id: str | None = None,
        index: int | None = None,
        first: tuple[int, ...] = (),
        grace_s: float = 3.0,
    ) -> None:
        """End the processes of session ``sid`` (and, with ``pool_id`` and ``index``, those that
        carry the marker of that node of the pool), the ones of ``first`` first."""
        from shoal import processes

        pids = processes.session_members(int(sid))
        if pool_id is not None and index is not None:
            pids |= {
                pid
                for pid in processes.marked_processes(f"SHOAL_POOL_ID={pool_id}")
                if _env_of(pid).get("SHOAL_POOL_NODE") == str(index)
            }
        pids = processes.with_descendants(pids)
        processes.terminate(pids, first=[p for p in first if p in pids], grace_s=grace_s)

    def _kill_node(self, node: LocalNode, pool_id: str | None = None) -> None:
        self._kill_session(node.sid, pool_id, node.index, first=node.raylet_pids)

    def _node_alive(self, node: LocalNode) -> bool:
        from shoal import processes

        return bool(processes.alive(list(node.raylet_pids)))

    # -- ComputePoolBackend --------------------------------------------------------------

    def is_running(self) -> bool:
        state = self._load()
        return state is not None and self._head_alive(state)

    def address(self) -> str:
        state = self._load()
        if state is None or not state.gcs_address or not self._head_alive(state):
            raise ShoalError(
                f"Compute pool {self.record.name} is not running; start it with `shoal pool start`."
            )
        return state.gcs_address

    def connect_env(self) -> dict[str, str]:
        return {**LOOPBACK_ENV, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": self.address()}

    def start(self, progress: ProgressCallback | None = None) -> None:
        self.ensure_nodes(max(1, self.record.min_nodes), progress=progress)

    def ensure_nodes(
        self, count: int, progress: ProgressCallback | None = None, timeout_s: float = 300
    ) -> int:
        wanted = max(1, min(count, self.record.max_nodes))
        with self._lock:
            state = self._load()
            if state is None or not self._head_alive(state):
                if state is not None:
                    self._stop_locked(state)
                state = LocalPoolState(pool_id=f"{self.record.name}-{secrets.token_hex(4)}")
            state = dataclasses.replace(
                state, nodes={k: v for k, v in state.nodes.items() if self._node_alive(v)}
            )
            if progress:
                progress(len(state.nodes), wanted)
            free = (i for i in itertools.count() if str(i) not in state.nodes)
            missing = [next(free) for _ in range(wanted - len(state.nodes))]
            need_head = 0 in missing
            # worker nodes start side by side; while the head starts they do their imports and
            # wait for its address
            launched = {
                index: self._spawn_node(state, index, address_later=need_head)
                for index in missing
                if index != 0
            }
            if need_head:
                try:
                    head = self._launch(state, 0)
                except PoolStartError:
                    for handle in launched.values():  # they read an empty address and exit
                        with contextlib.suppress(PoolStartError):
                            self._await_node(-1, handle, "")
                    raise
                state = dataclasses.replace(
                    state.with_node(head), gcs_address=head.gcs_address, webui_url=head.webui_url
                )
                self._save(state)
                if progress:
                    progress(len(state.nodes), wanted)
            failure: PoolStartError | None = None
            address = state.gcs_address if need_head else None
            # every worker gets the address at once and they register side by side: waiting on
            # them one after another would hand the next its address only when the previous is up
            with ThreadPoolExecutor(max_workers=max(1, len(launched))) as waiters:
                pending = [
                    waiters.submit(self._await_node, index, handle, address)
                    for index, handle in launched.items()
                ]
                for future in as_completed(pending):
                    try:
                        state = state.with_node(future.result())
                    except PoolStartError as exc:
                        failure = failure or exc
                        continue
                    self._save(state)
                    if progress:
                        progress(len(state.nodes), wanted)
            if need_head:  # after the workers: it would take their CPU while they start
                state = dataclasses.replace(state, janitor_sid=self._start_janitor(state))
            self._save(state)
            if failure is not None:
                raise failure
            return len(state.nodes)

    def _head_alive(self, state: LocalPoolState) -> bool:
        return state.head is not None and self._node_alive(state.head)

    def nodes(self) -> list[PoolNode]:
        state = self._load()
        result = []
        for node in sorted(state.nodes.values() if state else [], key=lambda node: node.index):
            if self._node_alive(node):
                result.append(
                    PoolNode(
                        node_id=node.node_id,
                        index=node.index,
                        address="127.0.0.1",
                        resources={"CPU": self.family.cpus, "memory_gb": self.family.memory_gb},
                    )
                )
        return result

    def node_processes(self) -> dict[int, list[int]]:
        state = self._load()
        nodes = state.nodes.values() if state else []
        return {node.index: list(node.raylet_pids) for node in nodes if self._node_alive(node)}

    def node_logs_dirs(self) -> dict[str, str]:
        """Ray log folder of each alive node, by node id."""
        state = self._load()
        nodes = state.nodes.values() if state else []
        return {node.node_id: node.logs_dir for node in nodes if self._node_alive(node)}

    def stop_node(self, index: int) -> None:
        """Stop one worker node (never the head: stop the pool for that)."""
        if index == 0:
            raise ConfigError("Node 0 is the head of the pool; stop the whole pool instead.")
        with self._lock:
            state = self._load()
            node = state.nodes.get(str(index)) if state else None
            if state is not None and node is not None:
                self._kill_node(node, state.pool_id)
                self._save(state.without_node(index))

    def stop(self) -> None:
        """Stop every process of the pool. With a state file that cannot be read, nothing can be
        stopped safely: the error says how to find the processes (``drop`` goes on and forgets
        the pool)."""
        with self._lock:
            state = self._load()
            if state is not None:
                self._stop_locked(state)

    def _stop_locked(self, state: LocalPoolState) -> None:
        from shoal import processes

        if state.janitor_sid:
            self._kill_session(state.janitor_sid, grace_s=0.5)
        for node in sorted(state.nodes.values(), key=lambda n: -n.index):  # workers first, the head last
            self._kill_node(node, state.pool_id)
        leftovers = processes.with_descendants(processes.marked_processes(f"SHOAL_POOL_ID={state.pool_id}"))
        processes.terminate(leftovers, grace_s=1.0)
        shutil.rmtree(self._ray_temp_root(state.pool_id), ignore_errors=True)
        self._state_file.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        state = self._load()
        return {
            "address": state.gcs_address if state is not None and self._head_alive(state) else None,
            "state_dir": str(self.dir),
            "cpus_per_node": self.family.cpus,
            "memory_gb_per_node": self.family.memory_gb,
            "dashboard": self._dashboard_of(state),
        }

    @staticmethod
    def _dashboard_of(state: LocalPoolState | None) -> str | None:
        """The pool's dashboard URL: the head's own, or one started on request while it runs."""
        from shoal import processes

        if state is None:
            return None
        if state.dashboard_pid is not None and not processes.alive([state.dashboard_pid]):
            return None
        return state.webui_url

    def importable_on_nodes(self, modules: Sequence[str]) -> dict[str, bool] | None:
        """Look for ``modules`` with this interpreter (the pool's nodes run it too) and the
        ``PYTHONPATH`` and folder of the pool's head node (of this process when the pool is not
        running: its nodes will start from here)."""
        if not modules:
            return {}
        env, cwd = self._env("", 0), os.getcwd()
        state = self._load()
        head = state.head if state is not None else None
        if head is not None and self._node_alive(head):
            found = _environment_of(list(head.raylet_pids))
            if found is not None:
                env, cwd = found
        completed = subprocess.run(
            [sys.executable, "-c", _FIND_MODULES, *modules],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            return None  # cannot tell: the nodes will say
        answer: dict[str, bool] = json.loads(completed.stdout.strip().splitlines()[-1])
        return answer

    def start_dashboard(self) -> str | None:
        """Start Ray's dashboard for this running pool (:mod:`shoal.runtime.pool_dashboard`)."""
        from shoal.runtime import pool_dashboard

        require(DASHBOARD_MODULES, "Ray's dashboard")
        with self._lock:
            state = self._load()
            if state is None or state.head is None or not self._node_alive(state.head):
                return None
            url = self._dashboard_of(state)
            if url:
                return url
            head = state.head
            pid, url = pool_dashboard.start_dashboard(
                {"gcs_address": head.gcs_address, "logs_dir": head.logs_dir, "temp_dir": head.temp_dir},
                self._env(state.pool_id, -1),
                self.dir / "dashboard.log",
            )
            self._save(dataclasses.replace(state, webui_url=url, dashboard_pid=pid))
            return url


#: run by a node's interpreter: which of argv's top-level modules it finds (without importing
#: them, and without the current folder that ``-c`` puts first on sys.path)
_FIND_MODULES = (
    "import importlib.util, json, sys\n"
    "sys.path[:] = [p for p in sys.path if p]\n"
    "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
)


def _environment_of(pids: Sequence[int]) -> tuple[dict[str, str], str] | None:
    """The environment and folder of the first live process of ``pids``."""
    import psutil

    for pid in pids:
        try:
            process = psutil.Process(pid)
            return dict(process.environ()), process.cwd()
        except psutil.Error:
            continue
    return None


def _env_of(pid: int) -> dict[str, str]:
    import psutil

    try:
        return dict(psutil.Process(pid).environ())
    except psutil.Error:
        return {}


@hookimpl
def shoal_compute_pool_backends() -> Iterator[ComputePoolBackendSpec]:
    yield ComputePoolBackendSpec(
        name="local",
        factory=LocalPoolBackend,
        description="multi-node Ray cluster on this machine (127.0.0.1)",
    )


def private_folder(folder: Path) -> None:
    """Make ``folder`` (this user's) readable by its owner only, whatever made it before."""
    if folder.stat().st_mode & 0o077 and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)
