"""Stage names and stage locations (``@name/path``).

A stage name is written with or without a leading ``@``, bare (``models``) or qualified
(``db.schema.models``). Shoal has a single namespace, so the database and schema parts are
validated and then ignored. Names are case-insensitive: the canonical name is the last part in
upper case, like an unquoted Snowflake identifier. Each part must be an identifier:
``[A-Za-z_][A-Za-z0-9_$]*``, at most 255 characters.

A location is a name followed by a path inside the stage: ``@models/v1/model.json``,
``models/v1``, ``@db.sch.models/v1/``. :func:`parse_location` splits it into the canonical
name and the normalized inner path (``""`` for the stage root).

Pure string functions: run anywhere (driver and workers), touch no file.
"""

from __future__ import annotations

import re

from shoal.errors import ConfigError
from shoal.stages.paths import normalize_path

IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
MAX_IDENTIFIER_LENGTH = 255
_MAX_PARTS = 3  # database.schema.name

_NAME_HINT = (
    "A stage name is an identifier (letters, digits, '_' and '$', starting with a letter or '_', at most "
    f"{MAX_IDENTIFIER_LENGTH} characters), optionally qualified as 'database.schema.name' and prefixed "
    "with '@', e.g. '@models' or '@db.public.models'."
)


def _check_identifier(part: str, written: str) -> None:
    if not part:
        raise ConfigError(f"Invalid stage name {written!r}: it has an empty part. {_NAME_HINT}")
    if len(part) > MAX_IDENTIFIER_LENGTH:
        raise ConfigError(
            f"Invalid stage name {written!r}: the part {part[:20]!r}... is {len(part)} characters long "
            f"(at most {MAX_IDENTIFIER_LENGTH}). {_NAME_HINT}"
        )
    if not IDENTIFIER_RE.fullmatch(part):
        raise ConfigError(f"Invalid stage name {written!r}: {part!r} is not an identifier. {_NAME_HINT}")


def parse_stage_name(name: str) -> str:
    """Return the canonical (upper-case, unqualified) form of a stage name.

    ``"@s"``, ``"S"``, ``"db.sch.s"`` and ``"@DB.SCH.S"`` all give ``"S"``. Raises
    :class:`~shoal.errors.ConfigError` saying what is wrong for anything else (including a
    location with a path: use :func:`parse_location` for those).
    """
    if not isinstance(name, str):
        raise ConfigError(f"A stage name must be a string, got {type(name).__name__} {name!r}. {_NAME_HINT}")
    written = name
    text = name.strip()
    if text.startswith("@"):
        text = text[1:]
    if not text:
        raise ConfigError(f"Invalid stage name {written!r}: it is empty. {_NAME_HINT}")
    if "/" in text:
        raise ConfigError(
            f"{written!r} is a location (stage name and path), not a stage name; pass only the name, "
            f"e.g. {'@' + text.split('/', 1)[0]!r}."
        )
    parts = text.split(".")
    if len(parts) > _MAX_PARTS:
        raise ConfigError(
            f"Invalid stage name {written!r}: at most {_MAX_PARTS} dot-separated parts "
            f"(database.schema.name). {_NAME_HINT}"
        )
    for part in parts:
        _check_identifier(part, written)
    return parts[-1].upper()


def parse_location(location: str) -> tuple[str, str]:
    """Split ``"@name/inner/path"`` into ``(canonical name, normalized inner path)``.

    The ``@`` is optional and the name may be qualified: ``"@db.sch.s/a//b/"`` gives
    ``("S", "a/b")``. A location without a path gives ``""`` (the stage root). Raises
    :class:`~shoal.errors.ConfigError` for a bad name and
    :class:`~shoal.errors.StagePathError` for a bad path.
    """
    if not isinstance(location, str):
        raise ConfigError(
            f"A stage location must be a string like '@stage/path', "
            f"got {type(location).__name__} {location!r}."
        )
    text = location.strip()
    name_part, _, path_part = text.partition("/")
    if name_part in ("", "@"):
        raise ConfigError(
            f"Stage location {location!r} names no stage; write '@stage' or '@stage/path/inside/it'."
        )
    name = parse_stage_name(name_part)
    return name, normalize_path(path_part)


def format_location(name: str, path: str = "") -> str:
    """The location string ``@NAME/path`` (``@NAME`` for the root) of a canonical name and path."""
    return f"@{name}/{path}" if path else f"@{name}"
