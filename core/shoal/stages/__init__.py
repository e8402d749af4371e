"""Stages: named places where files live (a local folder, an object-store prefix, ...).

Quick tour::

    from shoal.stages import create_stage, get_stage, resolve_location

    models = create_stage("models")                  # managed: $SHOAL_HOME/stages/MODELS
    raw = create_stage("raw", "s3://bucket/raw")      # external: data stays when dropped
    models.put("out/model.json", "v1")                # -> ["v1/model.json"]
    get_stage("@db.public.MODELS").list(pattern="*.json")
    stage, path = resolve_location("@models/v1/model.json")

See ``docs/stages.md`` for names, locations, patterns, atomic writes, confinement and how to add a
storage backend with a plugin. Runs on the driver and on workers.
"""

from __future__ import annotations

from shoal.stages.api import (
    create_stage,
    drop_stage,
    get,
    get_stage,
    list_files,
    list_stages,
    open_file,
    put,
    remove,
    resolve_location,
)
from shoal.stages.backend import TEMP_PREFIX, AtomicWriter, StageBackend
from shoal.stages.catalog import StageInfo
from shoal.stages.names import format_location, parse_location, parse_stage_name
from shoal.stages.stage import Stage

__all__ = [
    "TEMP_PREFIX",
    "AtomicWriter",
    "Stage",
    "StageBackend",
    "StageInfo",
    "create_stage",
    "drop_stage",
    "format_location",
    "get",
    "get_stage",
    "list_files",
    "list_stages",
    "open_file",
    "parse_location",
    "parse_stage_name",
    "put",
    "remove",
    "resolve_location",
]
