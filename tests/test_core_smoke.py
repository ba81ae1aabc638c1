"""End-to-end smoke test of the scalar loop against the fake server."""

from __future__ import annotations

from fakeserver import FakeLlmServer
from qt45 import Qt45

ADD_MODULE = """```wat
(module
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
```"""
ADD_TESTS = '[{"inputs": [1, 2], "expected": 3}, {"inputs": [-1, 1], "expected": 0}]'


def test_generate_then_cache_hit(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(ADD_MODULE, ADD_TESTS)

    first = lib.call("add", "adds two integers", "(i32, i32) -> i32", 10, 20)
    second = lib.call("add", "adds two integers", "(i32, i32) -> i32", 100, 200)

    assert first.value == 30
    assert first.source == "generated"
    assert first.verified
    assert first.llm_calls == 2
    assert second.value == 300
    assert second.source == "cache"
    assert second.llm_calls == 0
    assert len(fake_server.requests) == 2
