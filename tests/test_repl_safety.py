"""The REPL and the CLI print one line per error and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conftest import make_config
from libtools import ListModel
from qt45 import Qt45
from qt45.oneshot import run_one_shot
from qt45.repl import execute_line

BAD_LINES = [
    "add",
    'add "adds',
    'add "adds two" (i33) -> i32 : 1',
    'add "adds two" (i32, i32) -> i32 : 1, 2, 3',
    'add "adds two" (i32, i32) -> i32 : 99999999999, 1',
    'add "adds two" (i32) -> i32 : ' + "9" * 5000,
    'simd v "x" [1, 2] [3]',
    ".info",
    ".nosuchcommand",
    ".delete missing",
    "\x00\x01\x02",
    "(" * 5000,
    '"' * 100,
]


def run_cli(args: list[str], stdin: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QT45_")}
    env.update(
        PYTHONPATH=os.pathsep.join(sys.path),
        XDG_DATA_HOME=str(home),
        HOME=str(home),
        QT45_LLM_URL="http://127.0.0.1:9/v1",
        QT45_LLM_TIMEOUT="2",
    )
    return subprocess.run(
        [sys.executable, "-m", "qt45", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_piped_bad_lines_print_no_traceback(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"

    result = run_cli(["--db", str(db)], "\n".join(BAD_LINES) + "\n", tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 0
    assert "Traceback" not in output
    assert output.count("error:") >= len(BAD_LINES) - 1


@pytest.mark.parametrize(
    "content, phrase",
    [(b"plain text, not a database", "not an SQLite database"), (b"", None)],
    ids=["not-sqlite", "empty"],
)
def test_cli_bad_db_one_line(tmp_path: Path, content: bytes, phrase: str | None) -> None:
    db = tmp_path / "file.db"
    db.write_bytes(content)

    result = run_cli(["--db", str(db), "-c", ".list"], "", tmp_path)

    assert "Traceback" not in result.stdout + result.stderr
    if phrase is None:
        assert result.returncode == 0
    else:
        assert result.returncode == 1
        assert phrase in result.stderr
        assert db.read_bytes() == content


def test_cli_bad_limit_one_line(tmp_path: Path) -> None:
    result = run_cli(
        ["--db", str(tmp_path / "l.db"), "--call-timeout", "0", "-c", ".list"], "", tmp_path
    )

    assert result.returncode == 1
    assert "--call-timeout must be a positive number" in result.stderr
    assert "Traceback" not in result.stderr


class Exploding:
    """A chat model with a bug: it raises an exception that is not a Qt45Error."""

    label = "exploding"
    calls = 0

    def chat(self, messages: object, task: object) -> str:
        raise KeyError("bug in the model adapter")


def test_unexpected_exception_one_line(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QT45_DEBUG", raising=False)
    console = Console(record=True, width=200)

    with Qt45(make_config(db_path), model=Exploding()) as lib:
        keep_going = execute_line(lib, console, 'add "adds" (i32, i32) -> i32 : 1, 2')
        status = run_one_shot(lib, 'add "adds" (i32, i32) -> i32 : 1, 2', False)

    text = console.export_text()
    one_shot = capsys.readouterr().err
    assert keep_going
    assert status == 1
    for output in (text, one_shot):
        assert "internal error: KeyError: 'bug in the model adapter'" in output
        assert "QT45_DEBUG=1" in output
        assert "Traceback" not in output


def test_unexpected_exception_json(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Qt45(make_config(db_path), model=ListModel([], KeyError("bug"))) as lib:
        status = run_one_shot(lib, 'add "adds" (i32, i32) -> i32 : 1, 2', True)

    out = capsys.readouterr().out
    assert status == 1
    assert '"ok": false' in out
    assert "internal error: KeyError" in out
