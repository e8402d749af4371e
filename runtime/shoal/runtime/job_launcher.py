"""Run a job's payload: ``python -m shoal.runtime.job_launcher <spec.json>``.

Started by the node agent of instance 0 (the head of the job) as its own process, with
``RAY_ADDRESS`` pointing at the pool's cluster. It connects to Ray (so the payload's own
``ray.init(address="auto")`` simply finds the connection), prints the banners that delimit the
user's output, runs the payload (a file, a module entrypoint, or a pickled function with its
arguments), and writes the result or the exception to the stage with the result protocol.
Lifecycle hooks ``shoal_before_job`` / ``shoal_on_job_error`` / ``shoal_after_job`` run here.

Runs on the head node of a job (instance 0).
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

from shoal.jobs.job import FINISHED_BANNER, STARTED_BANNER
from shoal.jobs.payload import SESSION_MARKER
from shoal.jobs.spec import NODE_IP_VAR, LaunchSpec

_LOOPBACK = ("127.", "localhost", "::1")


def _connect_ray(spec: LaunchSpec, requirements: str | None = None) -> Any:
    """Connect to the pool and make later ``ray.init`` calls in the payload reuse the connection."""
    from shoal.pools.connect import prepare_loopback

    if spec.loopback:
        prepare_loopback()
    import ray

    from shoal.runtime import job_env
    from shoal.runtime.job_worker_setup import SETUP_HOOK

    env_vars = dict(spec.worker_env)
    runtime_env: dict[str, Any] = {"env_vars": env_vars, "worker_process_setup_hook": SETUP_HOOK}
    # the user's variables are secrets: never in the runtime env (Ray's agent logs it), but
    # published for the workers' setup hook once connected (shoal.runtime.job_env)
    secrets = {name: os.environ[name] for name in spec.user_env_names if name in os.environ}
    if secrets:
        os.environ[job_env.NAMES_VAR] = env_vars[job_env.NAMES_VAR] = ",".join(sorted(secrets))
    if spec.shared_filesystem:
        paths = [spec.app_dir, *([requirements] if requirements else [])]
        env_vars["PYTHONPATH"] = ":".join(paths) + ":${PYTHONPATH}"
    else:
        runtime_env["working_dir"] = spec.app_dir
        if spec.pip_requirements:
            runtime_env["pip"] = list(spec.pip_requirements)  # Ray installs and caches them per node
    # The driver joins Ray through the node its agent runs on. Left to itself, Ray picks a raylet
    # that `ps` shows on this machine, the head's first: on a machine that runs several nodes of
    # one cluster at different addresses (network namespaces, containers sharing the process
    # table) the driver would then announce the head's address, and results sent to it would
    # never arrive. Local pools run every node at 127.0.0.1, where Ray resolves a loopback
    # address to the machine's own: nothing to name there.
    node_ip = os.environ.get(NODE_IP_VAR, "")
    ray.init(
        address=os.environ["RAY_ADDRESS"],
        runtime_env=runtime_env,
        _node_ip_address=None if not node_ip or node_ip.startswith(_LOOPBACK) else node_ip,
        log_to_driver=False,  # each node agent builds its instance's log (shoal.runtime.job_logs)
        namespace=spec.namespace,
    )
    if secrets:
        job_env.publish(secrets)
    original_init = ray.init

    def init_once(*args: Any, **kwargs: Any) -> Any:
        if ray.is_initialized():
            return ray.get_runtime_context()
        return original_init(*args, **kwargs)

    ray.init = init_once  # the payload's ray.init(address="auto") keeps this connection
    return ray


def _install_requirements(spec: LaunchSpec) -> str | None:
    """The folder holding the job's ``pip_requirements`` (installed now, or found cached), put
    first on this process's path; None when the job has none."""
    if not spec.pip_requirements:
        return None
    from shoal.runtime.job_requirements import requirements_folder

    folder, cached = requirements_folder(list(spec.pip_requirements))
    print(f"shoal: pip_requirements {'found cached' if cached else 'installed'} in {folder}", flush=True)
    sys.path.insert(0, str(folder))
    return str(folder)


