"""Glob patterns for ``Stage.list(path, pattern)``.

The rule, the same for every backend:

* a pattern without ``/`` is matched against the file's base name, so ``"*.parquet"`` finds
  parquet files at any depth under the listed folder;
* a pattern with ``/`` is matched against the file's path relative to the listed folder: ``**``
  (a whole part) matches any number of folders, including none; ``*`` and ``?`` stay within one
  part; ``[abc]`` / ``[!abc]`` are character classes.

Matching is case-sensitive, like file names on object stores and Linux.

Pure string functions: run anywhere (driver and workers).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from shoal.errors import ConfigError


def _translate_part(part: str) -> str:
    """Regex for one path part: ``*`` and ``?`` never cross a ``/``."""
    out: list[str] = []
    i, n = 0, len(part)
    while i < n:
        char = part[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = i
            if end < n and part[end] in "!^":
                end += 1
            if end < n and part[end] == "]":
                end += 1
            end = part.find("]", end)
            if end < 0:  # no closing bracket: a literal "["
                out.append(re.escape(char))
                continue
            body = part[i:end]
            i = end + 1
            negate = body[:1] in ("!", "^")
            escaped = "".join(c if c == "-" else re.escape(c) for c in (body[1:] if negate else body))
            out.append(f"(?!/)[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    if "/" not in pattern:
        return re.compile(_translate_part(pattern))
    if pattern.startswith("/"):
        raise ConfigError(f"Pattern {pattern!r} starts with '/'; patterns are relative to the listed folder.")
    parts = pattern.split("/")
    if any(part == "" for part in parts):
        raise ConfigError(f"Pattern {pattern!r} has an empty part ('//' or a trailing '/'); use 'dir/**'.")
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += ".+" if last else "(?:[^/]+/)*"
        else:
            regex += _translate_part(part) + ("" if last else "/")
    return re.compile(regex)


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """Return ``match(relative_path) -> bool`` for ``pattern`` (see the module docstring).

    ``relative_path`` is the file's path relative to the listed folder. Raises
    :class:`~shoal.errors.ConfigError` for an empty or malformed pattern.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(
            f"A list pattern must be a non-empty string such as '*' or '**/*.csv', got {pattern!r}."
        )
    regex = _compile(pattern)
    if "/" not in pattern:
        return lambda relative_path: regex.fullmatch(relative_path.rsplit("/", 1)[-1]) is not None
    return lambda relative_path: regex.fullmatch(relative_path) is not None
