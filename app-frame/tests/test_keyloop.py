"""The `up` key loop under a real pseudo-terminal, with the recording stand-in `docker`.

The example app runs as a subprocess whose controlling terminal is a pty
(`os.openpty`); keys are typed into the pty's master side. These tests must
not depend on a Docker engine, so `docker` is the recording stand-in from
`fake_docker` (the real path is covered by `test_docker_engine.py`); its
`compose logs -f` runs until killed, like the real one, so a leftover process
would be visible.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

TIMEOUT = 30.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Terminal:
    """The example app running on a pty that the test types into."""

    # The session leader stays alive after the app exits, as an interactive
    # shell would, so that a log follower left behind is not killed by the
    # SIGHUP the kernel sends when a session leader exits.
    WRAPPER = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: None)\n"
        "code = subprocess.call(sys.argv[1:])\n"
        "sys.stdout.write(f'\\nAPP-EXITED:{code}\\n'); sys.stdout.flush()\n"
        "while True: time.sleep(1)\n"
    )

    def __init__(self, demo_dir: Path, cwd: Path, args: list[str]) -> None:
        self.master, self.slave = os.openpty()
        self.output = b""
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "xterm"}
        slave = self.slave

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.saved = termios.tcgetattr(self.slave)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                self.WRAPPER,
                sys.executable,
                str(demo_dir / "demo_app.py"),
                *args,
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            preexec_fn=controlling_terminal,
        )

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                pass

    def expect(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.text.count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not seen; output:\n{self.text}")
            self._read(0.1)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self) -> int:
        """Wait for the app to exit (its session leader lives on); its exit status."""
        self.expect("APP-EXITED:")
        found = re.search(r"APP-EXITED:(-?\d+)", self.text)
        while found is None:
            self._read(0.1)
            found = re.search(r"APP-EXITED:(-?\d+)", self.text)
        return int(found.group(1))

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.output.decode(errors="replace"))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal(demo_dir, tmp_path, fake_docker):
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        term = Terminal(demo_dir, tmp_path, list(args))
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()
    for entry in fake_docker.entries():  # never leave stray stand-ins behind
        if "logs" in entry["argv"] and _alive(entry["pid"]):
            os.kill(entry["pid"], signal.SIGKILL)


def _log_followers(fake_docker) -> list[int]:
    return [e["pid"] for e in fake_docker.entries() if e["argv"][1:3] == ["logs", "-f"]]


def _wait_for_followers(fake_docker, count: int) -> list[int]:
    deadline = time.monotonic() + TIMEOUT
    while len(pids := _log_followers(fake_docker)) < count:
        assert time.monotonic() < deadline, "the log follower did not start"
        time.sleep(0.05)
    return pids


def test_q_detaches_and_leaves_no_log_process(terminal, fake_docker):
    """Upstream left `docker compose logs -f` running as an orphan."""
    term = terminal("up")
    term.expect("Following container logs")
    (pid,) = _wait_for_followers(fake_docker, 1)
    term.expect("stand-in: following logs")
    assert _alive(pid)
    term.type(b"q")
    assert term.wait() == 0
    assert "Detaching from logs (Demo App will continue to run)" in term.text
    assert not _alive(pid)
    assert ["down", "--remove-orphans"] not in fake_docker.calls()
    assert termios.tcgetattr(term.slave) == term.saved


def test_x_stops_the_app(terminal, fake_docker):
    """Upstream's `x` hit a NameError (`mrg`) that was swallowed: the app kept running."""
    term = terminal("up")
    term.expect("Following container logs")
    (pid,) = _wait_for_followers(fake_docker, 1)
    term.type(b"x")
    assert term.wait() == 0
    assert fake_docker.calls()[-1] == ["down", "--remove-orphans"]
    assert "Stopping Demo App server" in term.text
    assert not _alive(pid)
    assert termios.tcgetattr(term.slave) == term.saved


def test_x_reports_a_failing_down(terminal, fake_docker):
    fake_docker.exit_codes(down=6)
    term = terminal("up")
    term.expect("Following container logs")
    _wait_for_followers(fake_docker, 1)
    term.type(b"X")
    assert term.wait() == 6


def test_r_restarts_and_follows_again(terminal, fake_docker):
    term = terminal("up")
    term.expect("Following container logs")
    (first,) = _wait_for_followers(fake_docker, 1)
    term.type(b"r")
    term.expect("Restarting Demo App server")
    first_again, second = _wait_for_followers(fake_docker, 2)
    assert first_again == first
    assert not _alive(first)
    calls = fake_docker.calls()
    assert calls.count(["start"]) == 2
    assert [
        "up",
        "--remove-orphans",
        "--no-start",
        "--no-build",
        "--force-recreate",
    ] in calls
    term.type(b"q")
    assert term.wait() == 0
    assert not _alive(second)


