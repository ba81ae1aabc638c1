"""LlmClient against the fake OpenAI-compatible server: replies, faults and keys."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from conftest import make_config
from fakeserver import FakeLlmServer, Reply
from qt45 import ChatTask, LlmClient, LlmError, LlmUnavailable
from qt45.config import Config, resolve_api_key

TASK = ChatTask("generate", "add")
MESSAGES = [{"role": "user", "content": "write add"}]


def client(server: FakeLlmServer, tmp_path: Path, **overrides: object) -> LlmClient:
    return LlmClient(make_config(tmp_path / "l.db", server.url, **overrides), backoff_s=0.01)


@pytest.mark.parametrize("stream", [True, False])
def test_reply_content(fake_server: FakeLlmServer, tmp_path: Path, stream: bool) -> None:
    fake_server.push("(module) with some text")

    reply = client(fake_server, tmp_path, stream=stream).chat(MESSAGES, TASK)

    assert reply == "(module) with some text"
    assert fake_server.requests[0]["stream"] is stream
    assert fake_server.requests[0]["model"] == "qwen2.5-coder:7b"
    assert fake_server.requests[0]["messages"] == MESSAGES


def test_progress_reports_characters(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    seen: list[int] = []

    class Recorder:
        from contextlib import nullcontext

        def waiting(self, task: ChatTask):  # type: ignore[no-untyped-def]
            seen.append(-1)
            return self.nullcontext()

        def received(self, characters: int) -> None:
            seen.append(characters)

    fake_server.push(Reply(content="x" * 30, chunk_chars=10))
    llm = LlmClient(make_config(tmp_path / "l.db", fake_server.url), progress=Recorder())

    llm.chat(MESSAGES, TASK)

    assert seen == [-1, 10, 20, 30]


def test_server_error_is_retried(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(Reply(status=500, error="overloaded"), "fine")

    assert client(fake_server, tmp_path).chat(MESSAGES, TASK) == "fine"
    assert len(fake_server.requests) == 2


def test_rate_limit_is_retried(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(Reply(status=429, error="slow down", headers={"Retry-After": "0"}), "ok")

    assert client(fake_server, tmp_path).chat(MESSAGES, TASK) == "ok"


def test_server_errors_give_up_after_retries(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(*[Reply(status=503, error="down") for _ in range(3)])

    with pytest.raises(LlmError) as info:
        client(fake_server, tmp_path, llm_retries=2).chat(MESSAGES, TASK)

    assert "HTTP 503: down" in str(info.value)
    assert "gave up after 3 tries" in str(info.value)
    assert len(fake_server.requests) == 3


def test_truncated_stream_is_retried(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(Reply(content="(module (func", truncate=True), "(module)")

    assert client(fake_server, tmp_path).chat(MESSAGES, TASK) == "(module)"


def test_truncated_stream_every_time(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(*[Reply(content="(module (func", truncate=True) for _ in range(2)])

    with pytest.raises(LlmError, match="truncated stream"):
        client(fake_server, tmp_path).chat(MESSAGES, TASK)


@pytest.mark.parametrize("stream", [True, False])
def test_malformed_reply(fake_server: FakeLlmServer, tmp_path: Path, stream: bool) -> None:
    fake_server.push(*[Reply(content="abc", malformed=True) for _ in range(2)])

    with pytest.raises(LlmError, match="malformed"):
        client(fake_server, tmp_path, stream=stream).chat(MESSAGES, TASK)


@pytest.mark.parametrize("stream", [True, False])
def test_length_cut_with_empty_content(
    fake_server: FakeLlmServer, tmp_path: Path, stream: bool
) -> None:
    fake_server.push(Reply(content="", finish_reason="length"))

    with pytest.raises(LlmError, match="cut off \\(finish_reason 'length'\\)"):
        client(fake_server, tmp_path, stream=stream).chat(MESSAGES, TASK)


def test_unknown_model(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    with pytest.raises(LlmUnavailable) as info:
        client(fake_server, tmp_path, model="llama-missing").chat(MESSAGES, TASK)

    assert "ollama pull llama-missing" in str(info.value)


def test_wrong_base_url(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    url = fake_server.url.removesuffix("/v1") + "/api"
    llm = LlmClient(make_config(tmp_path / "l.db", url))

    with pytest.raises(LlmUnavailable, match="usually ends in /v1"):
        llm.chat(MESSAGES, TASK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = LlmClient(make_config(tmp_path / "l.db", url), backoff_s=0.01)

    with pytest.raises(LlmUnavailable) as info:
        llm.chat(MESSAGES, TASK)

    assert f"no LLM server is reachable at {url}" in str(info.value)
    assert "ollama serve" in str(info.value)
    assert not llm.is_reachable(timeout=0.5)


@pytest.mark.parametrize("stream", [True, False])
def test_timeout(fake_server: FakeLlmServer, tmp_path: Path, stream: bool) -> None:
    fake_server.push(Reply(content="late", delay=3.0))
    started = time.monotonic()

    with pytest.raises(LlmError, match=r"sent no reply within 0\.5 s"):
        client(fake_server, tmp_path, llm_timeout=0.5, stream=stream).chat(MESSAGES, TASK)

    assert time.monotonic() - started < 3.0  # a generous bound that only catches a hang


def test_dropped_connection_is_retried(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push(Reply(drop=True), "after the drop")

    assert client(fake_server, tmp_path).chat(MESSAGES, TASK) == "after the drop"


def test_qt45_api_key_is_sent(fake_server: FakeLlmServer, tmp_path: Path) -> None:
    fake_server.push("ok")

    client(fake_server, tmp_path, api_key="secret-1").chat(MESSAGES, TASK)

    assert fake_server.headers[0]["Authorization"] == "Bearer secret-1"


def test_openai_key_never_goes_to_a_custom_url(
    fake_server: FakeLlmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak")
    monkeypatch.setenv("QT45_LLM_URL", fake_server.url)
    config = Config.from_env(db_path=tmp_path / "l.db", show_progress=False)
    fake_server.push("ok")

    LlmClient(config).chat(MESSAGES, TASK)

    assert config.api_key is None
    assert "Authorization" not in fake_server.headers[0]


def test_api_key_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")

    assert resolve_api_key("https://api.openai.com/v1") == "sk-openai"
    assert resolve_api_key("http://api.openai.com/v1") is None
    assert resolve_api_key("https://api.openai.com.evil.test/v1") is None
    assert resolve_api_key("http://localhost:11434/v1") is None
    monkeypatch.setenv("QT45_API_KEY", "qt45-key")
    assert resolve_api_key("http://localhost:11434/v1") == "qt45-key"
