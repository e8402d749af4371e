"""Validation and confinement of paths inside a stage, and of stage URLs.

Every path a user hands to a stage goes through :func:`normalize_path` before a backend sees
it. The result is a relative POSIX path with no empty, ``.`` or ``..`` parts (``""`` is the
stage root), so a backend can join it under its root without escaping it. What cannot be
decided from the string alone (symbolic links) is checked by the backend's ``check_confined``.

:func:`normalize_url` turns what a user gives ``create_stage`` (a URL or an absolute local
path) into the URL stored in the catalog.

Runs anywhere: the driver and every worker.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from shoal.errors import ConfigError, StagePathError
from shoal.stages.backend import TEMP_PREFIX

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

#: Shown after every path error: what a valid stage path looks like.
PATH_HINT = "Use a relative path with '/' separators inside the stage, e.g. 'models/v1/model.json'."


def normalize_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` as a clean stage-relative POSIX path (``""`` for the stage root).

    ``a//b`` and ``./a/./b`` become ``a/b``; a trailing ``/`` is dropped. Raises
    :class:`~shoal.errors.StagePathError` for ``..`` parts, absolute paths (``/x``, ``C:\\x``,
    ``~``), backslashes, NUL bytes and names starting with the reserved temporary prefix.
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise StagePathError(
            f"A stage path must be a string, got {type(path).__name__} {path!r}. {PATH_HINT}"
        )
    if "\x00" in path:
        raise StagePathError(f"Stage path {path!r} contains a NUL byte. {PATH_HINT}")
    if path.startswith(("/", "\\")) or _DRIVE_RE.match(path):
        raise StagePathError(
            f"Stage path {path!r} is absolute; paths are relative to the stage root. {PATH_HINT}"
        )
    if "\\" in path:
        raise StagePathError(
            f"Stage path {path!r} contains a backslash; stage paths use '/' as the separator. {PATH_HINT}"
        )
    if path.startswith("~"):
        raise StagePathError(
            f"Stage path {path!r} starts with '~'; home folders do not exist inside a stage. {PATH_HINT}"
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise StagePathError(
            f"Stage path {path!r} contains '..'; a path may not leave its folder or the stage. {PATH_HINT}"
        )
    reserved = [part for part in parts if part.startswith(TEMP_PREFIX)]
    if reserved:
        raise StagePathError(
            f"Stage path {path!r}: names starting with {TEMP_PREFIX!r} are reserved for in-flight writes. "
            f"Rename {reserved[0]!r}."
        )
    return "/".join(parts)


def join_path(*parts: str) -> str:
    """Join already-normalized stage paths, skipping empty ones: ``join_path("", "a", "b/c") == "a/b/c"``."""
    return "/".join(part for part in parts if part)


def relative_to(path: str, folder: str) -> str:
    """Return ``path`` relative to the stage folder ``folder`` (both normalized)."""
    if not folder:
        return path
    if path == folder:
        return ""
    prefix = folder + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path!r} is not under {folder!r}")
    return path[len(prefix) :]


def basename(path: str) -> str:
    """Last part of a normalized stage path."""
    return path.rsplit("/", 1)[-1]


def is_temp_path(path: str) -> bool:
    """True when a part of ``path`` is an in-flight atomic write (hidden from listings)."""
    return any(part.startswith(TEMP_PREFIX) for part in path.split("/"))


def is_within(path: str, root: str) -> bool:
    """True when the local path ``path`` is ``root`` or below it (both absolute, already resolved)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives, or a mix of absolute and relative paths
        return False


def url_scheme(url: str) -> str:
    """The lower-case scheme of a stage URL (``"file"``, ``"memory"``, ``"s3"``...)."""
    match = _SCHEME_RE.match(url)
    if match:
        return match.group(1).lower()
    if url.lower().startswith("file:"):
        return "file"
    raise ConfigError(
        f"Stage URL {url!r} has no scheme; use e.g. 'file:///abs/path' or 's3://bucket/prefix'."
    )


def file_url_to_path(url: str) -> str:
    """The absolute local path of a ``file://`` URL; raises :class:`ConfigError` for other forms."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ConfigError(f"{url!r} is not a file:// URL.")
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"File URL {url!r} names the host {parts.netloc!r}; write a local folder as 'file:///abs/path' "
            f"(three slashes)."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"File URL {url!r} may not have a query or a fragment ('?' or '#').")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ConfigError(f"File URL {url!r} must hold an absolute path: 'file:///abs/path'.")
    return os.path.normpath(path)


def path_to_file_url(path: str) -> str:
    """``file://`` URL of an absolute local path (percent-encoded where needed)."""
    from pathlib import Path

    return Path(os.path.normpath(path)).as_uri()


def normalize_url(url: str | os.PathLike[str]) -> str:
    """Return the catalog form of a stage URL.

    An absolute local path (``/data/x``, ``~/data/x``) becomes ``file:///data/x``; a ``file:``
    URL is normalized the same way; other URLs keep their text with a lower-case scheme and no
    trailing ``/``. A relative path, or a string without a scheme, is a :class:`ConfigError`.
    Whether a backend serves the scheme is checked by the caller, through the hooks.
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise ConfigError(f"A stage URL must be a string, got {type(url).__name__} {url!r}.")
    text = url.strip()
    if not text:
        raise ConfigError("A stage URL may not be empty; leave it out to create a managed stage.")
    if "\x00" in text:
        raise ConfigError(f"Stage URL {url!r} contains a NUL byte.")
    match = _SCHEME_RE.match(text)
    if match or text.lower().startswith("file:"):
        scheme = url_scheme(text)
        if scheme == "file":
            return path_to_file_url(file_url_to_path(text))
        rest = text[match.end() :] if match else ""
        rest = rest.rstrip("/")
        if not rest:
            raise ConfigError(
                f"Stage URL {url!r} names no bucket or folder, e.g. '{scheme}://bucket/prefix'."
            )
        return f"{scheme}://{rest}"
    expanded = os.path.expanduser(text)
    if os.path.isabs(expanded):
        return path_to_file_url(expanded)
    raise ConfigError(
        f"Stage URL {url!r} is a relative path. Give an absolute path ('/data/stage'), a file URL "
        f"('file:///data/stage') or a URL such as 's3://bucket/prefix'."
    )