def test_ctrl_c_restores_the_terminal_and_stops_following(terminal, fake_docker):
    term = terminal("up")
    term.expect("Following container logs")
    (pid,) = _wait_for_followers(fake_docker, 1)
    during = termios.tcgetattr(term.slave)
    assert during[3] & termios.ICANON == 0  # single-key mode while following
    term.type(b"\x03")
    assert term.wait() == 0
    assert "Detaching from logs" in term.text
    assert termios.tcgetattr(term.slave) == term.saved
    assert not _alive(pid)


def test_other_keys_are_ignored(terminal, fake_docker):
    term = terminal("up")
    term.expect("Following container logs")
    (pid,) = _wait_for_followers(fake_docker, 1)
    term.type(b"abc")
    time.sleep(0.3)
    assert term.process.poll() is None
    assert _alive(pid)
    term.type(b"q")
    assert term.wait() == 0


def test_command_stream_reads_keys_at_once_and_restores_the_terminal():
    from macrostrat.app_frame import command_stream
    from macrostrat.app_frame.compose import Result

    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        stream = command_stream(0.05, fd=slave)
        os.write(master, b"zqRx")
        assert next(stream) is Result.CONTINUE
        during = termios.tcgetattr(slave)
        assert during[3] & termios.ICANON == 0
        assert during[3] & termios.ECHO == 0
        assert during[3] & termios.ISIG  # Ctrl+C still interrupts
        assert next(stream) is Result.RESTART
        assert next(stream) is Result.EXIT
        stream.close()
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_wait_for_keys_needs_a_terminal(tmp_path):
    from macrostrat.app_frame import ApplicationError
    from macrostrat.app_frame.compose import stdin_is_terminal, wait_for_keys

    with (
        (tmp_path / "file").open("w") as handle,
        pytest.raises(ApplicationError, match="need a terminal"),
        wait_for_keys(handle.fileno()),
    ):
        pass
    assert stdin_is_terminal() is False  # pytest's stdin is not a terminal


def test_follow_logs_and_stop_process(fake_docker):
    from macrostrat.app_frame import Application, follow_logs
    from macrostrat.app_frame.compose import stop_process

    app = Application("Logs App")
    process = follow_logs(app, "api", show_help=False, stdout=subprocess.DEVNULL)
    (pid,) = _wait_for_followers(fake_docker, 1)
    entry = fake_docker.entries()[-1]
    assert entry["argv"][:3] == ["compose", "logs", "-f"]
    assert entry["argv"][3].startswith("--since=")
    assert entry["argv"][3].endswith("Z")
    assert entry["argv"][4] == "api"
    assert os.getpgid(pid) == pid  # its own process group
    stop_process(process)
    assert process.returncode is not None
    assert not _alive(pid)
    stop_process(process)  # harmless when already stopped


def test_follow_logs_with_standalone_docker_compose(
    tmp_path, monkeypatch, stand_in_writer
):
    """docker-compose 1.x has no `--since`: it printed its usage and exited 0.

    The stand-in `docker-compose` rejects `--since` the way 1.29 does, so the
    old command line showed no logs at all.
    """
    from macrostrat.app_frame import Application, follow_logs
    from macrostrat.app_frame.compose import stop_process
    from macrostrat.app_frame.compose.follow_logs import logs_command

    bin_dir = tmp_path / "v1-bin"
    stand_in_writer(bin_dir, "docker-compose")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert logs_command("api") == ["docker-compose", "logs", "-f", "--tail=0", "api"]
    process = follow_logs(
        Application("V1 App"), "api", show_help=False, stdout=subprocess.PIPE
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "no output from docker-compose logs"
        assert process.stdout.readline() == b"stand-in: following logs\n"
        assert process.poll() is None  # still following
    finally:
        stop_process(process)


def test_command_stream_ends_when_the_terminal_hangs_up():
    """A read on a hung-up pty raises EIO; the stream must end, not crash."""
    from macrostrat.app_frame.compose import Result, command_stream

    master, slave = os.openpty()
    stream = command_stream(0.1, fd=slave)
    try:
        os.write(master, b"q")
        assert next(stream) is Result.CONTINUE
        os.close(master)  # hang up: reading the slave now fails with EIO
        assert list(stream) == []
    finally:
        stream.close()
        os.close(slave)


def test_stop_process_without_process_groups(monkeypatch):
    """Windows has no `os.killpg`; stopping must still end the process."""
    from macrostrat.app_frame.compose import stop_process

    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        stdin=subprocess.DEVNULL,
    )
    monkeypatch.delattr(os, "killpg")
    stop_process(process, timeout=10)
    assert process.returncode is not None
    assert not _alive(process.pid)
