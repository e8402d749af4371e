"""Click parameter types shared by the ``shoal`` commands. Runs on the driver (the CLI process)."""

from __future__ import annotations

import json
from typing import Any

import click


class KeyValue(click.ParamType):
    """``KEY=VALUE`` (``--env``, ``--option``): converts to a ``(key, value)`` pair.

    With ``json_values``, a value that parses as JSON (numbers, booleans, lists) is taken as such,
    any other as text. A value may be a secret (``--env API_KEY=...``): an error names the item
    only when it has no value, and never shows what follows the ``=``.
    """

    name = "KEY=VALUE"

    def __init__(self, *, json_values: bool = False) -> None:
        self.json_values = json_values

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, raw = str(value).partition("=")
        if not sep:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        if not key.strip():
            self.fail("an item has an empty KEY (expected KEY=VALUE)", param, ctx)
        if not self.json_values:
            return key, raw
        try:
            return key, json.loads(raw)
        except ValueError:
            return key, raw


def key_values(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The pairs of a repeated :class:`KeyValue` option as a dict (a later KEY wins)."""
    return dict(pairs)
