"""A second process for the concurrency tests: ``python store_worker.py MODE DB KEY PREFIX COUNT``.

``hammer`` stores COUNT functions and calls the stored ``add`` COUNT times,
writing the call count after each call. ``endless`` stores functions with
1 MiB blobs until it is killed, printing ``saved NAME`` after each commit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from qt45 import Config, FunctionRecord, FunctionStore, Limits, Qt45, Tier, WasmRuntime


def hammer(db_path: Path, key_path: Path, prefix: str, count: int) -> None:
    config = Config(db_path=db_path, key_path=key_path, llm="scripted", limits=Limits())
    runtime = WasmRuntime(config.limits, key_path)
    with Qt45(config) as lib:
        for index in range(count):
            name = f"{prefix}_{index}"
            compiled = runtime.compile(
                f'(module (func (export "{name}") (result i32) i32.const {index}))'
            )
            native, tag = runtime.serialize(compiled)
            record = FunctionRecord(
                name=name,
                signature="() -> i32",
                tier=Tier.SCALAR,
                description=f"returns {index}",
                wat="",
                wasm=compiled.wasm,
                compiled=native,
                compiled_tag=tag,
                verified=True,
            )
            lib.store.save(record, [])
            lib.store.add_alias(f"alias_{name}", "() -> i32", Tier.SCALAR, record.id or -1)
            lib.call("add", "adds two integers", "(i32, i32) -> i32", index, 1)
            lib.store.flush()


def endless(db_path: Path, prefix: str) -> None:
    store = FunctionStore(db_path)
    index = 0
    while True:
        name = f"{prefix}_{index}"
        record = FunctionRecord(
            name=name,
            signature="() -> i32",
            tier=Tier.SCALAR,
            description="x" * 1000,
            wat="(module)",
            wasm=b"\x00asm\x01\x00\x00\x00",
            compiled=os.urandom(2**20),
        )
        store.save(record, [])
        print(f"saved {name}", flush=True)
        index += 1


def main(argv: list[str]) -> None:
    mode, db, key, prefix, count = argv
    if mode == "hammer":
        hammer(Path(db), Path(key), prefix, int(count))
    else:
        endless(Path(db), prefix)


if __name__ == "__main__":
    main(sys.argv[1:])
