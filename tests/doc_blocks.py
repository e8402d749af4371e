"""The code blocks of README.md and docs/*.md, as the test suite runs them (tests/test_docs.py).

Blocks are read with markdown-it-py (rich's own markdown parser). A ``python`` block runs; so does
a ``bash`` block, line by line, when its commands are ``shoal ...`` or ``python ...``. A block
the suite cannot run is marked in the page itself, visibly: the paragraph right above it starts
with ``Not run by the tests:`` and says why. A page's blocks run in the order a reader meets
them, in one interpreter, so a block may use what an earlier block made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from conftest import REPO_ROOT

NOT_RUN = re.compile(r"^\*?Not run by the tests: (?P<why>.+)", re.DOTALL)
RUN_LANGUAGES = {"python", "bash"}


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, code, first line (1-based) and, when the page
    says it is not run, why."""

    page: str
    language: str
    code: str
    line: int
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[str]:
    """README.md and every page of docs/, as paths relative to the repository."""
    found = [
        "README.md",
        *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md")),
    ]
    return found


def blocks(page: str) -> list[Block]:
    """The page's ``python`` and ``bash`` blocks in reading order."""
    tokens = MarkdownIt().parse((REPO_ROOT / page).read_text())
    found = []
    for index, token in enumerate(tokens):
        language = (token.info.split() or [""])[0] if token.type == "fence" else ""
        if language not in RUN_LANGUAGES:
            continue
        above = ""  # the paragraph right above the block, if any
        if index >= 2 and tokens[index - 1].type == "paragraph_close" and tokens[index - 2].type == "inline":
            above = tokens[index - 2].content.strip()
        marker = NOT_RUN.match(above)
        assert token.map is not None
        found.append(
            Block(
                page=page,
                language=language,
                code=token.content,
                line=token.map[0] + 1,
                not_run=" ".join(marker.group("why").split()).rstrip("*") if marker else None,
            )
        )
    return found


def cli_lines(block: Block) -> list[str]:
    """The commands of a ``bash`` block, comments and blank lines left out."""
    lines = []
    for raw in block.code.splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def runner_source(page_blocks: list[Block], setup: str, repo: Path) -> str:
    """A script that runs ``setup`` and then each block in one namespace, saying which block
    failed (page and line) before re-raising."""
    parts = [
        "import os, shlex, subprocess, sys, traceback",
        "namespace = {'__name__': '__main__'}",
        "def run_block(where, code):",
        "    try:",
        "        exec(compile(code, where, 'exec'), namespace)",
        "    except BaseException:",
        "        print(f'DOC BLOCK FAILED: {where}', file=sys.stderr, flush=True)",
        "        raise",
        "def run_command(where, line):",
        "    argv = shlex.split(line)",
        "    if argv[0] == 'shoal':",
        "        argv = [os.path.join(os.path.dirname(sys.executable), 'shoal'), *argv[1:]]",
        "    elif argv[0] == 'python':",
        "        argv = [sys.executable, *argv[1:]]",
        f"    cwd = {str(repo)!r} if argv[0] == 'bash' else None  # the repository's own scripts",
        "    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=cwd)",
        "    if done.returncode != 0:",
        "        failed = f'DOC COMMAND FAILED: {where}: {line}'",
        "        print(failed, done.stdout, done.stderr, sep='\\n', file=sys.stderr)",
        "        raise SystemExit(1)",
        "    print(done.stdout, end='', flush=True)",
        f"run_block('setup of {page_blocks[0].page if page_blocks else ''}', {setup!r})",
    ]
    for block in page_blocks:
        if block.not_run:
            continue
        if block.language == "python":
            parts.append(f"run_block({block.where!r}, {block.code!r})")
        else:
            for line in cli_lines(block):
                parts.append(f"run_command({block.where!r}, {line!r})")
    return "\n".join(parts) + "\nprint('DOC PAGE DONE', flush=True)\n"
