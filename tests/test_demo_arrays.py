"""The demo's SIMD and GPU sections, replayed from the scripted model replies."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from conftest import make_config
from qt45.demo import run_demo
from test_gpu import open_adapter

ARRAY_RESULTS = [
    "  [simd] [11, 22, 33, 44]",
    "  [simd] [100.5, 200.5, 300.5, 400.5]",
    "  [gpu] [2, 4, 6, 8, 10, 12, 14, 16]",
    "  [gpu] [20, 40, 60, 80]",
]


def run_once(db_path: Path) -> list[str]:
    console = Console(record=True, width=200, highlight=False)
    status = run_demo(make_config(db_path, llm="scripted"), console)
    assert status == 0
    return console.export_text().splitlines()


def test_demo_array_sections_twice(db_path: Path) -> None:
    open_adapter()

    first = run_once(db_path)
    second = run_once(db_path)

    for line in ARRAY_RESULTS:
        assert line in first
        assert line in second
    assert "  [cache] miss — generating SIMD via LLM..." in first
    assert "  [cache] miss — generating GPU via LLM..." in first
    assert any("1/4 passed — length 5: first wrong element at index 4" in line for line in first)
    assert "  [store] saved function: 'gpu_double_f32' (tier: gpu)" in first
    assert any(line.startswith("[demo] 13 requests, 0 LLM calls, 13 cache hits") for line in second)
