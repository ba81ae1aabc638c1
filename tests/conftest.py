"""Shared fixtures: a library on a temporary file, a fake model server, a Qt45 instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakeserver import FakeLlmServer
from qt45 import Config, Limits, Qt45, Reporter


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep keys, history and settings of the tests out of the user's home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in (
        "QT45_DB",
        "QT45_LLM_URL",
        "QT45_MODEL",
        "QT45_API_KEY",
        "OPENAI_API_KEY",
        "QT45_LLM",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "library.db"


@pytest.fixture
def fake_server() -> Iterator[FakeLlmServer]:
    server = FakeLlmServer().start()
    yield server
    server.stop()


def make_config(db_path: Path, url: str = "http://127.0.0.1:9/v1", **overrides: object) -> Config:
    """A Config for tests: short timeouts, no spinner, keys under the test's temp folder."""
    values: dict[str, object] = {
        "db_path": db_path,
        "llm_url": url,
        "llm": "http",
        "llm_timeout": 5.0,
        "llm_retries": 1,
        "show_progress": False,
        "key_path": db_path.parent / "module.key",
        "limits": Limits(),
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


@pytest.fixture
def lib(db_path: Path, fake_server: FakeLlmServer) -> Iterator[Qt45]:
    """A Qt45 on a fresh library file, talking to the fake server."""
    with Qt45(make_config(db_path, fake_server.url), reporter=Reporter()) as instance:
        yield instance