def _restore_sessions(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SESSION_MARKER):
        from shoal.data.job_session import SessionDescriptor, session_for

        return session_for(SessionDescriptor.from_env(value[len(SESSION_MARKER) :]))
    if isinstance(value, list):
        return [_restore_sessions(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_restore_sessions(v) for v in value)
    if isinstance(value, dict):
        return {k: _restore_sessions(v) for k, v in value.items()}
    return value


def _run_payload(spec: LaunchSpec, app_dir: Path) -> Any:
    kind = spec.kind
    if kind == "function":
        import cloudpickle

        func = cloudpickle.loads((app_dir / "func.pkl").read_bytes())
        args, kwargs = cloudpickle.loads((app_dir / "function_args.pkl").read_bytes())
        return func(*_restore_sessions(list(args)), **_restore_sessions(dict(kwargs)))
    if kind == "command":
        import subprocess

        completed = subprocess.run([*spec.entrypoint, *spec.args], cwd=app_dir)
        if completed.returncode != 0:
            raise RuntimeError(f"entrypoint {spec.entrypoint} exited with code {completed.returncode}")
        return None
    entry = app_dir / str(spec.entrypoint)
    sys.argv = [str(entry), *spec.args]
    namespace = runpy.run_path(str(entry), run_name="__main__")
    return namespace.get("__return__")


def main(spec_path: str) -> int:
    from shoal.contributions import JobInfo
    from shoal.data import job_session
    from shoal.errors import PluginError
    from shoal.jobs import results
    from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager
    from shoal.stages import Stage

    spec = LaunchSpec.from_json(Path(spec_path).read_text())

    stage = Stage(spec.stage_name, spec.stage_url, managed=False)
    job_dir = spec.job_dir
    app_dir = Path(spec.app_dir)
    os.chdir(app_dir)
    sys.path.insert(0, str(app_dir))  # before the plugins: the job may ship their modules
    try:
        install_worker_plugin_manager(spec.plugin_manifest)
    except PluginError as exc:  # this node lacks a plugin: the job is FAILED, its message says why
        print(f"shoal: {exc}", flush=True)
        results.write_exception(stage, job_dir, exc)
        return 1
    job_session.install()  # get_active_session() finds the job's session
    info = JobInfo(
        job_id=spec.job_id,
        name=spec.job_name,
        compute_pool=spec.compute_pool,
        stage_name=spec.stage_name,
        target_instances=spec.target_instances,
        min_instances=spec.min_instances,
    )
    try:
        requirements = _install_requirements(spec)
    except Exception as exc:  # pip failed: the job is FAILED, job.result() says why
        print(f"shoal: {exc}", flush=True)
        results.write_exception(stage, job_dir, exc)
        return 1
    ray = _connect_ray(spec, requirements)
    try:
        return _run_job(spec, stage, app_dir, info, ray)
    finally:
        if spec.user_env_names:
            from shoal.runtime import job_env

            with contextlib.suppress(Exception):  # the cluster went away: the variables with it
                job_env.withdraw()


def _print_rendezvous(spec: LaunchSpec, ray: Any) -> None:
    """The start-up lines of ``get_logs(verbose=True)``, worded as the reference's (its tests look
    for ``instance requirement met`` and for ``ray``): how many instances joined, and the cluster."""
    joined = int(os.environ.get("SHOAL_INSTANCE_COUNT", spec.target_instances))
    print(
        f"shoal: {joined} of {spec.target_instances} instance(s) joined; instance requirement met "
        f"(min_instances={spec.min_instances})",
        flush=True,
    )
    alive = [node for node in ray.nodes() if node.get("Alive")]
    print(
        f"shoal: connected to the pool's ray cluster (ray {ray.__version__}, {len(alive)} node(s) alive); "
        f"the job's nodes: {os.environ.get('SHOAL_JOB_NODE_IDS', '')}",
        flush=True,
    )


def _run_job(spec: LaunchSpec, stage: Any, app_dir: Path, info: Any, ray: Any) -> int:
    """Run the payload between its banners and the job hooks; write its result (payload process)."""
    from shoal import hooks
    from shoal.jobs import results

    job_dir = spec.job_dir
    stage.write_text(f"{job_dir}/system/ray_job_id", str(ray.get_runtime_context().get_job_id()))
    _print_rendezvous(spec, ray)
    hooks.notify_before_job(info)
    print(STARTED_BANNER, flush=True)
    status = "DONE"
    try:
        value = _run_payload(spec, app_dir)
    except BaseException as exc:  # the user's error, KeyboardInterrupt and SystemExit included
        status = "FAILED"
        traceback.print_exc()
        sys.stdout.flush()
        print(FINISHED_BANNER, flush=True)
        hooks.notify_job_error(info, exc)
        results.write_exception(stage, job_dir, exc)
    else:
        print(FINISHED_BANNER, flush=True)
        results.write_result(stage, job_dir, value)
    hooks.notify_after_job(info, status)
    return 0 if status == "DONE" else 1


def wait_warm() -> str:
    """The warm interpreter: do the imports every payload needs, then wait for a job on standard
    input (one JSON line: spec path, environment, log file), send the output to the job's log and
    return the spec path. Used once: the agent starts a new one for the next job."""
    import cloudpickle  # noqa: F401
    import ray  # noqa: F401

    import shoal.hooks
    import shoal.jobs.results
    import shoal.runtime.plugin_bootstrap  # noqa: F401

    line = sys.stdin.readline()
    if not line:
        os._exit(0)  # the agent went away before a job came
    message = json.loads(line)
    os.environ.update(message["env"])
    extra = [p for p in message["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:0] = [p for p in extra if p not in sys.path]  # what a fresh interpreter would have
    fd = os.open(message["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return str(message["spec"])


if __name__ == "__main__":
    path = wait_warm() if sys.argv[1] == "--warm" else sys.argv[1]
    code = main(path)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for the payload's stray threads
