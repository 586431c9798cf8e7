"""Upstream compatibility: every name and signature of `macrostrat.package_tools` 2.0.1.

The table is generated from the upstream API reference
(`api-appframe-auth-utils-tools.md`, section 5): one row per public name, with
its upstream import path and, for callables, upstream's parameters. Each name
must import from that path, and each signature must accept upstream's
positional and keyword forms (checked with `inspect.Signature.bind`). Real
calls in upstream's forms follow, against throwaway workspaces and the
loopback index of `conftest.py`.

Parameter specs: names in order; `name=` is optional, `*args`/`**kwargs` are
variadic, names after `*` or `*args` are keyword-only. `None` marks a
non-callable (a constant, the Typer app).
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

P = "macrostrat.package_tools"

UPSTREAM: list[tuple[str, str, str | None]] = [
    (P, "mono", None),
    (f"{P}.dependencies", "load_pkg_config", "path"),
    (f"{P}.dependencies", "get_local_dependencies", "cfg"),
    (f"{P}.install", "install_packages", "path=, omit=, skip_root=, virtualenvs="),
    (f"{P}.publish", "publish_packages", "path=, omit="),
    (f"{P}.publish", "prepare_module", "fp"),
    (f"{P}.publish", "publish_module", "fp"),
    (f"{P}.publish", "package_exists", "pkg"),
    (f"{P}.publish", "modules_to_publish", "modules, omit="),
    (f"{P}.publish", "module_version_string", "fp, long="),
    (f"{P}.publish", "publish_skip_classifier", None),
]


# -- the table checks: the `upstream_api` fixture of the root conftest.py ------

CALLABLE_ROWS = [row for row in UPSTREAM if row[2] is not None]


@pytest.mark.parametrize(("module", "qualname", "spec"), UPSTREAM)
def test_name_imports_from_its_upstream_path(upstream_api, module, qualname, spec):
    upstream_api.check_import(module, qualname, spec)


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("install", ["--path", "--omit", "--skip-root", "--virtualenvs"]),
        ("publish", ["--path", "--omit"]),
    ],
)
def test_mono_keeps_upstreams_options(command, options):
    from macrostrat.package_tools import mono

    result = CliRunner().invoke(mono, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for option in options:
        assert option in result.output


@pytest.mark.parametrize(("module", "qualname", "spec"), CALLABLE_ROWS)
@pytest.mark.parametrize("form", ["positional", "keyword", "required"])
def test_signature_accepts_upstream_calls(upstream_api, module, qualname, spec, form):
    upstream_api.check_call_form(module, qualname, spec, form)


# -- real calls in upstream's forms -------------------------------------------


def test_load_pkg_config_and_local_dependencies_of_a_uv_workspace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    from macrostrat.package_tools.dependencies import (
        get_local_dependencies,
        load_pkg_config,
    )

    cfg = load_pkg_config(path=workspace)
    assert isinstance(cfg, dict)
    assert cfg["project"]["name"] == "ws-root"
    assert get_local_dependencies(cfg=cfg) == {
        "acme.core": {"path": "packages/core", "workspace": True},
        "acme.db": {"path": "packages/db", "workspace": True},
        "acme.app": {"path": "packages/app", "workspace": True},
    }
    # a plain dict (not from load_pkg_config) needs the root for members
    plain = dict(cfg)
    assert get_local_dependencies(plain) == {}
    assert list(get_local_dependencies(plain, root=workspace)) == [
        "acme.core",
        "acme.db",
        "acme.app",
    ]
    monkeypatch.chdir(workspace)
    assert load_pkg_config("packages/core")["project"]["version"] == "1.0.0"


def test_local_dependencies_of_mono_2_layout_skip_non_path_sources(tmp_path: Path):
    from macrostrat.package_tools.dependencies import (
        get_local_dependencies,
        load_pkg_config,
    )

    (tmp_path / "pyproject.toml").write_text(
        dedent(
            """\
            [project]
            name = "root"
            version = "0"

            [tool.uv.sources]
            one = { path = "one", editable = true }
            remote = { git = "https://example.invalid/remote.git" }
            two = { path = "two" }
            """
        )
    )
    assert get_local_dependencies(load_pkg_config(tmp_path)) == {
        "one": {"path": "one", "editable": True},
        "two": {"path": "two"},
    }
    # no [tool.uv.sources]: upstream raised KeyError('sources')
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    assert get_local_dependencies(load_pkg_config(tmp_path)) == {}


def test_module_version_string_and_skip_classifier(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    from macrostrat.package_tools.publish import (
        module_version_string,
        publish_skip_classifier,
    )

    assert publish_skip_classifier == "Private :: Do Not Upload"
    db = workspace / "packages" / "db"
    assert module_version_string(fp=db) == "acme.db-v2.1.0"
    assert module_version_string(db, long=True) == "acme.db version 2.1.0"
    # a relative path (upstream crashed on one after uploading)
    monkeypatch.chdir(workspace)
    assert module_version_string(Path("packages/db"), True) == "acme.db version 2.1.0"


def test_package_exists_and_modules_to_publish(workspaces, make_pyproject, index, git):
    from macrostrat.package_tools.dependencies import load_pkg_config
    from macrostrat.package_tools.publish import modules_to_publish, package_exists

    root = workspaces.make()
    packages = root / "packages"
    private = packages / "private"
    bare = packages / "bare"
    for directory, classifiers in (
        (private, [publish_classifier()]),
        (bare, []),
    ):
        (directory / "acme").mkdir(parents=True)
        (directory / "pyproject.toml").write_text(
            make_pyproject(f"acme.{directory.name}", "1.0.0", [], classifiers)
        )
    assert package_exists(pkg=load_pkg_config(private)) is True
    assert package_exists(load_pkg_config(bare)) is True
    assert index.queries == []  # neither was looked up
    core = load_pkg_config(packages / "core")
    assert package_exists(core, check_url=index.check_url) is False
    index.files["acme-core"] = {
        "acme_core-1.0.0-py3-none-any.whl": b"x",
        "acme_core-1.0.0.tar.gz": b"x",
    }
    assert package_exists(core, check_url=index.check_url) is True
    modules = [packages / name for name in ("core", "db", "app", "private", "bare")]
    chosen = modules_to_publish(
        modules=modules, omit=["acme.db"], check_url=index.check_url
    )
    assert chosen == [packages / "app"]
    # positional form; a directory name works in omit too
    assert modules_to_publish(modules, ["app"], check_url=index.check_url) == [
        packages / "db"
    ]


def publish_classifier() -> str:
    from macrostrat.package_tools.publish import publish_skip_classifier

    return publish_skip_classifier


def test_prepare_and_publish_module(workspace: Path, index, git):
    from macrostrat.package_tools import PublishError
    from macrostrat.package_tools.publish import prepare_module, publish_module

    core = workspace / "packages" / "core"
    commands = prepare_module(fp=core)
    assert [c.argv[:2] for c in commands] == [("uv", "lock"), ("uv", "build")]
    built = {p.name for p in (core / "dist").iterdir()}
    assert {"acme_core-1.0.0-py3-none-any.whl", "acme_core-1.0.0.tar.gz"} <= built
    stray = workspace / "stray.txt"
    stray.write_text("not committed\n")
    with pytest.raises(PublishError, match="untracked"):
        publish_module(core, check_url=index.check_url, publish_url=index.publish_url)
    assert index.uploads == []
    stray.unlink()
    tag = publish_module(
        fp=core, check_url=index.check_url, publish_url=index.publish_url
    )
    assert tag == "acme.core-v1.0.0"
    assert sorted(index.uploads) == [
        "acme_core-1.0.0-py3-none-any.whl",
        "acme_core-1.0.0.tar.gz",
    ]
    assert git(workspace, "tag", "--list").split() == ["acme.core-v1.0.0"]
    message = git(workspace, "tag", "-n1", "acme.core-v1.0.0")
    assert "acme.core version 1.0.0" in message
    # again: the files are on the index already and the tag points at HEAD
    publish_module(core, check_url=index.check_url, publish_url=index.publish_url)
    assert len(index.uploads) == 2
    with pytest.raises(PublishError, match="no wheel"):
        publish_module(workspace / "packages" / "db", check_url=index.check_url)


def test_install_packages_in_upstream_forms(workspace: Path):
    from macrostrat.package_tools.install import install_packages

    with pytest.warns(DeprecationWarning, match="path="):
        assert install_packages(path=workspace, omit=[], skip_root=True) == []
    assert install_packages(str(workspace), ["acme.app"], True, False) == []
    ran = install_packages(workspace, ["acme.app"])
    assert [c.argv for c in ran] == [
        ("uv", "lock"),
        ("uv", "sync", "--all-packages", "--no-install-package", "acme.app"),
    ]
    assert {c.cwd for c in ran} == {workspace.resolve()}
    with pytest.raises(TypeError, match="both"):
        install_packages(workspace, path=workspace)


def test_publish_packages_in_upstream_forms(
    workspace: Path, index, git, monkeypatch: pytest.MonkeyPatch
):
    from macrostrat.package_tools import load_workspace, plan_publish
    from macrostrat.package_tools.publish import publish_packages

    monkeypatch.setenv("UV_PUBLISH_URL", index.publish_url)
    monkeypatch.setenv("UV_PUBLISH_CHECK_URL", index.check_url)
    with pytest.warns(DeprecationWarning, match="path="):
        result = publish_packages(path=workspace, omit=["acme.app"])
    assert [p.name for p in result.published] == ["acme.core", "acme.db"]
    result = publish_packages(str(workspace), [])
    assert [p.name for p in result.published] == ["acme.app"]
    assert git(workspace, "tag", "--list").split() == [
        "acme.app-v0.3.0",
        "acme.core-v1.0.0",
        "acme.db-v2.1.0",
    ]
    plan = plan_publish(
        load_workspace(workspace), out_dir=workspace / "dist", check_url=index.check_url
    )
    with pytest.raises(TypeError, match="plan_publish"):
        publish_packages(plan, ["acme.app"])
