"""The node agent: one long-lived Ray actor per node of a pool, owned by the pool's service and
serving the one job that holds its node at a time (:meth:`NodeAgent.begin` ... :meth:`cleanup`).

It keeps **warm payload interpreters** ready: ``job_launcher --warm`` processes that have done
their imports and wait for a job on their standard input. Instance 0's agent hands the job to it
(and starts the next warm one, so no job's state reaches another), and copies its output to
``@stage/<job>/logs/instance-0.log`` while it runs. Every agent, at the end, collects the output
of the job's Ray workers that ran on its node (from the node's Ray log folder) into
``logs/instance-<i>.log``. The supervisor releases the job's nodes only after that.

Runs on every node of a pool, inside a Ray actor pinned to the node.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from shoal.stages import Stage

LOG_UPLOAD_PERIOD_S = 2.0
#: Warm payload interpreters kept ready per node.
WARM_INTERPRETERS = 2


class NodeAgent:
    """Ray actor body; created by the pool service with ``num_cpus=0``, pinned to its node."""

    def __init__(self, launcher_env: dict[str, str] | None = None) -> None:
        self._launcher_env = {**os.environ, **(launcher_env or {})}
        self.instance_id = -1
        self.stage: Stage | None = None
        self.job_dir = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._work: Path | None = None  # the current job's folder, from begin() to cleanup()
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
        self._work = Path(tempfile.mkdtemp(prefix=f"shoal-job-{Path(job_dir).name}-{instance_id}-"))
        return self.node_id()

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
        return its exit code (negative: killed by a signal)."""
        spec_path = self._folder() / "spec.json"
        spec_path.write_text(spec_json)
        log_path = self._folder() / "instance-0.log"
        log_path.write_bytes(b"")
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
            with open(log_path, "wb") as log:
                self._process = subprocess.Popen(
                    [sys.executable, "-u", "-m", "shoal.runtime.job_launcher", str(spec_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**self._launcher_env, **env},
                    cwd=str(self._folder()),
                    start_new_session=True,
                )
        assert self.stage is not None
        self.stage.write_text(f"{self.job_dir}/system/payload_pid", str(self._process.pid))
        stop = threading.Event()
        uploader = threading.Thread(target=self._upload_loop, args=(log_path, stop), daemon=True)
        uploader.start()
        code = self._process.wait()
        # the next job's interpreter (this one is never reused), started only now: its imports
        # would compete with the running job for the node's CPUs
        self._spawn_warm()
        stop.set()
        uploader.join(timeout=10)
        self._upload_log(log_path)
        return code

    def terminate_payload(self, grace_s: float = 5.0) -> bool:
        """Stop the payload (SIGTERM to its process group, SIGKILL after ``grace_s``)."""
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

    def _upload_loop(self, log_path: Path, stop: threading.Event) -> None:
        while not stop.wait(LOG_UPLOAD_PERIOD_S):
            self._upload_log(log_path)

    def _upload_log(self, log_path: Path) -> None:
        assert self.stage is not None
        try:
            self.stage.write_bytes(
                f"{self.job_dir}/logs/instance-{self.instance_id}.log", log_path.read_bytes()
            )
        except Exception as exc:  # a failed upload must not kill the job; the next one retries
            print(f"shoal: log upload failed: {exc}", file=sys.stderr)

    # -- every instance: the Ray workers' output on this node ----------------------------

    def collect_worker_logs(self, ray_job_id: str | None) -> int:
        """Write this node's output of the job's Ray workers to the stage; return the line count.

        Instance 0's log is the payload's output, into which Ray already streams the workers'
        output; every other instance gets a log of its own.
        """
        lines: list[str] = []
        logs_dir = self._logs_dir()
        if ray_job_id and logs_dir:
            for path in sorted(
                glob.glob(os.path.join(logs_dir, f"worker-*-{ray_job_id}-*.out"))
                + glob.glob(os.path.join(logs_dir, f"worker-*-{ray_job_id}-*.err"))
            ):
                with open(path, errors="replace") as handle:
                    lines.extend(line.rstrip("\n") for line in handle if not line.startswith(":"))
        if self.instance_id == 0:
            return len(lines)  # Ray already streamed them into the payload's output (log_to_driver)
        target = f"{self.job_dir}/logs/instance-{self.instance_id}.log"
        assert self.stage is not None
        self.stage.write_text(target, "\n".join(lines) + ("\n" if lines else ""))
        return len(lines)

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

        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        self._work = None
        self.instance_id, self.stage, self.job_dir, self._process = -1, None, "", None
