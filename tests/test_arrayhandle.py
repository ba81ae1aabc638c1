"""ArrayFunction: repeated SIMD calls with arrays that live in linear memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import make_config
from qt45 import ArgumentError, Qt45, Reporter, ScriptedModel, TrapError

ADD_DESCRIPTION = "element-wise addition of two f32 arrays"


@pytest.fixture
def scripted(db_path: Path) -> Qt45:
    lib = Qt45(make_config(db_path), model=ScriptedModel(), reporter=Reporter())
    yield lib  # type: ignore[misc]
    lib.close()


@pytest.mark.parametrize("length", [0, 1, 5, 1_000_003])
def test_copying_call(scripted: Qt45, length: int) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
    rng = np.random.default_rng(length)
    a = rng.random(length, dtype=np.float32)
    b = rng.random(length, dtype=np.float32)

    result = vec_add(a, b)

    assert result.dtype == np.float32
    assert np.array_equal(result, a + b)


def test_zero_copy_views(scripted: Qt45) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
    slot_a, slot_b = vec_add.inputs(7)
    slot_a[:] = np.arange(7, dtype=np.float32)
    slot_b[:] = 10

    first = vec_add.run(7)
    expected_first = first.copy()
    slot_b[:] = 100
    second = vec_add.run(7)

    assert expected_first.tolist() == [10, 11, 12, 13, 14, 15, 16]
    assert second.tolist() == [100, 101, 102, 103, 104, 105, 106]
    assert first.base is not None  # a view into linear memory, not a copy


def test_chained_calls_copy_nothing(scripted: Qt45) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
    slot_a, slot_b = vec_add.inputs(4)
    slot_a[:] = [1, 2, 3, 4]
    slot_b[:] = [1, 1, 1, 1]

    for _ in range(3):
        np.copyto(slot_a, vec_add.run(4))

    assert slot_a.tolist() == [4, 5, 6, 7]


def test_out_argument(scripted: Qt45) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
    out = np.zeros(3, dtype=np.float32)

    returned = vec_add([1, 2, 3], [4, 5, 6], out=out)

    assert returned is out
    assert out.tolist() == [5, 7, 9]
    with pytest.raises(ArgumentError, match="out must be a float32 array of shape \\(3,\\)"):
        vec_add([1, 2, 3], [4, 5, 6], out=np.zeros(4, dtype=np.float32))


def test_wrong_input_count(scripted: Qt45) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)

    with pytest.raises(ArgumentError, match="takes 2 input array"):
        vec_add([1, 2, 3])


def test_calls_are_counted(scripted: Qt45) -> None:
    vec_add = scripted.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
    vec_add([1], [2])
    vec_add([1], [2])
    scripted.store.flush()

    record = scripted.store.get_by_id(vec_add.record.id or -1)

    assert record is not None and record.call_count == 2


def test_memory_limit(db_path: Path) -> None:
    from qt45 import Limits

    config = make_config(db_path, limits=Limits(memory_bytes=2 * 2**20))
    with Qt45(config, model=ScriptedModel(), reporter=Reporter()) as lib:
        vec_add = lib.array_function("vec_add_f32", ADD_DESCRIPTION, 2)
        with pytest.raises(
            TrapError, match="over the memory limit of 2 MiB; raise it with --memory-mb"
        ):
            vec_add.inputs(1_000_000)
        assert vec_add([1, 2], [3, 4]).tolist() == [4, 6]
