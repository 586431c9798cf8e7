from __future__ import annotations

import os
from pathlib import Path

import pytest

from macrostrat.utils import relative_path, working_directory


def test_relative_path_from_a_file(tmp_path: Path):
    module = tmp_path / "module.py"
    module.write_text("")
    assert relative_path(module, "data", "x.sql") == tmp_path / "data" / "x.sql"
    assert relative_path(str(module), "data") == tmp_path / "data"


def test_relative_path_from_a_directory(tmp_path: Path):
    assert relative_path(tmp_path, "a") == tmp_path / "a"
    assert relative_path(str(tmp_path)) == tmp_path


def test_relative_path_treats_a_missing_path_as_a_file(tmp_path: Path):
    assert relative_path(tmp_path / "missing", "a") == tmp_path / "a"


def test_relative_path_returns_a_path_and_accepts_path_parts(tmp_path: Path):
    result = relative_path(str(tmp_path), Path("sub"), "file.txt")
    assert isinstance(result, Path)
    assert result == tmp_path / "sub" / "file.txt"


def test_relative_path_to_this_module():
    assert relative_path(__file__, "conftest.py").is_file()


@pytest.mark.parametrize("kind", [str, Path])
def test_working_directory_changes_and_restores(tmp_path: Path, kind):
    before = os.getcwd()
    with working_directory(kind(tmp_path)) as value:
        assert Path.cwd() == tmp_path.resolve()
        assert value is None
    assert os.getcwd() == before


def test_working_directory_restores_after_an_exception(tmp_path: Path):
    before = os.getcwd()
    with pytest.raises(RuntimeError, match="boom"), working_directory(tmp_path):
        raise RuntimeError("boom")
    assert os.getcwd() == before


def test_working_directory_nests(tmp_path: Path):
    inner = tmp_path / "inner"
    inner.mkdir()
    before = os.getcwd()
    with working_directory(tmp_path):
        with working_directory("inner"):
            assert Path.cwd() == inner.resolve()
        assert Path.cwd() == tmp_path.resolve()
    assert os.getcwd() == before


def test_working_directory_missing_directory_changes_nothing(tmp_path: Path):
    before = os.getcwd()
    with pytest.raises(FileNotFoundError), working_directory(tmp_path / "missing"):
        pass
    assert os.getcwd() == before
