"""Requests a user can make and the results they get back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .signature import Scalar, Signature, Tier, show_value
from .store import FunctionRecord


@dataclass(frozen=True)
class ScalarRequest:
    """``add "adds two integers" (i32, i32) -> i32 : 10, 20``."""

    name: str
    description: str
    signature: Signature
    args: tuple[Scalar, ...] = ()
    tier: Tier = Tier.SCALAR

    @property
    def signature_text(self) -> str:
        return str(self.signature)

    def describe(self) -> str:
        args = ", ".join(repr(a) if isinstance(a, float) else show_value(a) for a in self.args)
        return f"Request: {self.name} ({self.description}) args: [{args}]"


@dataclass(frozen=True)
class ArrayRequest:
    """``simd vec_add_f32 "element-wise add" [1,2,3,4] [5,6,7,8]`` (SIMD or GPU tier)."""

    tier: Tier
    name: str
    description: str
    inputs: tuple[Any, ...]
    """One f32 array (list of floats or numpy array) per input, all of one length."""

    @property
    def signature_text(self) -> str:
        return array_signature(len(self.inputs))

    def describe(self) -> str:
        return f"Request [{self.tier}]: {self.name} ({self.description}) inputs: {len(self.inputs)}"


def array_signature(input_count: int) -> str:
    """Signature text of an array function with ``input_count`` inputs, e.g. ``(f32[], f32[]) -> f32[]``."""
    return "(" + ", ".join(["f32[]"] * input_count) + ") -> f32[]"


Request = ScalarRequest | ArrayRequest


@dataclass
class CallResult:
    """The outcome of a request: the values, the function that produced them and how it was found."""

    values: list[Any]
    function: FunctionRecord
    source: str
    """``cache``, ``alias``, ``search`` or ``generated``."""
    verified: bool
    llm_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def value(self) -> Any:
        """The single result, or None for a function with no results."""
        if not self.values:
            return None
        return self.values[0] if len(self.values) == 1 else tuple(self.values)
