"""A status enum base shared by jobs and DPF runs. Runs anywhere."""

from __future__ import annotations

from enum import Enum


class StrValueEnum(str, Enum):
    """An enum whose members compare equal to, and print as, their plain string values."""

    def __str__(self) -> str:
        return str(self.value)
