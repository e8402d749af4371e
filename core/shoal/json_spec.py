"""One JSON codec for the flat frozen dataclasses that pass between shoal's processes.

:class:`JsonSpec` gives a dataclass ``to_dict``/``from_dict`` and ``to_json``/``from_json``
(plain JSON, no pickle; unknown keys are ignored on reading, so a newer writer's extra fields do
not break an older reader). Used by the DPF run specs (:mod:`shoal.dpf.specs`) and the tuner's
records (:mod:`shoal.tune.records`).

Runs anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="JsonSpec")


class JsonSpec:
    """``to_dict``/``from_dict`` and ``to_json``/``from_json`` for flat frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        return cls.from_dict(json.loads(text))
