"""`mono publish` against a loopback index: order, skipping, tags, failures, re-runs."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from packaging.version import Version

from macrostrat.package_tools import (
    PRIVATE_CLASSIFIER,
    Action,
    IndexQueryError,
    load_workspace,
    plan_publish,
    published_files,
)


def publish_args(workspace: Path | str, index, *extra: str) -> list[str]:
    return [
        "publish", "--path", str(workspace),
        "--publish-url", index.publish_url, "--check-url", index.check_url,
        "--timeout", "10", *extra,
    ]  # fmt: skip


def tags(git, root: Path) -> list[str]:
    return git(root, "tag", "--list").split()


def test_publish_uploads_in_dependency_order_then_tags(
    workspace: Path, index, git, cli
):
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    # dependencies first (within a package, uv picks the order of the files)
    assert [u.split("-")[0] for u in index.uploads] == [
        *["acme_core"] * 2,
        *["acme_db"] * 2,
        *["acme_app"] * 2,
    ]
    assert sorted(index.uploads) == [
        "acme_app-0.3.0-py3-none-any.whl",
        "acme_app-0.3.0.tar.gz",
        "acme_core-1.0.0-py3-none-any.whl",
        "acme_core-1.0.0.tar.gz",
        "acme_db-2.1.0-py3-none-any.whl",
        "acme_db-2.1.0.tar.gz",
    ]
    assert set(index.auth) == {"Basic dGVzdGVyOnNlY3JldA=="}  # tester:secret
    assert tags(git, workspace) == [
        "acme.app-v0.3.0",
        "acme.core-v1.0.0",
        "acme.db-v2.1.0",
    ]
    head = git(workspace, "rev-parse", "HEAD").strip()
    assert git(workspace, "rev-parse", "acme.db-v2.1.0^{commit}").strip() == head
    assert git(workspace, "tag", "-n1", "--list", "acme.db-v2.1.0").split(None, 1)[
        1
    ].strip() == ("acme.db version 2.1.0")
    assert "Tags were not pushed" in result.output
    assert (
        git(workspace, "status", "--porcelain") == ""
    )  # nothing written, nothing committed


def test_a_second_run_skips_what_is_already_on_the_index(workspace: Path, index, cli):
    assert cli(*publish_args(workspace, index)).exit_code == 0
    uploads = list(index.uploads)
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    assert index.uploads == uploads
    assert "Nothing to publish: every package is on the index already" in result.output
    assert result.output.count("already on the index") == 3


def test_a_failed_upload_stops_and_a_rerun_finishes_the_job(
    workspace: Path, index, git, cli
):
    index.reject_uploads_of = {"acme-db"}
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert "error: `uv publish --publish-url" in result.output
    assert "failed with exit status" in result.output
    # core went up and was tagged; db failed and was not tagged; app was never tried
    assert [u.split("-")[0] for u in index.uploads] == ["acme_core", "acme_core"]
    assert tags(git, workspace) == ["acme.core-v1.0.0"]

    index.reject_uploads_of = set()
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    assert "acme.core  1.0.0    published" in result.output
    assert tags(git, workspace) == [
        "acme.app-v0.3.0",
        "acme.core-v1.0.0",
        "acme.db-v2.1.0",
    ]
    assert sorted(index.files) == ["acme-app", "acme-core", "acme-db"]


def test_a_partly_uploaded_version_gets_its_missing_file(workspace: Path, index, cli):
    assert cli(*publish_args(workspace, index)).exit_code == 0
    del index.files["acme-db"]["acme_db-2.1.0-py3-none-any.whl"]
    index.uploads.clear()
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    assert "partly uploaded (acme_db-2.1.0.tar.gz)" in result.output
    assert index.uploads == ["acme_db-2.1.0-py3-none-any.whl"]


def test_push_tags_pushes_only_the_release_tags(
    workspace: Path, index, git, bare_remote, cli
):
    remote = bare_remote(workspace)
    git(workspace, "tag", "unrelated-local-tag")
    assert cli(*publish_args(workspace, index)).exit_code == 0
    assert git(remote, "tag", "--list") == ""  # not pushed unless asked

    # a new version of one package, published with --push-tags
    pyproject = workspace / "packages/app/pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "0.3.0"', 'version = "0.3.1"')
    )
    git(workspace, "commit", "-qam", "app 0.3.1")
    result = cli(*publish_args(workspace, index, "--push-tags"))
    assert result.exit_code == 0, result.output
    assert git(remote, "tag", "--list").split() == ["acme.app-v0.3.1"]
    assert "Pushed acme.app-v0.3.1 to origin" in result.output


def test_tags_made_before_a_failure_are_still_pushed(
    workspace: Path, index, git, bare_remote, cli
):
    remote = bare_remote(workspace)
    index.reject_uploads_of = {"acme-app"}
    result = cli(*publish_args(workspace, index, "--push-tags"))
    assert result.exit_code == 1
    assert git(remote, "tag", "--list").split() == [
        "acme.core-v1.0.0",
        "acme.db-v2.1.0",
    ]


def test_dry_run_shows_every_command_and_does_nothing(workspace: Path, index, git, cli):
    result = cli(
        *publish_args(workspace, index, "--dry-run", "--push-tags", "-o", "/tmp/out")
    )
    assert result.exit_code == 0, result.output
    assert index.uploads == []
    assert tags(git, workspace) == []
    lines = [line.strip() for line in result.output.splitlines()]
    start = lines.index("Commands that would run:")
    commands = lines[start + 1 :]
    assert (
        commands[0]
        == f"uv build --no-sources --out-dir /tmp/out {workspace}/packages/core"
    )
    assert commands[3] == (
        f"uv publish --publish-url {index.publish_url} --check-url {index.check_url} "
        "/tmp/out/acme_core-1.0.0.tar.gz '/tmp/out/acme_core-1.0.0-*.whl'"
    )
    assert commands[4] == "git tag -a acme.core-v1.0.0 -m 'acme.core version 1.0.0'"
    assert commands[-1] == (
        "git push origin refs/tags/acme.core-v1.0.0 refs/tags/acme.db-v2.1.0 refs/tags/acme.app-v0.3.0"
    )
    assert len(commands) == 3 + 3 * 2 + 1


def test_private_packages_and_packages_without_classifiers_are_never_asked_about(
    workspaces, index, make_pyproject, git, cli
):
    root = workspaces.make(commit=False)
    (root / "packages/core/pyproject.toml").write_text(
        make_pyproject("acme.core", "1.0.0", [], classifiers=[PRIVATE_CLASSIFIER])
    )
    (root / "packages/db/pyproject.toml").write_text(
        make_pyproject("acme.db", "2.1.0", ["acme.core>=1.0.0,<2"], classifiers=[])
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    result = cli(*publish_args(root, index, "--dry-run"))
    assert result.exit_code == 0, result.output
    assert index.queries == [
        "acme-app"
    ]  # mono 2.0 asked PyPI about private packages too
    assert index.json_queries == ["acme-app"]  # nor does the release check
    assert "marked 'Private :: Do Not Upload'" in result.output
    assert "has no classifiers" in result.output
    assert (
        "warning: acme.app depends on acme.db, which is never published"
        in result.output
    )


def test_a_dirty_working_tree_is_refused_and_nothing_is_committed(
    workspace: Path, index, git, cli
):
    # mono 2.0 ignored untracked files, then committed them with `git add .`
    (workspace / "stray.txt").write_text("not for a release\n")
    head = git(workspace, "rev-parse", "HEAD")
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert "not ready to publish" in result.output
    assert "uncommitted changes or untracked files" in result.output
    assert index.uploads == []
    assert git(workspace, "rev-parse", "HEAD") == head
    assert git(workspace, "status", "--porcelain") == "?? stray.txt\n"
    # the dry run predicts the refusal
    assert cli(*publish_args(workspace, index, "--dry-run")).exit_code == 1


def test_a_release_tag_on_another_commit_is_refused(workspace: Path, index, git, cli):
    git(workspace, "tag", "-a", "acme.db-v2.1.0", "-m", "old")
    git(workspace, "commit", "-q", "--allow-empty", "-m", "later")
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert "tag acme.db-v2.1.0 already exists on another commit" in result.output
    assert index.uploads == []


def test_relative_path_works_through_to_the_tags(
    workspace: Path, index, git, monkeypatch, cli
):
    # mono 2.0 crashed computing the tag after the upload with a relative --path
    monkeypatch.chdir(workspace.parent)
    result = cli(*publish_args(workspace.name, index))
    assert result.exit_code == 0, result.output
    assert len(tags(git, workspace)) == 3


def test_a_bare_password_is_sent_as_a_token(workspace: Path, index, monkeypatch, cli):
    monkeypatch.delenv("UV_PUBLISH_USERNAME")
    monkeypatch.setenv("UV_PUBLISH_PASSWORD", "pypi-abc")
    assert (
        cli(
            *publish_args(workspace, index, "--omit", "acme.db", "--omit", "acme.app")
        ).exit_code
        == 0
    )
    assert set(index.auth) == {"Basic X190b2tlbl9fOnB5cGktYWJj"}  # __token__:pypi-abc


def test_index_errors_are_not_taken_for_unpublished(workspace: Path, index, cli):
    # mono 2.0 took any non-200 answer (even a 5xx) as "not published yet"
    index.fail_queries = True
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert "answered HTTP 503" in result.output
    assert index.uploads == []


def test_index_queries_time_out(tmp_path: Path):
    # a server that accepts connections and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/simple/"
        started = time.monotonic()
        with pytest.raises(IndexQueryError, match=r"did not answer within 0.3 s"):
            published_files(url, "acme.core", Version("1.0.0"), timeout=0.3)
        assert time.monotonic() - started < 5


def test_a_publish_url_needs_a_check_url(workspace: Path, cli):
    result = cli(
        "publish",
        "--path",
        workspace,
        "--publish-url",
        "http://127.0.0.1:9/legacy/",
        "--dry-run",
    )
    assert result.exit_code == 1
    assert "--publish-url needs --check-url" in result.output


def test_the_plan_passes_the_timeout_to_every_query(
    workspace: Path, index, monkeypatch
):
    ws = load_workspace(workspace)
    calls = []

    def fake(check_url, name, version, *, timeout):
        calls.append((name, timeout))
        return (
            frozenset({"acme_core-1.0.0.tar.gz", "acme_core-1.0.0-py3-none-any.whl"})
            if name == "acme.core"
            else frozenset()
        )

    monkeypatch.setattr("macrostrat.package_tools._decision.published_files", fake)
    plan = plan_publish(ws, out_dir="dist", check_url=index.check_url, timeout=4)
    assert [i.action for i in plan.items] == [
        Action.PUBLISHED,
        Action.PUBLISH,
        Action.PUBLISH,
    ]
    assert calls == [("acme.core", 4), ("acme.db", 4), ("acme.app", 4)]


@pytest.mark.parametrize("json", [False, True])
def test_published_files_reads_html_and_json_pages(index, json):
    index.json = json
    index.files["acme-core"] = {
        "acme_core-1.0.0.tar.gz": b"1",
        "acme_core-1.0.0-py3-none-any.whl": b"2",
        "acme_core-1.0.1.tar.gz": b"3",
        "acme_core-1.0.0.tar.gz.asc": b"signature",
    }
    assert published_files(index.check_url, "Acme.Core", Version("1.0.0")) == {
        "acme_core-1.0.0.tar.gz",
        "acme_core-1.0.0-py3-none-any.whl",
    }
    assert (
        published_files(index.check_url, "acme.other", Version("1.0.0")) == frozenset()
    )


def test_paths_with_quotes_and_spaces_are_passed_safely(workspaces, index, git, cli):
    # mono 2.0 built shell command lines by pasting strings into single quotes
    odd = type(workspaces)(workspaces.base / "it's a dir")
    odd.base.mkdir()
    root = odd.make([("acme.core", "core", "1.0.0", [])])
    result = cli(*publish_args(root, index))
    assert result.exit_code == 0, result.output
    assert tags(git, root) == ["acme.core-v1.0.0"]
    assert sorted(index.uploads) == [
        "acme_core-1.0.0-py3-none-any.whl",
        "acme_core-1.0.0.tar.gz",
    ]
