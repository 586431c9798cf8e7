from __future__ import annotations

import os
from pathlib import Path

import pytest

from macrostrat.utils import override_environment


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch):
    for key in ("MU_A", "MU_B", "MU_C"):
        monkeypatch.delenv(key, raising=False)


def test_sets_and_restores(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MU_A", "old")
    with override_environment(MU_A="new", MU_B="added"):
        assert os.environ["MU_A"] == "new"
        assert os.environ["MU_B"] == "added"
    assert os.environ["MU_A"] == "old"
    assert "MU_B" not in os.environ


def test_restores_after_an_exception(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MU_A", "old")
    with pytest.raises(RuntimeError), override_environment(MU_A="new", MU_B="x"):
        raise RuntimeError
    assert os.environ["MU_A"] == "old"
    assert "MU_B" not in os.environ


def test_keeps_other_changes_made_inside_the_block():
    with override_environment(MU_A="x"):
        os.environ["MU_C"] = "made inside"
    assert os.environ["MU_C"] == "made inside"
    assert "MU_A" not in os.environ


def test_none_unsets_and_restores(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MU_A", "old")
    with override_environment(MU_A=None, MU_B=None):
        assert "MU_A" not in os.environ
        assert "MU_B" not in os.environ
    assert os.environ["MU_A"] == "old"
    assert "MU_B" not in os.environ


def test_restores_a_key_changed_inside_the_block(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MU_A", "old")
    with override_environment(MU_A="new"):
        os.environ["MU_A"] = "changed again"
    assert os.environ["MU_A"] == "old"


def test_accepts_path_like_values(tmp_path: Path):
    with override_environment(MU_A=tmp_path):
        assert os.environ["MU_A"] == str(tmp_path)
    assert "MU_A" not in os.environ


@pytest.mark.parametrize("bad", [1, 2.5, b"bytes", ["list"], True])
def test_invalid_value_raises_before_changing_anything(
    monkeypatch: pytest.MonkeyPatch, bad
):
    monkeypatch.setenv("MU_A", "old")
    with (
        pytest.raises(TypeError, match="MU_B"),
        override_environment(MU_A="new", MU_B=bad),
    ):  # type: ignore[arg-type]
        pytest.fail("the block must not run")
    assert os.environ["MU_A"] == "old"
    assert "MU_B" not in os.environ


def test_rolls_back_when_setting_a_variable_fails(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MU_A", "old")
    with pytest.raises(ValueError), override_environment(MU_A="new", MU_B="nul\0"):
        pytest.fail("the block must not run")
    assert os.environ["MU_A"] == "old"
    assert "MU_B" not in os.environ
