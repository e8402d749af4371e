"""What crosses process boundaries when a job runs, as frozen dataclasses sent as JSON
(:mod:`shoal.wire`).

- :class:`JobSpec`: from the submitting process to the pool's service (one per job);
- :class:`LaunchSpec`: from the service, through the head node's agent, to the payload
  process (written as ``spec.json``, 0600, in the job's local folder).

The user's environment variables (``env_vars``, ``--env``) are secrets: they travel in
``JobSpec.env`` over Ray calls only, reach the payload process as its environment, and never
enter ``LaunchSpec``, which names them (``user_env_names``) without their values.

Built on the driver at submit time; read in the pool service and in the payload process.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shoal.plugin_manager import PluginManifest
from shoal.wire import WireSpec

#: In a payload's environment: the address of the Ray node whose agent started it, which its
#: driver joins Ray through (``shoal.runtime.node_agent`` sets it, ``shoal.runtime.job_launcher``
#: reads it).
NODE_IP_VAR = "SHOAL_NODE_IP"


@dataclass(frozen=True)
class JobIdentity(WireSpec):
    """What every spec of a job says about it: its names, where it lives, what it asked for."""

    job_id: str
    job_name: str
    job_dir: str
    stage_name: str
    stage_url: str
    compute_pool: str
    target_instances: int
    min_instances: int


@dataclass(frozen=True)
class LaunchSpec(JobIdentity):
    """How the payload process runs the job's code (``shoal.runtime.job_launcher``)."""

    kind: str  # "function", "file" or "command"
    entrypoint: str | list[str]
    args: list[str]
    #: environment of the job's Ray workers that is not secret: the instance variables
    worker_env: dict[str, str]
    #: the nodes see the driver's files (a local pool): ``app/`` goes on PYTHONPATH, not shipped
    shared_filesystem: bool
    plugin_manifest: PluginManifest  # the submitting process's plugins, rebuilt before the code runs
    app_dir: str = ""  # the local copy of ``@stage/<job>/app``, filled in by the head's agent
    pip_requirements: list[str] = field(default_factory=list)  # installed before the code runs
    namespace: str | None = None
    loopback: bool = True
    #: the names of the user's variables: their values are in the payload process's environment
    #: and reach the job's Ray workers through :mod:`shoal.runtime.job_env`, never a file or log
    user_env_names: list[str] = field(default_factory=list)

    def with_node_facts(self, app_dir: str, instance_env: dict[str, str]) -> LaunchSpec:
        """This spec once the job has nodes: where its code is, and the instance variables."""
        return replace(self, app_dir=app_dir, worker_env={**self.worker_env, **instance_env})


@dataclass(frozen=True)
class JobSpec(JobIdentity):
    """A submitted job, as the pool's service queues and runs it."""

    created_time: float
    node_resource: str  # the custom Ray resource every node of the pool has one of
    instances_timeout: float  # seconds to wait for min_instances nodes
    env: dict[str, str]  # environment of the payload process
    launch: LaunchSpec
