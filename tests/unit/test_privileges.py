"""Dropping privileges: whether another user can execute a program, by its mode bits."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.privileges import unreachable

OTHER = (65534, 65534)  # a uid and gid that own nothing here (nobody's)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory every user can search (pytest's own sits in a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="harness-privileges-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _program(tmp_path: Path, dir_mode: int, file_mode: int) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    program = directory / "prog"
    program.write_text("#!/bin/sh\n")
    program.chmod(file_mode)
    directory.chmod(dir_mode)
    return program


def test_an_open_program_is_reachable(tmp_path: Path) -> None:
    assert unreachable(str(_program(tmp_path, 0o755, 0o755)), *OTHER) is None
    assert unreachable("sh", *OTHER) is None  # looked up on PATH


def test_a_closed_directory_on_the_way_is_named(tmp_path: Path) -> None:
    program = _program(tmp_path, 0o700, 0o755)
    try:
        assert unreachable(str(program), *OTHER) == (
            f"{program.parent} is closed to it (on the way to {program})"
        )
    finally:
        program.parent.chmod(0o755)


def test_a_program_without_the_execute_bit_for_others(tmp_path: Path) -> None:
    program = _program(tmp_path, 0o755, 0o750)
    assert unreachable(str(program), *OTHER) is not None
    # its owner may run it
    assert unreachable(str(program), os.getuid(), os.getgid()) is None


def test_a_symlink_into_a_closed_directory_is_judged_by_its_target(tmp_path: Path) -> None:
    program = _program(tmp_path, 0o700, 0o755)
    link = tmp_path / "venv-python"
    link.symlink_to(program)
    try:
        assert "closed to it" in (unreachable(str(link), *OTHER) or "")
    finally:
        program.parent.chmod(0o755)


def test_a_missing_program() -> None:
    assert unreachable("no-such-program-here", *OTHER) == "no-such-program-here is not on PATH"
