"""Request latency of an exact hit as the library grows."""

from __future__ import annotations

import time
from pathlib import Path

import wasmtime

from harness import Timing, time_call
from qt45 import Config, FunctionRecord, Qt45, Reporter, Tier

WAT = '(module (func (export "{name}") (param i32) (result i32) local.get 0 i32.const {k} i32.add))'


def fill(lib: Qt45, count: int) -> None:
    """Insert ``count`` distinct functions in one transaction (real wasm, no native cache)."""
    now = time.time()
    with lib.store.write() as conn:
        for index in range(count):
            name = f"f{index}"
            wat = WAT.format(name=name, k=index)
            record = FunctionRecord(
                name=name,
                signature="(i32) -> i32",
                tier=Tier.SCALAR,
                description=f"adds {index} to an integer",
                wat=wat,
                wasm=bytes(wasmtime.wat2wasm(wat)) if index < 50 else b"",
                verified=True,
                created_at=now,
            )
            conn.execute(
                "INSERT INTO functions (name, signature, tier, description, wat, wasm, "
                "created_at, verified) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                (
                    record.name,
                    record.signature,
                    str(record.tier),
                    record.description,
                    wat,
                    record.wasm,
                    now,
                ),
            )


def run(folder: Path, sizes: tuple[int, ...] = (100, 10_000, 100_000)) -> dict[str, Timing]:
    results: dict[str, Timing] = {}
    for size in sizes:
        config = Config(
            db_path=folder / f"store-{size}.db", llm="scripted", key_path=folder / "key"
        )
        with Qt45(config, reporter=Reporter()) as lib:
            fill(lib, size)
            results[f"hit{size}"] = time_call(
                f"exact hit with {size:,} stored functions",
                lambda lib=lib: lib.call("f7", "adds 7 to an integer", "(i32) -> i32", 1),
            )
    return results
