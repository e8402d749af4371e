"""A local pool's state file: its Ray nodes' addresses and process ids (``state.json``).

Written by whichever process starts, grows, shrinks or stops the pool (under the pool's
``state.lock``); read by any process that uses the pool (a driver, the CLI, the web view, the
tests). A :class:`LocalPoolState` on the wire (:mod:`shoal.wire`): typed, unknown fields ignored.

Runs on the driver (any process on this machine that uses the pool).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from shoal.errors import RecordError
from shoal.localfiles import write_atomically
from shoal.pools.node_spec import NodeStarted
from shoal.wire import WireError, WireSpec


@dataclass(frozen=True)
class LocalNode(WireSpec):
    """One Ray node of a local pool."""

    index: int
    #: the node launcher's session id: every process of the node is in that session
    sid: int
    node_id: str
    gcs_address: str
    logs_dir: str
    temp_dir: str
    raylet_pids: tuple[int, ...] = ()
    webui_url: str | None = None
    started_at: float = 0.0
    launch_s: float = 0.0

    @classmethod
    def started(cls, index: int, sid: int, answer: NodeStarted) -> LocalNode:
        """The node ``index`` whose launcher (session ``sid``) answered ``answer``."""
        return cls(
            index=index,
            sid=sid,
            node_id=answer.node_id,
            gcs_address=answer.gcs_address,
            logs_dir=answer.logs_dir,
            temp_dir=answer.temp_dir,
            raylet_pids=tuple(answer.pids.get("raylet", [])),
            webui_url=answer.webui_url,
            started_at=time.time(),
            launch_s=answer.launch_s,
        )


@dataclass(frozen=True)
class LocalPoolState(WireSpec):
    """A started local pool: its id (the marker its processes carry) and its nodes by index."""

    pool_id: str
    #: by index, as text (JSON's keys); "0" is the head
    nodes: dict[str, LocalNode] = field(default_factory=dict)
    gcs_address: str | None = None
    #: the pool's dashboard: the head's own, or one started on request (``dashboard_pid``)
    webui_url: str | None = None
    dashboard_pid: int | None = None
    #: the idle-node janitor's session id
    janitor_sid: int | None = None

    @property
    def head(self) -> LocalNode | None:
        return self.nodes.get("0")

    def with_node(self, node: LocalNode) -> LocalPoolState:
        return dataclasses.replace(self, nodes={**self.nodes, str(node.index): node})

    def without_node(self, index: int) -> LocalPoolState:
        return dataclasses.replace(self, nodes={k: v for k, v in self.nodes.items() if k != str(index)})


def load_state(path: Path, pool_name: str) -> LocalPoolState | None:
    """The pool's state, or None when it has none (never started, or stopped); a file that
    cannot be read raises :class:`~shoal.errors.RecordError` saying what to do."""
    if not path.exists():
        return None
    text = path.read_text()
    try:
        return LocalPoolState.from_json(text)
    except WireError as exc:
        raise RecordError(
            f"{path}, the state of compute pool {pool_name}, cannot be read ({exc}; {len(text)} bytes): "
            f"it was cut short or changed by hand, so shoal cannot tell which processes are the pool's. "
            f"They carry SHOAL_POOL_ID={pool_name}-<8 hex digits> in their environment (`ps eww`): end "
            f"them, then `shoal pool drop {pool_name}` forgets the pool; create it again after."
        ) from None


def save_state(path: Path, state: LocalPoolState) -> None:
    """Write ``state`` (not fsynced: the state describes processes, which a crash ends too). The
    pool id comes first, so that a file cut short still shows it."""
    write_atomically(path, json.dumps(state.to_dict(), indent=2), durable=False)
