"""The session a job's code finds (shoal.data.job_session), without Ray: descriptors, the lazy
patch, which session a lookup gets, and what is left to Snowpark. Each case runs in a fresh
interpreter, since the patch is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shoal.data.job_session import EMBEDDED_DEFAULTS, SESSION_VAR, SessionDescriptor


def run_python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != SESSION_VAR} | env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_descriptor_travels_as_json_and_an_unknown_kind_is_refused() -> None:
    descriptor = SessionDescriptor("embedded", "SHOAL", "JOBS")
    assert SessionDescriptor.from_env(descriptor.to_env()) == descriptor
    assert json.loads(EMBEDDED_DEFAULTS.to_env()) == {"kind": "embedded", "database": None, "schema": None}
    with pytest.raises(ValueError, match=f"{SESSION_VAR} names an unknown session kind"):
        SessionDescriptor.from_env('{"kind": "account"}')


LOOKUP = """
import json, sys
from shoal.data import job_session
job_session.install()
lazy = "snowflake.snowpark" not in sys.modules
import cloudpickle
from snowflake.snowpark import Session
from snowflake.snowpark.context import get_active_session
first = get_active_session()
same = get_active_session() is first and Session.builder.getOrCreate() is first
by_reference = cloudpickle.loads(cloudpickle.dumps(get_active_session)) is get_active_session
first.close()
reopened = get_active_session()
print(json.dumps({
    "lazy": lazy, "same": same, "by_reference": by_reference,
    "local_testing": bool(first._conn._local_testing) if hasattr(first._conn, "_local_testing")
        else type(first._conn).__name__,
    "reopened": reopened is not first and not reopened._conn.is_closed(),
}))
"""


def test_a_lookup_opens_the_jobs_session_once_and_again_after_it_was_closed() -> None:
    got = json.loads(run_python(LOOKUP, **{SESSION_VAR: SessionDescriptor("local_testing").to_env()}))
    assert got == {
        "lazy": True,
        "same": True,
        "by_reference": True,
        "local_testing": "MockServerConnection",
        "reopened": True,
    }


def test_the_codes_own_session_wins_and_no_descriptor_leaves_snowpark_alone() -> None:
    code = """
import json
from shoal.data import job_session
job_session.install()
from snowflake.snowpark import Session
from snowflake.snowpark.context import get_active_session
from snowflake.snowpark.exceptions import SnowparkSessionException
import os
without = None
if "SHOAL_JOB_SESSION" not in os.environ:
    try:
        get_active_session()
    except SnowparkSessionException as exc:
        without = type(exc).__name__
mine = Session.builder.config("local_testing", True).create()
print(json.dumps({"without": without, "mine": get_active_session() is mine}))
"""
    assert json.loads(run_python(code)) == {"without": "SnowparkSessionException", "mine": True}
    with_descriptor = run_python(code, **{SESSION_VAR: SessionDescriptor("local_testing").to_env()})
    assert json.loads(with_descriptor) == {"without": None, "mine": True}


def test_describe_names_the_submitters_session() -> None:
    code = """
import json
from snowflake.snowpark import Session
from shoal.data.job_session import describe
alone = describe(None)
local = Session.builder.config("local_testing", True).create()
print(json.dumps([alone.kind, describe(None).kind, describe(local).kind]))
"""
    assert json.loads(run_python(code)) == ["embedded", "local_testing", "local_testing"]


def test_a_session_argument_opened_before_snowpark_is_imported_is_the_one_lookups_find() -> None:
    """The payload restores a session argument first: opening it imports Snowpark, whose import
    hook patches the lookups while the session is being opened (this deadlocked once)."""
    code = """
import json
from shoal.data import job_session
job_session.install()
argument = job_session.session_for(job_session.SessionDescriptor("local_testing"))
from snowflake.snowpark.context import get_active_session
print(json.dumps(get_active_session() is argument))
"""
    assert run_python(code, **{SESSION_VAR: SessionDescriptor("local_testing").to_env()}) == "true"
