"""The wire format between shoal's processes: versioned JSON for frozen dataclasses.

Every spec that crosses a process boundary (a job's specs, a DPF run's specs, the plugin
manifest, a tuner's records) is a frozen dataclass deriving from :class:`WireSpec`:

* ``to_json`` / ``to_dict`` write its fields as plain JSON (tuples as lists, nested specs as
  objects) plus ``"wire": WIRE_VERSION``;
* ``from_json`` / ``from_dict`` read them back typed, through msgspec (``msgspec.convert``): nested
  specs, tuples, literals and optional fields come back as declared, ``__post_init__`` runs, and
  a value of the wrong type is a :class:`WireError` that names the field. **Unknown fields are
  ignored**, at every depth: a newer writer's extra fields do not break an older reader. A
  document of a newer wire version than this reader's is refused, saying which.

Pickle crosses processes only for what cannot be data: the user's function and an estimator's
backend (and the results they return).

Runs anywhere.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

from shoal.errors import ShoalError

#: the version written into every document; readers refuse a newer one
WIRE_VERSION = 1
VERSION_KEY = "wire"

T = TypeVar("T", bound="WireSpec")


class WireError(ShoalError, ValueError):
    """A document that is not the spec it should be: malformed, mistyped, or too new."""


def to_builtins(spec: Any) -> dict[str, Any]:
    """``spec`` (a dataclass) as JSON-ready builtins, with the wire version."""
    data: dict[str, Any] = msgspec.to_builtins(spec)
    data[VERSION_KEY] = WIRE_VERSION
    return data


def from_builtins(cls: type[T], data: Any) -> T:
    """``data`` (decoded JSON) as a ``cls``; unknown fields ignored."""
    name = getattr(cls, "__qualname__", str(cls))
    if not isinstance(data, dict):
        raise WireError(f"a {name} must be a JSON object, not {type(data).__name__}")
    version = data.get(VERSION_KEY, WIRE_VERSION)
    if not isinstance(version, int) or version > WIRE_VERSION:
        raise WireError(
            f"this {name} was written in wire version {version!r}; this shoal reads up to "
            f"{WIRE_VERSION}: install the same shoal version on the driver and the nodes"
        )
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise WireError(f"not a valid {name}: {exc}") from exc


def encode_list(specs: Any) -> str:
    """A sequence of specs as one JSON array (each with the wire version)."""
    return json.dumps([to_builtins(spec) for spec in specs], separators=(",", ":"))


def decode_list(cls: type[T], text: str | bytes) -> list[T]:
    """The specs of :func:`encode_list`, each a ``cls``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WireError(f"a list of {cls.__qualname__} must be JSON: {exc}") from exc
    if not isinstance(data, list):
        raise WireError(f"a list of {cls.__qualname__} must be a JSON array, not {type(data).__name__}")
    return [from_builtins(cls, item) for item in data]


class WireSpec:
    """``to_dict``/``from_dict`` and ``to_json``/``from_json`` for a frozen dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return to_builtins(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_plain(self) -> dict[str, Any]:
        """The spec as plain JSON values (lists, not tuples) without the wire version: what a
        user is handed as a dict (``job.details()``, ``run.definition``)."""
        data: dict[str, Any] = json.loads(self.to_json())
        data.pop(VERSION_KEY, None)
        return data

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return from_builtins(cls, data)

    @classmethod
    def from_json(cls: type[T], text: str | bytes) -> T:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WireError(f"a {cls.__qualname__} must be JSON: {exc}") from exc
        return from_builtins(cls, data)
