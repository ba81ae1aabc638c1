"""Value types, signatures, compute tiers and argument conversion."""

from __future__ import annotations

import enum
import functools
import math
import numbers
import operator
import re
import reprlib
import struct
from dataclasses import dataclass

from .errors import ArgumentError, ParseError

VALUE_TYPES = ("i32", "i64", "f32", "f64")
INT_RANGES = {"i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1)}
F32_MAX = 3.4028234663852886e38

Scalar = int | float


class Tier(enum.StrEnum):
    """Compute tier of a function; each tier has its own calling convention."""

    SCALAR = "scalar"
    SIMD = "simd"
    GPU = "gpu"


@dataclass(frozen=True)
class Signature:
    """A scalar function type such as ``(i32, i32) -> i32``."""

    params: tuple[str, ...]
    results: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Signature:
        """Parse ``(i32, f64) -> f64``, ``() -> i32`` or ``(i32) -> (i32, i32)``.

        Raises ParseError naming the text and the expected form.
        """
        return _parse_signature(text)

    def __str__(self) -> str:
        params = ", ".join(self.params)
        if len(self.results) == 1:
            return f"({params}) -> {self.results[0]}"
        return f"({params}) -> ({', '.join(self.results)})"


@functools.lru_cache(maxsize=1024)
def _parse_signature(text: str) -> Signature:
    # Cached: the request path parses the same few signature texts again and again.
    match = re.fullmatch(r"\s*\(([^()]*)\)\s*(?:->\s*(\(([^()]*)\)|[a-z0-9]+))?\s*", text)
    if match is None:
        raise ParseError(
            f"invalid signature {text!r}: expected a form like '(i32, i32) -> i32' or '() -> f64'"
        )
    params = _split_types(match.group(1), text)
    if match.group(3) is not None:
        results = _split_types(match.group(3), text)
    elif match.group(2) is not None:
        results = _split_types(match.group(2), text)
    else:
        results = ()
    return Signature(params, results)


def _split_types(part: str, text: str) -> tuple[str, ...]:
    names = [piece.strip() for piece in part.split(",")] if part.strip() else []
    for name in names:
        if name not in VALUE_TYPES:
            raise ParseError(
                f"invalid type {name!r} in signature {text!r}: use one of i32, i64, f32, f64"
            )
    return tuple(names)


def convert_argument(value: object, value_type: str, position: int) -> Scalar:
    """Convert one call argument to the Python value wasmtime expects for ``value_type``.

    Integers (numpy integers too) must be in the
    signed range of the type: -2**31..2**31-1 for i32, -2**63..2**63-1 for
    i64, with no wrap-around. Bools and all floats, even 3.0, are rejected for
    integer types. Float types accept ints, floats (numpy floats too), NaN
    and infinities. f32 values are rounded to the nearest float32, and finite
    values beyond the float32 range are rejected. Raises ArgumentError naming
    the position.
    """
    label = f"argument {position} ({value_type})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        number = _as_number(value)
        if number is None:
            raise ArgumentError(f"{label} must be a number, got {show_value(value)}")
        value = number

    if value_type in INT_RANGES:
        if isinstance(value, float):
            raise ArgumentError(
                f"{label} must be an integer, got {value!r}; write it without a fraction"
            )
        low, high = INT_RANGES[value_type]
        if not low <= value <= high:
            raise ArgumentError(
                f"{label} is out of range: {show_value(value)} is not in [{low}, {high}]"
            )
        return int(value)

    number = float(value)
    if value_type == "f32":
        if math.isfinite(number) and abs(number) > F32_MAX:
            raise ArgumentError(f"{label} is out of range: {value!r} exceeds the float32 maximum")
        return struct.unpack("<f", struct.pack("<f", number))[0]
    return number


def _as_number(value: object) -> int | float | None:
    """Return numpy-style numbers as int or float; None for bools and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    return float(value)


def show_value(value: object) -> str:
    """Return a short printable form of a value for messages, even for huge integers."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length():,} bits"
    return reprlib.repr(value)


def convert_arguments(
    args: list[Scalar] | tuple[Scalar, ...], signature: Signature
) -> list[Scalar]:
    """Check the argument count and convert every argument; raises ArgumentError."""
    if len(args) != len(signature.params):
        raise ArgumentError(
            f"expected {len(signature.params)} argument(s) for {signature}, got {len(args)}"
        )
    return [
        convert_argument(arg, kind, i + 1)
        for i, (arg, kind) in enumerate(zip(args, signature.params, strict=True))
    ]


def format_value(value: Scalar, value_type: str | None = None) -> str:
    """Format a result the way the REPL prints it: ints plain, floats shortest round-trip."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value_type == "f32":
        import numpy as np

        text = repr(float(np.float32(value)))
        shortest = str(np.float32(value))
        text = shortest if float(np.float32(shortest)) == float(np.float32(value)) else text
    else:
        text = repr(value)
    return text[:-2] if text.endswith(".0") else text
