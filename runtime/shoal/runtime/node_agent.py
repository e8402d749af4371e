"""The node agent: one long-lived Ray actor per node of a pool, owned by the pool's service and
serving the one job that holds its node at a time (:meth:`NodeAgent.begin` ... :meth:`cleanup`).

It keeps **warm payload interpreters** ready: ``job_launcher --warm`` processes that have done
their imports and wait for a job on their standard input. Instance 0's agent hands the job to it
(and starts the next warm one, so no job's state reaches another).

Every agent builds its instance's log while the job runs (:mod:`shoal.runtime.job_logs`): every
:data:`LOG_PERIOD_S` it appends the new lines of the payload's output (instance 0) and of the
job's Ray workers on its node to ``@stage/<job>/logs/instance-<i>.log``. At the end
(:meth:`NodeAgent.finish_logs`) it moves the last lines; the supervisor releases the job's nodes
only after that.

Runs on every node of a pool, inside a Ray actor pinned to the node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from shoal.jobs.job import FINISHED_BANNER
from shoal.jobs.spec import NODE_IP_VAR
from shoal.runtime.job_logs import InstanceLogCollector, LogPump, append_local
from shoal.stages import Stage

#: How often an instance's new log lines reach the stage.
LOG_PERIOD_S = 0.25
#: On a stage that is not a local folder the whole log is written again: at most this often.
REMOTE_LOG_PERIOD_S = 2.0
#: Warm payload interpreters kept ready per node.
WARM_INTERPRETERS = 2


class NodeAgent:
    """Ray actor body; created by the pool service with ``num_cpus=0``, pinned to its node."""

    def __init__(self, launcher_env: dict[str, str] | None = None) -> None:
        import ray

        self._launcher_env = {**os.environ, **(launcher_env or {})}
        self._node_ip = str(ray.util.get_node_ip_address())
        self.instance_id = -1
        self.stage: Stage | None = None
        self.job_dir = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._payload_lock = threading.Lock()  # run_payload and terminate_payload agree on the process
        self._work: Path | None = None  # the current job's folder, from begin() to cleanup()
        self._collector: InstanceLogCollector | None = None
        self._pump: LogPump | None = None
        self._log_dirty = False
        self._log_uploaded_at = 0.0
        self._warm: list[subprocess.Popen[bytes]] = []
        self._warm_lock = threading.Lock()
        self._spawn_warm()

    def begin(self, instance_id: int, stage_name: str, stage_url: str, job_dir: str) -> str:
        """Serve a job as its instance ``instance_id``; return this node's id."""
        self.instance_id = instance_id
        self.stage = Stage(stage_name, stage_url)
        self.job_dir = job_dir
        self._process = None
        self._cancelled = False
        self._work = Path(
            tempfile.mkdtemp(prefix=f"shoal-job-{Path(job_dir).name}-{instance_id}-", dir=_agents_dir())
        )
        self._start_log(time.time())
        return self.node_id()

    # -- the instance's log --------------------------------------------------------------

    @property
    def _stage_log(self) -> str:
        return f"{self.job_dir}/logs/instance-{self.instance_id}.log"

    @property
    def _local_log(self) -> Path:
        return self._folder() / f"instance-{self.instance_id}.log"

    @property
    def _payload_out(self) -> Path:
        return self._folder() / "payload.out"

    def _start_log(self, since: float) -> None:
        """Begin this instance's log: an empty file on the stage now (readable from the start),
        and a pump that appends new lines to it."""
        assert self.stage is not None
        self._local_log.write_bytes(b"")
        if self.instance_id == 0:
            self._payload_out.write_bytes(b"")
        self.stage.write_bytes(self._stage_log, b"")
        self._collector = InstanceLogCollector(
            logs_dir=self._logs_dir(),
            payload_log=str(self._payload_out) if self.instance_id == 0 else None,
            since=since,
            end_marker=FINISHED_BANNER.encode(),
        )
        self._log_dirty, self._log_uploaded_at = False, time.monotonic()
        self._pump = LogPump(
            self._collector.poll, self._append_log, period_s=LOG_PERIOD_S, before_poll=self._learn_ray_job
        ).start()

    def _learn_ray_job(self) -> None:
        """Until the payload has said which Ray job it is (``system/ray_job_id``), look for it."""
        collector = self._collector
        if collector is None or collector.ray_job_id is not None or self.stage is None:
            return
        path = f"{self.job_dir}/system/ray_job_id"
        if self.stage.exists(path):
            collector.set_ray_job_id(self.stage.read_text(path))

    def _append_log(self, data: bytes) -> None:
        """The log pump's sink. If the stage refuses the lines (this raises), nothing was kept
        and the pump offers them again."""
        assert self.stage is not None
        if self.stage.appends_in_place():
            self.stage.append_bytes(self._stage_log, data)
            append_local(self._local_log, data)
            return
        append_local(self._local_log, data)
        self._log_dirty = True
        if time.monotonic() - self._log_uploaded_at >= REMOTE_LOG_PERIOD_S:
            try:
                self._upload_whole_log()
            except Exception as exc:  # still dirty: the next round uploads it
                print(f"shoal: uploading {self._stage_log} failed: {exc}", file=sys.stderr)

    def _upload_whole_log(self) -> None:
        assert self.stage is not None
        self.stage.write_bytes(self._stage_log, self._local_log.read_bytes())
        self._log_dirty, self._log_uploaded_at = False, time.monotonic()

    def finish_logs(self) -> int:
        """The job is over: move the last lines of this instance's log to the stage (unfinished
        ones included) and stop following; return the log's size in bytes."""
        pump, self._pump = self._pump, None
        if pump is None:
            return 0
        pump.finish()
        if self._log_dirty:
            self._upload_whole_log()
        return self._local_log.stat().st_size

    # -- the warm interpreter ------------------------------------------------------------

    def _spawn_warm(self) -> None:
        """Top the warm interpreters up to :data:`WARM_INTERPRETERS` (in the background: each
        takes a second). Called when the agent starts and when a job ends, never while one runs:
        their imports would compete with the job for the node's CPUs. Two are kept, so a job that
        follows another at once still finds one ready."""

        def spawn() -> None:
            with self._warm_lock:
                self._warm = [p for p in self._warm if p.poll() is None]
                while len(self._warm) < WARM_INTERPRETERS:
                    self._warm.append(
                        subprocess.Popen(
                            [sys.executable, "-u", "-m", "shoal.runtime.job_launcher", "--warm"],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=self._launcher_env,
                            cwd=tempfile.gettempdir(),
                            start_new_session=True,
                        )
                    )

        threading.Thread(target=spawn, name="shoal-warm-launcher", daemon=True).start()

    def _take_warm(self) -> subprocess.Popen[bytes] | None:
        """The oldest live warm interpreter (the most likely to be ready), or None."""
        with self._warm_lock:
            while self._warm:
                warm = self._warm.pop(0)
                if warm.poll() is None:
                    return warm
        return None

    def _folder(self) -> Path:
        assert self._work is not None, "begin() first"
        return self._work

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def pid(self) -> int:
        return os.getpid()

    # -- instance 0: the payload ----------------------------------------------------------

    def prepare_payload(self) -> str:
        """Download ``@stage/<job>/app/`` into a local folder; return its path."""
        assert self.stage is not None
        app = self._folder() / "app"
        app.mkdir(parents=True, exist_ok=True)
        if self.stage.exists(f"{self.job_dir}/app"):
            self.stage.get(f"{self.job_dir}/app", str(app))
        return str(app)

    def run_payload(self, spec_json: str, env: dict[str, str]) -> int:
        """Run the payload to its end in the warm interpreter (a fresh one if none is ready);
        return its exit code (negative: killed by a signal). A payload cancelled before it
        started never starts (``-SIGTERM``)."""
        with self._payload_lock:
            if self._cancelled:
                return -signal.SIGTERM
            process = self._start_payload(spec_json, env)
        assert self.stage is not None
        self.stage.write_text(f"{self.job_dir}/system/payload_pid", str(process.pid))
        code = process.wait()
        # the next job's interpreter (this one is never reused), started only now: its imports
        # would compete with the running job for the node's CPUs
        self._spawn_warm()
        return code

    def _start_payload(self, spec_json: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {**env, NODE_IP_VAR: self._node_ip}  # the payload's driver joins Ray through this node
        spec_path = self._folder() / "spec.json"
        _write_private(spec_path, spec_json.encode())
        log_path = self._payload_out  # the log pump merges it into instance 0's log
        # variables an interpreter reads only when it starts (but PYTHONPATH, which the warm one
        # applies) need a fresh one
        startup_only = [k for k in env if k.startswith(("PYTHON", "LD_")) and k != "PYTHONPATH"]
        warm = None if startup_only else self._take_warm()
        if warm is not None and warm.stdin is not None:
            message = {"spec": str(spec_path), "env": env, "log": str(log_path)}
            warm.stdin.write((json.dumps(message) + "\n").encode())
            warm.stdin.close()
            self._process = warm
        else:
            with open(log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [sys.executable, "-u", "-m", "shoal.runtime.job_launcher", str(spec_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**self._launcher_env, **env},
                    cwd=str(self._folder()),
                    start_new_session=True,
                )
        return self._process

    def terminate_payload(self, grace_s: float = 5.0) -> bool:
        """Stop the payload (SIGTERM to its process group, SIGKILL after ``grace_s``); a payload
        not started yet will not start."""
        with self._payload_lock:
            self._cancelled = True
            process = self._process
        if process is None or process.poll() is not None:
            return False
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True

    def _logs_dir(self) -> str | None:
        try:
            import ray._private.worker as ray_worker

            node = ray_worker._global_node
            if node is not None:
                return str(node.get_logs_dir_path())
        except Exception:
            return None
        return None

    def cleanup(self) -> None:
        """The job is over on this node: drop its folder and forget it."""
        import shutil

        if self._pump is not None:  # the job ended before its logs were finished (an error)
            self.finish_logs()
        self._collector = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        self._work = None
        self.instance_id, self.stage, self.job_dir, self._process = -1, None, "", None


#: The folder for the jobs' local folders on a node (set by the pool: inside its own temporary
#: folder, so that stopping the pool removes what a killed agent left); else the system's.
AGENTS_DIR_VAR = "SHOAL_AGENTS_DIR"


def _agents_dir() -> str | None:
    folder = os.environ.get(AGENTS_DIR_VAR)
    if not folder:
        return None
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
