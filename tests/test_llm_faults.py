"""Model-server faults end in a retry or one clear message, never a hang or a half-stored function."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from conftest import make_config
from fakeserver import FakeLlmServer, Reply
from libtools import snapshot
from qt45 import ChatTask, LlmClient, LlmError, LlmUnavailable, Qt45, SynthesisError
from qt45.llm import MAX_REPLY_BYTES

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  local.get 0 local.get 1 i32.add))"""
ADD_REPLY = f"```wat\n{ADD}\n```"
ADD_TESTS = '[{"inputs": [1, 2], "expected": 3}]'
TASK = ChatTask("generate", "add")
MESSAGES = [{"role": "user", "content": "write add"}]
HANG_BOUND_S = 30.0
"""Generous bound that only catches a hang; the tests assert behaviour, not speed."""


def client(db_path: Path, url: str, **overrides: object) -> LlmClient:
    return LlmClient(make_config(db_path, url, **overrides), backoff_s=0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused(db_path: Path) -> None:
    llm = client(db_path, f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(LlmUnavailable, match="no LLM server is reachable"):
        llm.chat(MESSAGES, TASK)


@pytest.mark.parametrize("stream", [True, False])
def test_silent_server_times_out(db_path: Path, fake_server: FakeLlmServer, stream: bool) -> None:
    fake_server.push(Reply(content="late", delay=3.0))
    llm = client(db_path, fake_server.url, llm_timeout=0.5, stream=stream)
    started = time.monotonic()

    with pytest.raises(LlmError, match=r"no reply within 0.5 s.*--llm-timeout"):
        llm.chat(MESSAGES, TASK)

    assert time.monotonic() - started < HANG_BOUND_S


@pytest.mark.parametrize("stream", [True, False])
def test_trickling_server_times_out(
    db_path: Path, fake_server: FakeLlmServer, stream: bool
) -> None:
    fake_server.push(Reply(content=ADD_REPLY * 4, chunk_delay=0.1, chunk_chars=4))
    llm = client(db_path, fake_server.url, llm_timeout=0.5, stream=stream)
    started = time.monotonic()

    with pytest.raises(LlmError, match=r"no reply within 0\.5 s"):
        llm.chat(MESSAGES, TASK)

    assert time.monotonic() - started < HANG_BOUND_S


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retryable_status_then_success(
    db_path: Path, fake_server: FakeLlmServer, status: int
) -> None:
    fake_server.push(Reply(status=status, error="busy", headers={"Retry-After": "0.05"}), "ok")

    assert client(db_path, fake_server.url).chat(MESSAGES, TASK) == "ok"
    assert len(fake_server.requests) == 2


def test_persistent_5xx_gives_up(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(Reply(status=503, error="overloaded"), Reply(status=503, error="overloaded"))

    with pytest.raises(LlmError, match=r"HTTP 503: overloaded; gave up after 2 tries"):
        client(db_path, fake_server.url).chat(MESSAGES, TASK)


BROKEN_REPLIES = [
    (Reply(content=ADD_REPLY, truncate=True), True),
    (Reply(content=ADD_REPLY, malformed=True), True),
    (Reply(content=ADD_REPLY, malformed=True), False),
    (Reply(drop=True), True),
    (Reply(drop=True), False),
]


@pytest.mark.parametrize(
    "fault, stream",
    BROKEN_REPLIES,
    ids=["truncated-stream", "malformed-stream", "malformed-body", "dropped-stream", "dropped"],
)
def test_broken_reply_retried(
    db_path: Path, fake_server: FakeLlmServer, fault: Reply, stream: bool
) -> None:
    fake_server.push(fault, "second try")

    assert client(db_path, fake_server.url, stream=stream).chat(MESSAGES, TASK) == "second try"


def test_malformed_twice_gives_clear_error(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(Reply(malformed=True), Reply(malformed=True))

    with pytest.raises(LlmError, match="malformed stream chunk"):
        client(db_path, fake_server.url).chat(MESSAGES, TASK)


@pytest.mark.parametrize("stream", [True, False])
def test_empty_reply_cut_by_length(db_path: Path, fake_server: FakeLlmServer, stream: bool) -> None:
    fake_server.push(Reply(content="", finish_reason="length"))

    with pytest.raises(LlmError, match="cut off"):
        client(db_path, fake_server.url, stream=stream).chat(MESSAGES, TASK)


def test_oversized_reply_rejected(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(Reply(content="x" * (MAX_REPLY_BYTES + 10)))

    with pytest.raises(LlmError, match="longer than"):
        client(db_path, fake_server.url, stream=False).chat(MESSAGES, TASK)


def test_think_only_replies_store_nothing(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(*["<think>I should write WAT. Let me think more.</think>"] * 3)

    with (
        Qt45(make_config(db_path, fake_server.url, max_attempts=3)) as lib,
        pytest.raises(SynthesisError, match=r"no \(module \.\.\.\) form.*Nothing was stored"),
    ):
        lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    assert snapshot(db_path)["functions"] == []


def test_server_error_mid_generation_stores_nothing(
    db_path: Path, fake_server: FakeLlmServer
) -> None:
    fake_server.push("no module here", Reply(status=500), Reply(status=500))

    with (
        Qt45(make_config(db_path, fake_server.url)) as lib,
        pytest.raises(LlmError, match="HTTP 500"),
    ):
        lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    assert snapshot(db_path)["functions"] == []


def test_fault_during_tests_stores_whole_unverified(
    db_path: Path, fake_server: FakeLlmServer
) -> None:
    fake_server.push(ADD_REPLY, Reply(status=500), Reply(status=500))

    with Qt45(make_config(db_path, fake_server.url)) as lib:
        result = lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    rows = snapshot(db_path)
    assert result.value == 3
    assert not result.verified
    assert len(rows["functions"]) == 1
    assert rows["test_cases"] == []


def test_faults_then_success_generates(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(
        Reply(status=429, headers={"Retry-After": "0"}),
        ADD_REPLY,
        Reply(truncate=True, content="["),
        ADD_TESTS,
    )

    with Qt45(make_config(db_path, fake_server.url)) as lib:
        result = lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    assert result.value == 3
    assert result.verified
