"""Partition keys as folder names: one safe, reversible scheme for every stage backend.

A partition's artifacts go to ``{run_id}/{folder}/`` where ``folder`` comes from its key:

- ``/`` separates folders, as on the reference's stages (a stage-mode id is a file path);
- each ``/``-separated part is percent-encoded; ASCII letters, digits and ``_.-~=+,@`` stay as
  they are, so ``S01``, ``store_7`` or ``2024-01-31`` read as themselves;
- a part that is empty is ``%``; a part that starts with ``.`` or ``~``, or a first part that
  starts with ``_shoal``, has its first character encoded too (``..`` is ``%2E.``, ``_shoal`` is
  ``%5Fshoal``): no key leaves the run's folder, hides, or lands in the run's own records;
- a part longer than :data:`LONGEST_PART` bytes once encoded keeps its first bytes and ends with
  ``%%`` and a digest of the whole part, so any key fits a file system's 255-byte names.

Percent-encoding never writes ``%%`` nor a lone ``%``, so those names are shoal's own. Within one
run, two keys whose folders differ only in case (``S1`` and ``s1``) would share a folder on a
case-insensitive file system (macOS, Windows): :func:`folders_of` gives every such key but the
first (by key) a ``%%`` suffix with a digest of the key. The folders are decided once, on the
driver, and kept with the partitions (``PartitionInput.folder``); :func:`key_of` reverses the
scheme where no digest was needed, and the run's partitions answer for the others.

Pure functions, no I/O. Runs anywhere: the driver (partitioning), the scheduler, workers.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterable

#: Where the run keeps its own records, beside the partitions' folders.
RESERVED_FIRST_PART = "_shoal"
#: The longest folder name (bytes) a partition key part becomes; 255 is the limit of most file
#: systems, and a little is left for shoal's temporary names in the folder.
LONGEST_PART = 200
#: Characters kept as they are, besides ASCII letters, digits and ``_.-~``.
_KEPT = "=+,@"
#: The folder name of an empty key part: percent-encoding never gives a lone ``%``.
EMPTY_PART = "%"
#: Marks a digest: percent-encoding never gives ``%%``.
DIGEST_MARK = "%%"


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


def _encode_part(part: str, first: bool) -> str:
    name = urllib.parse.quote(part, safe=_KEPT)
    if not name:
        return EMPTY_PART
    if name.startswith((".", "~")) or (first and name.startswith(RESERVED_FIRST_PART)):
        # '.' and '..' would leave the folder, '.x' is hidden (and '.shoal-tmp-' is reserved),
        # '~' means home, and '_shoal' is the run's own records folder
        name = f"%{ord(name[0]):02X}{name[1:]}"
    if len(name) > LONGEST_PART:  # encoded names are ASCII: one byte a character
        head = name[: LONGEST_PART - 20]
        cut = head.rfind("%", len(head) - 2)
        if cut != -1:  # never cut a %XX in two
            head = head[:cut]
        name = f"{head}{DIGEST_MARK}{_digest(part, 16)}"
    return name


def folder_of(partition_id: str) -> str:
    """The folder of ``partition_id`` below its run's folder, on its own (see the module's text)."""
    parts = partition_id.split("/")
    return "/".join(_encode_part(part, index == 0) for index, part in enumerate(parts))


def folders_of(partition_ids: Iterable[str]) -> dict[str, str]:
    """The folder of each key of one run: :func:`folder_of`, and a ``%%`` digest for every key but
    the first (sorted) of keys whose folders differ only in case."""
    folders = {pid: folder_of(pid) for pid in partition_ids}
    taken: dict[str, str] = {}
    for pid in sorted(folders):
        folded = folders[pid].casefold()
        if folded in taken:
            folders[pid] = f"{folders[pid]}{DIGEST_MARK}{_digest(pid, 8)}"
            folded = folders[pid].casefold()
        taken[folded] = pid
    return folders


def key_of(folder: str) -> str | None:
    """The partition id whose folder is ``folder``; None when the folder carries a digest (the
    run's partitions know its key)."""
    if DIGEST_MARK in folder:
        return None
    return "/".join("" if part == EMPTY_PART else urllib.parse.unquote(part) for part in folder.split("/"))
