"""Time the demo's SIMD and GPU functions on 1,000,003 elements, as ``.bench`` does.

Run from the repository root (no model server needed; the scripted replies
write the functions into a temporary library):

    python benchmarks/bench_arrays.py [ELEMENTS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qt45 import Config, Qt45, Reporter, bench
from qt45.demo import gpu_steps, simd_steps


def main() -> None:
    elements = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_003
    with tempfile.TemporaryDirectory() as folder:
        config = Config(
            db_path=Path(folder) / "bench.db",
            llm="scripted",
            show_progress=False,
            key_path=Path(folder) / "module.key",
        )
        with Qt45(config, reporter=Reporter()) as lib:
            lib.request(simd_steps()[0])
            lib.request(gpu_steps()[0])
            print(f"adapter: {lib.gpu_context().adapter.describe()}")
            print(
                f"{'name':<16} {'tier':<5} {'elements':>10} {'runs':>5} {'median ms':>10} "
                f"{'elements/s':>14} {'GB/s':>6}"
            )
            for name in ("vec_add_f32", "gpu_double_f32"):
                for result in bench(lib, name, elements):
                    print(
                        f"{result.name:<16} {result.tier!s:<5} {result.elements:>10,} "
                        f"{result.runs:>5} {result.median_s * 1000:>10.3f} "
                        f"{result.elements_per_s:>14,.0f} {result.gb_per_s:>6.2f}"
                    )


if __name__ == "__main__":
    main()
