"""A local pool's state file (``state.json``) read and written typed: one written before it was
typed reads back, a damaged one is an error that names the file and what to do (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.errors import RecordError
from shoal.plugins.local_pool_state import LocalNode, LocalPoolState, load_state, save_state
from shoal.pools.node_spec import NodeStarted

#: state.json as the local pool wrote it before LocalPoolState (no wire version)
OLD_STATE = {
    "pool_id": "TRAIN-1a2b3c4d",
    "gcs_address": "127.0.0.1:40123",
    "webui_url": None,
    "janitor_sid": 5100,
    "nodes": {
        "0": {
            "index": 0,
            "sid": 5000,
            "node_id": "ab" * 28,
            "gcs_address": "127.0.0.1:40123",
            "logs_dir": "/tmp/shoal-1000/x/n0/session/logs",
            "temp_dir": "/tmp/shoal-1000/x/n0",
            "raylet_pids": [5010],
            "webui_url": None,
            "started_at": 1765000000.5,
            "launch_s": 1.2,
        },
        "1": {
            "index": 1,
            "sid": 5020,
            "node_id": "cd" * 28,
            "gcs_address": "127.0.0.1:40123",
            "logs_dir": "/tmp/shoal-1000/x/n1/session/logs",
            "temp_dir": "/tmp/shoal-1000/x/n1",
            "raylet_pids": [5030],
            "webui_url": None,
            "started_at": 1765000001,
            "launch_s": 0.9,
        },
    },
}


def test_a_state_written_before_it_was_typed_reads_back_typed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(OLD_STATE))
    state = load_state(path, "TRAIN")
    assert state is not None
    assert state.head is not None
    assert state.head.raylet_pids == (5010,)
    assert sorted(state.nodes) == ["0", "1"]
    assert state.nodes["1"].started_at == 1765000001.0
    assert state.janitor_sid == 5100
    assert state.without_node(1).nodes.keys() == {"0"}
    save_state(path, state.without_node(1))
    again = json.loads(path.read_text())
    assert again["nodes"]["0"] == OLD_STATE["nodes"]["0"], "readers of the old layout read the new one"
    assert again["wire"] == 1


def test_a_node_is_recorded_from_its_launchers_answer() -> None:
    answer = NodeStarted.from_json(
        json.dumps(
            {
                "gcs_address": "127.0.0.1:1",
                "node_id": "n9",
                "session_dir": "/s",
                "logs_dir": "/s/logs",
                "temp_dir": "/t",
                "pids": {"raylet": [77], "gcs_server": [78]},
                "launcher_pid": 70,
                "launch_s": 0.5,
                "added_by_a_newer_ray": True,
            }
        )
    )
    node = LocalNode.started(2, 70, answer)
    assert (node.index, node.sid, node.node_id, node.raylet_pids) == (2, 70, "n9", (77,))
    state = LocalPoolState("P-1").with_node(node)
    assert state.nodes == {"2": node}
    assert state.head is None


@pytest.mark.parametrize("text", ['{"pool_id": "TRAIN-1a', "", '{"pool_id": 7}'])
def test_a_damaged_state_names_the_file_the_pool_and_what_to_do(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(RecordError) as caught:
        load_state(path, "TRAIN")
    message = str(caught.value)
    assert f"{path}, the state of compute pool TRAIN, cannot be read" in message
    assert "SHOAL_POOL_ID=TRAIN-<8 hex digits>" in message
    assert "`shoal pool drop TRAIN`" in message


def test_a_pool_whose_state_is_damaged_can_still_be_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import shoal
    from shoal.pools import records
    from shoal.pools.families import DEFAULT_FAMILY

    monkeypatch.setenv("SHOAL_HOME", str(tmp_path))
    records.save(
        records.new_record(
            "TRAIN", backend="local", min_nodes=0, max_nodes=2, instance_family=DEFAULT_FAMILY, options={}
        )
    )
    state = records.pool_dir("TRAIN") / "state.json"
    state.write_text(json.dumps(OLD_STATE)[:40])
    with pytest.raises(RecordError, match="the state of compute pool TRAIN, cannot be read"):
        shoal.describe_compute_pool("TRAIN")
    shoal.drop_compute_pool("TRAIN")
    assert [p["name"] for p in shoal.list_compute_pools()] == []
    assert not (tmp_path / "pools" / "TRAIN").exists()
    assert any("SHOAL_POOL_ID=TRAIN-" in r.getMessage() for r in caplog.records), "the drop says so"


def test_a_pool_never_started_has_no_state(tmp_path: Path) -> None:
    assert load_state(tmp_path / "state.json", "TRAIN") is None
