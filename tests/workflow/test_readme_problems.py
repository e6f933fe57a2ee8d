"""The README's "Your own problem": each of its three problems, run as written (its files, then its commands, from a
working directory beside the shared data), ends with every evaluation done on a local Ray with 2 workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: A fenced block: its language and its text.
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def problems() -> dict[str, str]:
    """Each ``###`` part of the README's section "Your own problem", by its title."""
    text = README.read_text()
    section = text.split("## Your own problem", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### (.+)$", section, flags=re.M)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def files_and_commands(part: str) -> tuple[dict[str, str], list[str]]:
    """The files a part writes (a block whose first line is ``# NAME``) and the commands it types (``$ ...``)."""
    files, commands = {}, []
    for language, body in BLOCK.findall(part):
        first, _, rest = body.partition("\n")
        if language == "console":
            commands += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        elif first.startswith("# "):
            files[first[2:].strip()] = rest
    return files, commands


def test_the_readme_shows_three_problems_each_with_files_and_commands():
    found = {title: files_and_commands(part) for title, part in problems().items()}
    assert len(found) == 3
    assert all(files and any(c.startswith("nas search ") for c in commands) for files, commands in found.values())


@pytest.mark.parametrize("title", list(problems()))
def test_each_problem_runs_as_the_readme_writes_it(title, data_dir, tmp_path):
    files, commands = files_and_commands(problems()[title])
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("../shared/data", str(data_dir)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        done = subprocess.run(
            command.replace("../shared/data", str(data_dir)),
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        if command.startswith("nas search "):
            assert re.search(r"\(100 ok, 0 failed, 0 pruned\)", done.stdout), done.stdout[-2000:]
