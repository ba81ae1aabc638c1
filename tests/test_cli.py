"""The command line end to end: piped REPL, a pseudo-terminal, -c, --json and the demo."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeserver import FakeLlmServer

ADD = 'add "adds two integers" (i32, i32) -> i32 : 10, 20'
ADD_MODULE = '```wat\n(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))\n```'
ADD_TESTS = '[{"inputs": [1, 2], "expected": 3}]'
DEMO_RESULTS = ["30", "300", "25", "42", "42", "-42", "78.53981633974483", "42", "15"]


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("QT45_", "OPENAI_"))
    }
    env.update(
        {
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "HOME": str(tmp_path / "home"),
            "QT45_LLM_URL": "http://127.0.0.1:9/v1",
            "COLUMNS": "120",
        }
    )
    env.update(extra)
    return env


def qt45(
    tmp_path: Path, *args: str, stdin: str = "", **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qt45", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path, **extra),
        timeout=120,
    )


def test_piped_repl_session(tmp_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(ADD_MODULE, ADD_TESTS)
    lines = "\n".join(
        [
            ADD,
            "add 10, 20",
            ".list",
            ".info add",
            ".source add",
            ".tests add",
            ".nope",
            ".quit",
            ADD,
        ]
    )

    done = qt45(tmp_path, "--llm-url", fake_server.url, stdin=lines + "\n")

    out = done.stdout
    assert done.returncode == 0
    assert "  [wasm] 30" in out
    assert "missing the quoted description after 'add'" in out
    assert "(i32, i32) -> i32" in out
    assert "i32.add" in out
    assert "pass  inputs [1, 2]" in out
    assert "unknown command .nope" in out
    assert out.count("[wasm]") == 1  # nothing runs after .quit
    assert "Traceback" not in out + done.stderr


def test_one_shot_json(tmp_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(ADD_MODULE, ADD_TESTS)

    first = qt45(tmp_path, "--llm-url", fake_server.url, "-c", ADD, "--json")
    second = qt45(
        tmp_path, "--llm-url", fake_server.url, "-c", ADD.replace("10, 20", "1, 2"), "--json"
    )

    generated = json.loads(first.stdout)
    cached = json.loads(second.stdout)
    assert first.returncode == 0
    assert generated["values"] == [30]
    assert generated["source"] == "generated"
    assert generated["llm_calls"] == 2
    assert cached["values"] == [3]
    assert cached["source"] == "cache"
    assert cached["llm_calls"] == 0
    assert cached["verified"] is True


def test_one_shot_error_json(tmp_path: Path) -> None:
    done = qt45(tmp_path, "-c", "add 1, 2", "--json")

    assert done.returncode == 1
    assert json.loads(done.stdout)["ok"] is False
    assert "missing the quoted description" in json.loads(done.stdout)["error"]


def test_one_shot_unreachable_server(tmp_path: Path) -> None:
    done = qt45(tmp_path, "-c", ADD)

    assert done.returncode == 1
    assert "no LLM server is reachable at http://127.0.0.1:9/v1" in done.stdout + done.stderr
    assert "ollama serve" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_not_a_library_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")

    done = qt45(tmp_path, "--db", str(path), "-c", ".list")

    assert done.returncode == 1
    assert "is not a qt45 library" in done.stderr
    assert path.read_text() == "hello"


def test_demo_twice(tmp_path: Path) -> None:
    first = qt45(tmp_path, "--demo")
    second = qt45(tmp_path, "--demo")

    for run in (first, second):
        results = [
            line.split("] ", 1)[1]
            for line in run.stdout.splitlines()
            if line.startswith("  [wasm]")
        ]
        assert run.returncode == 0, run.stdout + run.stderr
        assert results == DEMO_RESULTS
    assert first.stdout.splitlines()[0].startswith(
        "[llm] no LLM is reachable at http://127.0.0.1:9/v1"
    )
    assert "  [llm] compilation failed:" in first.stdout
    assert "[llm]" not in "".join(line for line in second.stdout.splitlines()[1:])
    assert ", 0 LLM calls," in second.stdout.splitlines()[-1]
    assert "Traceback" not in first.stderr + second.stderr


def test_demo_scripted_flag(tmp_path: Path) -> None:
    done = qt45(tmp_path, "--demo", "--llm", "scripted")

    assert done.returncode == 0
    assert done.stdout.startswith(
        "[llm] replaying the project's scripted model replies (--llm scripted)"
    )


ANSI_ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(fd: int, marker: bytes, timeout: float = 30.0) -> bytes:
    """Read from a pseudo-terminal until ``marker`` appears in the output without ANSI codes."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in ANSI_ESCAPE.sub(b"", seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} did not appear; output so far: {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return ANSI_ESCAPE.sub(b"", seen)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_interactive_terminal(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        env = env_for(tmp_path, PROMPT_TOOLKIT_NO_CPR="1")
        os.execve(sys.executable, [sys.executable, "-m", "qt45", "--llm", "scripted"], env)
    try:
        read_until(fd, b"qt45>")
        os.write(fd, b'answer "returns 42" () -> i32\r')
        output = read_until(fd, b"[wasm] 42")
        os.write(fd, b"bogus line\r")
        output += read_until(fd, b"such as .help")
        os.write(fd, b".quit\r")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)

    assert b"[llm] attempt 1/3..." in output
    assert b"error: missing the quoted description" in output
    assert b"Traceback" not in output
    assert os.WEXITSTATUS(status) == 0
    assert (tmp_path / "xdg" / "qt45" / "history").read_text().count("answer") == 1


