"""The built wheel and sdist hold only `macrostrat/app_frame` (upstream leaked `test_app`)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("requires the uv executable to build the package")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", str(PACKAGE_DIR), "--out-dir", str(out), "--offline", "--quiet"],
        check=True,
        timeout=300,
    )
    return {
        "wheel": next(out.glob("*.whl")),
        "sdist": next(out.glob("*.tar.gz")),
    }


def test_wheel_holds_only_the_package(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    code = [n for n in names if ".dist-info/" not in n]
    assert code, names
    for name in code:
        assert name in ("macrostrat/", "macrostrat/app_frame/") or name.startswith(
            "macrostrat/app_frame/"
        ), name
    assert "macrostrat/__init__.py" not in names  # a namespace package
    assert "macrostrat/app_frame/py.typed" in names
    assert not any("test" in n.lower() for n in code), code
    assert not any(n.endswith(".pyc") for n in names)
    # No console scripts (upstream shipped `test-app`).
    assert not any(n.endswith("entry_points.txt") for n in names)


def test_sdist_holds_only_the_package_and_metadata(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = sdist.getnames()
    root = names[0].split("/")[0]
    allowed_files = {"PKG-INFO", "pyproject.toml", "pyproject.toml.orig", "README.md"}
    for name in names:
        relative = name[len(root) + 1 :] if name != root else ""
        assert (
            relative in allowed_files
            or relative in ("", "macrostrat")
            or relative.startswith("macrostrat/app_frame")
        ), name
    assert not any("test_app" in n or "/tests/" in n for n in names)
