"""`mono status --check` and `mono publish` against the released versions on an index.

Everything runs against the loopback index of `conftest.py` (its JSON API is
`MONO_INDEX_URL` while the `index` fixture is in use); nothing asks PyPI.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from macrostrat.package_tools import (
    check_index,
    load_workspace,
    released_versions,
    workspace_status,
)
from macrostrat.package_tools.index import IndexFile
from macrostrat.package_tools.index_check import verify_files

REPO = Path(__file__).resolve().parents[2]

# Every version of our six distribution names on PyPI when issue 19 was
# filed (none of them ours: this repository has released nothing yet).
PYPI_SNAPSHOT = {
    "macrostrat.utils": "1.0.0 1.0.1 1.1.0 1.2.0 1.2.1 1.2.2 1.3.0 1.3.1 1.3.2 1.3.3",
    "macrostrat.database": (
        "1.0.0 1.0.1 1.0.2 2.0.0.dev1 2.0.0.dev2 2.0.0.dev3 2.0.0 2.0.1 2.1.0 "
        "2.1.1 2.1.2 2.1.3 3.0.0.dev1 3.0.0.dev2 3.0.0b1 3.0.0 3.1.0 3.1.1 3.1.2 "
        "3.2.0 3.2.1 3.3.0 3.3.1 3.3.2 3.3.3 3.4.0 3.4.1 3.5.0 3.5.1 3.5.2 3.5.3 "
        "3.5.4 4.0.0 4.0.1 4.0.2 4.1.0 4.1.1 4.2.0 4.2.1 4.3.0 4.3.1 4.4.0 4.4.1 "
        "4.5.0 4.6.0 4.6.1 4.7.0"
    ),
    "macrostrat.dinosaur": (
        "0.1.0 1.0.0 1.0.1 1.0.2 3.0.0.dev1 3.0.0 3.0.1 3.1.0 3.1.1 3.2.0 3.3.0 "
        "4.0.0 4.1.0 4.2.0 4.2.1 4.2.2"
    ),
    "macrostrat.app_frame": (
        "1.0.0 1.0.1 1.0.2 1.0.3 1.0.4 1.0.5 1.1.0 1.2.0 1.2.1 1.2.2 1.2.3 1.2.4 "
        "1.2.5 2.0.0 2.1.0 2.2.0 2.2.1 2.2.2 2.2.3 2.2.4 3.0.0 3.0.1 3.0.2 3.0.3 "
        "3.0.4 3.1.0"
    ),
    "macrostrat.auth_system": "0.1.0 1.0.0 1.0.1 1.0.2 1.0.3 1.1.0 1.1.1",
    "macrostrat.package_tools": "1.0.0 1.0.1 1.1.0 1.1.1 1.1.2 2.0.0 2.0.1 2.1.0 2.2.0",
}

# The six packages as they were before the version bump of issue 19:
# name, folder, version, dependencies (app_frame's `db` extra is added below).
PRE_BUMP = [
    ("macrostrat.utils", "utils", "1.4.0", []),
    ("macrostrat.database", "database", "4.6.0", ["macrostrat.utils>=1.4.0,<2"]),
    (
        "macrostrat.dinosaur",
        "dinosaur",
        "4.3.0",
        ["macrostrat.database>=4.6.0,<5", "macrostrat.utils>=1.4.0,<2"],
    ),
    ("macrostrat.app_frame", "app-frame", "3.2.0", ["macrostrat.utils>=1.4.0,<2"]),
    (
        "macrostrat.auth_system",
        "auth-system",
        "1.2.0",
        ["macrostrat.utils>=1.4.0,<2", "macrostrat.database>=4.6.0,<5"],
    ),
    (
        "macrostrat.package_tools",
        "package-tools",
        "2.1.0",
        ["macrostrat.utils>=1.4.0,<2"],
    ),
]


def load_snapshot(index) -> None:
    for name, versions in PYPI_SNAPSHOT.items():
        index.add_release(name, *versions.split())


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/pypi/"


def publish_args(workspace: Path | str, index, *extra: str) -> list[str]:
    return [
        "publish", "--path", str(workspace),
        "--publish-url", index.publish_url, "--check-url", index.check_url,
        "--timeout", "10", *extra,
    ]  # fmt: skip


def problems_of(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("problem(s):"))
    return [line.strip()[2:] for line in lines[start + 1 :] if line.startswith("  - ")]


# --- today's version numbers, with the real published versions -------------


def test_todays_version_numbers_fail_against_the_published_releases(
    workspaces, make_pyproject, git, index, cli
):
    root = workspaces.make(PRE_BUMP, lock=False, commit=False)
    # app_frame's `db` extra, and the `cli` extra of database it names
    (root / "packages/app-frame/pyproject.toml").write_text(
        make_pyproject(
            "macrostrat.app_frame",
            "3.2.0",
            ["macrostrat.utils>=1.4.0,<2"],
            extra='\n[project.optional-dependencies]\ndb = ["macrostrat.database[cli]>=4.6.0,<5", "macrostrat.dinosaur>=4.3.0,<5"]\n',
        )
    )
    (root / "packages/database/pyproject.toml").write_text(
        make_pyproject(
            "macrostrat.database",
            "4.6.0",
            ["macrostrat.utils>=1.4.0,<2"],
            extra="\n[project.optional-dependencies]\ncli = []\n",
        )
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    load_snapshot(index)

    result = cli("status", "--path", root, "--check")
    assert result.exit_code == 1, result.output
    url = index.json_url
    # the taken versions first, then by package in dependency order
    assert problems_of(result.output) == [
        f"macrostrat.database 4.6.0 already exists on {url} and was not released "
        "from here (no tag macrostrat.database-v4.6.0); choose a version above 4.7.0",
        f"macrostrat.package_tools 2.1.0 already exists on {url} and was not released "
        "from here (no tag macrostrat.package_tools-v2.1.0); choose a version above 2.2.0",
        f"macrostrat.database 4.6.0 is lower than 4.7.0, the newest version on {url}; "
        "choose a version above 4.7.0",
        f"macrostrat.package_tools 2.1.0 is lower than 2.2.0, the newest version on "
        f"{url}; choose a version above 2.2.0",
        f"macrostrat.auth_system: dependency 'macrostrat.database>=4.6.0,<5' is met by "
        f"macrostrat.database 4.6.1, 4.7.0 on {url}, which were not released from "
        "here; raise its floor above 4.7.0",
        f"macrostrat.dinosaur: dependency 'macrostrat.database>=4.6.0,<5' is met by "
        f"macrostrat.database 4.6.1, 4.7.0 on {url}, which were not released from "
        "here; raise its floor above 4.7.0",
        f"macrostrat.app_frame: dependency 'macrostrat.database[cli]>=4.6.0,<5' is met "
        f"by macrostrat.database 4.6.1, 4.7.0 on {url}, which were not released from "
        "here; raise its floor above 4.7.0",
    ]
    # the table shows the newest version on the index
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:7]}
    assert rows["macrostrat.database"][5] == "4.7.0"
    assert rows["macrostrat.utils"][5] == "1.3.3"


def test_the_checked_out_versions_pass_against_the_published_releases(index):
    load_snapshot(index)
    check = check_index(load_workspace(REPO), index_url=index.json_url)
    assert check.messages == []
    assert sorted(check.packages) == sorted(
        n.replace(".", "-").replace("_", "-") for n in PYPI_SNAPSHOT
    )


# --- each rule ----------------------------------------------------------------


def test_a_version_someone_else_released_fails_naming_the_package(
    workspace: Path, index, cli
):
    index.add_release("acme.db", "2.0.0", "2.1.0")
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    assert problems_of(result.output) == [
        f"acme.db 2.1.0 already exists on {index.json_url} and was not released from "
        "here (no tag acme.db-v2.1.0); choose a version above 2.1.0"
    ]
    assert f"Released versions from {index.json_url}" in result.output


def test_a_version_below_the_newest_published_fails(workspace: Path, index, cli):
    index.add_release("acme.app", "0.2.0", "1.0.0rc1")
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    assert problems_of(result.output) == [
        f"acme.app 0.3.0 is lower than 1.0.0rc1, the newest version on "
        f"{index.json_url}; choose a version above 1.0.0rc1"
    ]


def test_a_floor_met_by_someone_elses_release_fails(workspace: Path, index, cli):
    index.add_release("acme.core", "0.9.0", "1.0.1", "1.2.0", "2.0.0")
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    problems = problems_of(result.output)
    assert problems[0].startswith("acme.core 1.0.0 is lower than 2.0.0")
    # acme.db's `acme.core>=1.0.0,<2`; 0.9.0 and 2.0.0 are outside it
    assert (
        f"acme.db: dependency 'acme.core>=1.0.0,<2' is met by acme.core 1.0.1, 1.2.0 "
        f"on {index.json_url}, which were not released from here; raise its floor "
        "above 1.2.0"
    ) in problems
    assert any(p.startswith("acme.app: dependency 'acme.core") for p in problems)


def test_tagged_releases_are_ours(workspaces, index, cli):
    root = workspaces.make(tag=True)
    index.add_release("acme.core", "0.9.0", "1.0.0")
    index.add_release("acme.db", "2.1.0")
    result = cli("status", "--path", root, "--check")
    assert result.exit_code == 0, result.output
    assert "No problems found." in result.output


def test_nothing_released_passes(workspace: Path, index, cli):
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 0, result.output
    assert sorted(index.json_queries) == ["acme-app", "acme-core", "acme-db"]
    assert result.output.splitlines()[1].split()[5] == "-"


def test_an_unreachable_index_fails_with_a_clear_message(workspace: Path, index, cli):
    url = closed_port_url()
    result = cli("status", "--path", workspace, "--check", "--index-url", url)
    assert result.exit_code == 1
    [problem] = problems_of(result.output)
    assert problem.startswith(
        f"could not ask the package index: could not reach {url}acme-core/json"
    )
    assert problem.endswith("or skip this check with --no-index-check)")


def test_an_index_error_is_never_read_as_nothing_released(workspace: Path, index, cli):
    index.fail_queries = True
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    [problem] = problems_of(result.output)
    assert "answered HTTP 503" in problem


def test_the_online_check_can_be_skipped(
    workspace: Path, index, cli, monkeypatch: pytest.MonkeyPatch
):
    index.add_release("acme.db", "2.1.0")
    result = cli("status", "--path", workspace, "--check", "--no-index-check")
    assert result.exit_code == 0, result.output
    assert "The package index was not asked (--no-index-check)." in result.output
    monkeypatch.setenv("MONO_NO_INDEX_CHECK", "1")
    assert cli("status", "--path", workspace, "--check").exit_code == 0
    assert index.json_queries == []


def test_workspace_status_asks_no_index_unless_given_one(workspace: Path, index):
    index.add_release("acme.db", "2.1.0")
    assert workspace_status(load_workspace(workspace), check_locks=False).ok
    assert index.json_queries == []
    report = workspace_status(
        load_workspace(workspace), check_locks=False, index_url=index.json_url
    )
    assert not report.ok
    assert report.index is not None
    assert [p.name for p in report.index.taken] == ["acme.db"]


def test_released_versions_reads_the_json_and_the_simple_api(index):
    index.add_release("acme.core", "1.0.0", "1.1.0b1")
    index.files["acme-core"]["acme_core-not-a-version.zip"] = b"x"
    expected = {"1.0.0", "1.1.0b1"}
    from_json = released_versions(index.json_url, "Acme_Core")
    assert {str(v) for v in from_json} == expected
    index.json = True  # the simple API's JSON form
    from_simple = released_versions(index.check_url, "acme.core", simple=True)
    assert {str(v) for v in from_simple} == expected
    index.json = False  # and its HTML form
    from_html = released_versions(index.check_url, "acme.core", simple=True)
    assert from_html == from_simple == from_json
    assert released_versions(index.json_url, "acme.unknown") == {}


def test_verify_files_compares_names_and_digests(tmp_path: Path):
    wheel = tmp_path / "acme_core-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"ours")
    ours = hashlib.sha256(b"ours").hexdigest()
    digest = hashlib.sha256(b"theirs").hexdigest()
    assert verify_files([IndexFile(wheel.name, ours)], [wheel]) == []
    assert verify_files([IndexFile(wheel.name, digest)], [wheel]) == [
        f"{wheel.name} differs from the one built here"
    ]
    assert verify_files([IndexFile("acme_core-1.0.0.tar.gz", ours)], [wheel]) == [
        "acme_core-1.0.0.tar.gz was not built here"
    ]
    assert verify_files([IndexFile(wheel.name, None)], [wheel]) == [
        f"{wheel.name}: the index gives no SHA-256 to compare"
    ]


# --- mono publish ---------------------------------------------------------------


def test_publish_refuses_a_version_someone_else_released_before_uploading(
    workspace: Path, index, git, cli
):
    index.add_release("acme.db", "2.1.0")  # both files, not ours
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert (
        "error: versions already on the index are not ours; nothing was uploaded"
        in (result.output)
    )
    assert "acme.db 2.1.0 already exists on" in result.output
    assert "acme_db-2.1.0-py3-none-any.whl differs from the one built here" in (
        result.output
    )
    assert index.uploads == []  # not even acme.core, which comes first
    assert git(workspace, "tag", "--list") == ""


def test_publish_refuses_a_version_below_the_newest_before_uploading(
    workspace: Path, index, cli
):
    index.add_release("acme.app", "1.0.0")
    result = cli(*publish_args(workspace, index, "--dry-run"))
    assert result.exit_code == 1
    assert "publish would refuse to start:" in result.output
    assert "acme.app 0.3.0 is lower than 1.0.0" in result.output
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 1
    assert "error: not ready to publish" in result.output
    assert index.uploads == []


def test_publish_finishes_an_untagged_upload_of_its_own_files(
    workspace: Path, index, git, cli, tmp_path: Path
):
    # an earlier run uploaded acme.core's wheel, then stopped before its tag
    built = tmp_path / "built"
    assert cli("build", "--path", workspace, "--out-dir", built).exit_code == 0
    wheel = built / "acme_core-1.0.0-py3-none-any.whl"
    index.files["acme-core"] = {wheel.name: wheel.read_bytes()}
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    assert "without the tag acme.core-v1.0.0" in result.output
    assert index.uploads[0] == "acme_core-1.0.0.tar.gz"  # only the missing file
    assert "acme.core-v1.0.0" in git(workspace, "tag", "--list").split()


def test_publish_asks_the_simple_index_when_given_only_check_url(
    workspace: Path, index, cli, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("MONO_INDEX_URL")
    index.add_release("acme.app", "1.0.0")
    result = cli(*publish_args(workspace, index, "--dry-run"))
    assert result.exit_code == 1
    assert (
        f"acme.app 0.3.0 is lower than 1.0.0, the newest version on {index.check_url}"
        in (result.output)
    )
    assert index.json_queries == []


def test_publish_can_skip_the_release_check(workspace: Path, index, cli):
    index.add_release("acme.app", "0.1.0", "1.0.0")
    result = cli(*publish_args(workspace, index, "--dry-run", "--no-index-check"))
    assert result.exit_code == 0, result.output
    assert index.json_queries == []


# --- --version -------------------------------------------------------------------


def test_mono_version(cli):
    from importlib.metadata import version

    result = cli("--version")
    assert result.exit_code == 0
    assert result.output == f"mono {version('macrostrat.package_tools')}\n"


def test_publish_tags_a_complete_untagged_upload_of_its_own_files(
    workspace: Path, index, git, cli, tmp_path: Path
):
    # an earlier run uploaded acme.core completely, then stopped before its tag
    built = tmp_path / "built"
    assert cli("build", "--path", workspace, "--out-dir", built).exit_code == 0
    index.files["acme-core"] = {
        f.name: f.read_bytes() for f in built.glob("acme_core-1.0.0*")
    }
    result = cli(*publish_args(workspace, index))
    assert result.exit_code == 0, result.output
    assert not any(u.startswith("acme_core") for u in index.uploads)
    assert "acme.core-v1.0.0" in git(workspace, "tag", "--list").split()
    assert cli("status", "--path", workspace, "--check").exit_code == 0


def test_a_json_page_without_releases_is_an_error():
    import http.server
    import threading

    from macrostrat.package_tools import IndexQueryError

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"info": {"name": "acme-core"}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/pypi/"
        with pytest.raises(IndexQueryError, match="not a JSON project page"):
            released_versions(url, "acme.core", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