SPIN = '(module (func (export "spin") (param i32) (result i32) (loop br 0) local.get 0))'
SPIN_LINE = 'spin "loops forever" (i32) -> i32 : 1'


def spin_library(tmp_path: Path) -> Path:
    from libtools import store_wat
    from qt45 import Config

    path = tmp_path / "spin.db"
    store_wat(
        Config(db_path=path, key_path=tmp_path / "xdg" / "qt45" / "module.key"),
        "spin",
        "(i32) -> i32",
        SPIN,
    )
    return path


def test_ctrl_c_stops_a_running_call(tmp_path: Path) -> None:
    import signal

    library = spin_library(tmp_path)
    command = [sys.executable, "-m", "qt45", "--db", str(library), "--fuel", str(10**15)]
    process = subprocess.Popen(
        [*command, "--call-timeout", "60", "-c", SPIN_LINE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path),
    )
    read_until_text(process, "[cache] found 'spin'")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)  # far below the 60 s limit

    assert process.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err


def read_until_text(process: subprocess.Popen[str], marker: str) -> None:
    assert process.stdout is not None
    seen = ""
    while marker not in seen:
        line = process.stdout.readline()
        assert line, f"{marker!r} did not appear; output so far: {seen!r}"
        seen += line


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_ctrl_c_in_the_repl_keeps_the_session(tmp_path: Path) -> None:
    library = spin_library(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        env = env_for(tmp_path, PROMPT_TOOLKIT_NO_CPR="1")
        argv = [
            sys.executable,
            "-m",
            "qt45",
            "--db",
            str(library),
            "--fuel",
            str(10**15),
            "--call-timeout",
            "60",
        ]
        os.execve(sys.executable, argv, env)
    try:
        read_until(fd, b"qt45>")
        os.write(fd, SPIN_LINE.encode() + b"\r")
        read_until(fd, b"[cache] found 'spin'")
        time.sleep(0.3)
        os.write(fd, b"\x03")
        output = read_until(fd, b"interrupted", timeout=30)
        os.write(fd, b".quit\r")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)

    assert b"Traceback" not in output
    assert os.WEXITSTATUS(status) == 0


def test_dot_commands_in_one_shot(tmp_path: Path) -> None:
    assert qt45(tmp_path, "--demo").returncode == 0

    quit_line = qt45(tmp_path, "-c", ".quit")
    info_alias = qt45(tmp_path, "-c", ".info sum")
    delete_spacing = qt45(tmp_path, "-c", ".delete max (i32,i32)->i32")
    delete_other = qt45(tmp_path, "-c", ".delete negate (f64) -> f64")
    delete_bad = qt45(tmp_path, "-c", ".delete negate bogus")
    unknown = qt45(tmp_path, "-c", ".nope")
    search_typo = qt45(tmp_path, "-c", '.search sum "adds" (i32, i33) -> i32')

    assert quit_line.returncode == 0
    assert "invalid type 'i33'" in search_typo.stderr
    assert "'sum' (i32, i32) -> i32 is an alias of 'add'" in info_alias.stdout
    assert "description adds two integers" in info_alias.stdout
    assert "Deleted 1 function(s) named 'max'" in delete_spacing.stdout
    assert "no function named 'negate' with signature (f64) -> f64" in delete_other.stderr
    assert "invalid signature 'bogus'" in delete_bad.stderr
    assert (
        "known commands: .list .info .source .tests .shader .bench .delete .search .help .quit"
        in (unknown.stderr)
    )


def test_demo_without_server_fails_cleanly(tmp_path: Path) -> None:
    done = qt45(tmp_path, "--demo", "--llm", "http")

    errors = [line for line in done.stdout.splitlines() if line.startswith("  [error]")]
    assert done.returncode == 1
    assert len(errors) == 13
    assert all("no LLM server is reachable at http://127.0.0.1:9/v1" in line for line in errors)
    assert "[demo] 13 request(s) failed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
