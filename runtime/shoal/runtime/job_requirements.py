"""A job's ``pip_requirements``, installed once per set of requirements and reused by later jobs.

The payload process (instance 0) calls :func:`requirements_folder` before the job's code runs:
``pip install --target`` into a folder named after a hash of the requirements and the Python
version, under ``SHOAL_PIP_CACHE`` (default: ``<temp>/shoal-pip-cache``), behind a file lock so
that two jobs with the same requirements install them once. The folder goes first on the
payload's ``sys.path`` and on its Ray workers' ``PYTHONPATH`` (every node of a local pool sees it);
on a pool without a shared file system the workers get Ray's own ``runtime_env={"pip": ...}``.

Runs in the job's payload process, on the job's head node.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

COMPLETE = ".shoal-complete"
PIP_TIMEOUT_S = 1800


class RequirementsError(RuntimeError):
    """pip could not install the job's ``pip_requirements``; the message holds pip's output."""


def cache_root() -> Path:
    return Path(os.environ.get("SHOAL_PIP_CACHE") or Path(tempfile.gettempdir()) / "shoal-pip-cache")


def requirements_key(requirements: list[str]) -> str:
    text = "\n".join(sorted(r.strip() for r in requirements)) + f"\npython {sys.version_info[:2]}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def requirements_folder(requirements: list[str]) -> tuple[Path, bool]:
    """The folder holding ``requirements`` (installed now if needed); and whether it was cached."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / requirements_key(requirements)
    with FileLock(str(folder) + ".lock", timeout=PIP_TIMEOUT_S):
        if (folder / COMPLETE).exists():
            return folder, True
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=root))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(staging), *requirements],
                capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
            )  # fmt: skip
            if done.returncode != 0:
                raise RequirementsError(
                    f"installing pip_requirements {requirements} failed (pip exited {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}"
                )
            (staging / COMPLETE).write_text("\n".join(requirements) + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder, False
