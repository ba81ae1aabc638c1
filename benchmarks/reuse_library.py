"""The functions of the reuse benchmark: WAT sources and Python reference implementations.

Each entry is a real module that the benchmark compiles with wasmtime and
stores. The reference implementation is what the simulated model uses to
write test cases for a request with that intent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

I32_2 = "(i32, i32) -> i32"
I32_1 = "(i32) -> i32"
F64_1 = "(f64) -> f64"
F64_2 = "(f64, f64) -> f64"
I32_3 = "(i32, i32, i32) -> (i32, i32, i32)"


@dataclass(frozen=True)
class Intent:
    """One job a function can do: its stored name, description, signature, WAT and reference."""

    name: str
    description: str
    signature: str
    body: str
    """The function's WAT after ``(func (export "NAME") ...``: params, results, locals and code."""
    reference: Callable[..., Any]
    inputs: tuple[tuple[Any, ...], ...] = ()

    def wat(self) -> str:
        return f'(module (func (export "{self.name}") {self.body}))'


def _wrap(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _trunc_div(a: int, b: int) -> int:
    return int(a / b)


def _factorial(n: int) -> int:
    return _wrap(math.factorial(n))


def _fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return _wrap(a)


def _is_prime(n: int) -> int:
    if n < 2:
        return 0
    return int(all(n % d for d in range(2, math.isqrt(n) + 1)))


def _sort3(descending: bool) -> Callable[[int, int, int], list[int]]:
    return lambda a, b, c: sorted([a, b, c], reverse=descending)


I32_PAIRS = ((7, 3), (-4, 9), (0, 5), (12, 12), (100, -25))
I32_ONES = ((5,), (-8,), (0,), (9,), (100,))
F64_ONES = ((0.5,), (-1.25,), (2.0,), (0.0,), (3.7,))
F64_PAIRS = ((1.5, 2.0), (-3.0, 4.5), (0.0, 7.25), (6.0, 8.0))
I32_TRIPLES = ((3, 1, 2), (9, -4, 0), (5, 5, 1), (-2, 8, 7))
SMALL_NATURALS = ((0,), (1,), (5,), (7,), (10,))
NATURAL_PAIRS = ((12, 18), (7, 5), (100, 75), (9, 27))

_SWAP = (
    "(local.set $t (local.get {x})) (local.set {x} (local.get {y})) (local.set {y} (local.get $t))"
)


def _sort3_body(compare: str) -> str:
    steps = []
    for x, y in (("$a", "$b"), ("$b", "$c"), ("$a", "$b")):
        swap = _SWAP.format(x=x, y=y)
        steps.append(f"(if ({compare} (local.get {x}) (local.get {y})) (then {swap}))")
    return (
        "(param $a i32) (param $b i32) (param $c i32) (result i32 i32 i32) (local $t i32) "
        + " ".join(steps)
        + " (local.get $a) (local.get $b) (local.get $c)"
    )


def _series_body(first: str, start: int) -> str:
    """Sum of the Taylor series of sin (start 0, first term x) or cos (start -1, first term 1)."""
    return (
        "(param $x f64) (result f64) (local $term f64) (local $sum f64) (local $k i32) "
        f"(local.set $term {first}) (local.set $sum (local.get $term)) (local.set $k (i32.const 1)) "
        "(block $done (loop $next "
        "(br_if $done (i32.gt_s (local.get $k) (i32.const 24))) "
        "(local.set $term (f64.div (f64.mul (local.get $term) "
        "(f64.neg (f64.mul (local.get $x) (local.get $x)))) "
        f"(f64.convert_i32_s (i32.mul (i32.add (i32.mul (i32.const 2) (local.get $k)) (i32.const {start - 1})) "
        f"(i32.add (i32.mul (i32.const 2) (local.get $k)) (i32.const {start})))))) "
        "(local.set $sum (f64.add (local.get $sum) (local.get $term))) "
        "(local.set $k (i32.add (local.get $k) (i32.const 1))) (br $next))) (local.get $sum)"
    )


_LOOP_PRODUCT = (
    "(param $n i32) (result i32) (local $r i32) (local.set $r (i32.const 1)) "
    "(block $done (loop $next (br_if $done (i32.le_s (local.get $n) (i32.const 1))) "
    "(local.set $r (i32.mul (local.get $r) (local.get $n))) "
    "(local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $next))) (local.get $r)"
)
_FIBONACCI = (
    "(param $n i32) (result i32) (local $a i32) (local $b i32) (local $t i32) "
    "(local.set $b (i32.const 1)) "
    "(block $done (loop $next (br_if $done (i32.le_s (local.get $n) (i32.const 0))) "
    "(local.set $t (i32.add (local.get $a) (local.get $b))) (local.set $a (local.get $b)) "
    "(local.set $b (local.get $t)) (local.set $n (i32.sub (local.get $n) (i32.const 1))) "
    "(br $next))) (local.get $a)"
)
_GCD = (
    "(param $a i32) (param $b i32) (result i32) (local $t i32) "
    "(block $done (loop $next (br_if $done (i32.eqz (local.get $b))) "
    "(local.set $t (i32.rem_u (local.get $a) (local.get $b))) (local.set $a (local.get $b)) "
    "(local.set $b (local.get $t)) (br $next))) (local.get $a)"
)
_POWER = (
    "(param $base i32) (param $e i32) (result i32) (local $r i32) (local.set $r (i32.const 1)) "
    "(block $done (loop $next (br_if $done (i32.le_s (local.get $e) (i32.const 0))) "
    "(local.set $r (i32.mul (local.get $r) (local.get $base))) "
    "(local.set $e (i32.sub (local.get $e) (i32.const 1))) (br $next))) (local.get $r)"
)
_IS_PRIME = (
    "(param $n i32) (result i32) (local $d i32) "
    "(if (i32.lt_s (local.get $n) (i32.const 2)) (then (return (i32.const 0)))) "
    "(local.set $d (i32.const 2)) "
    "(block $done (loop $next "
    "(br_if $done (i32.gt_s (i32.mul (local.get $d) (local.get $d)) (local.get $n))) "
    "(if (i32.eqz (i32.rem_s (local.get $n) (local.get $d))) (then (return (i32.const 0)))) "
    "(local.set $d (i32.add (local.get $d) (i32.const 1))) (br $next))) (i32.const 1)"
)

BINARY_I32 = "(param $a i32) (param $b i32) (result i32) "
UNARY_I32 = "(param $x i32) (result i32) "
UNARY_F64 = "(param $x f64) (result f64) "
BINARY_F64 = "(param $a f64) (param $b f64) (result f64) "

INTENTS: dict[str, Intent] = {
    intent.name: intent
    for intent in [
        # Near-opposite pairs: the first of each pair is in library A, the second in B.
        Intent(
            "add",
            "adds two integers",
            I32_2,
            BINARY_I32 + "(i32.add (local.get $a) (local.get $b))",
            lambda a, b: _wrap(a + b),
            I32_PAIRS,
        ),
        Intent(
            "subtract",
            "subtracts the second integer from the first",
            I32_2,
            BINARY_I32 + "(i32.sub (local.get $a) (local.get $b))",
            lambda a, b: _wrap(a - b),
            I32_PAIRS,
        ),
        Intent(
            "max",
            "returns the larger of two integers",
            I32_2,
            BINARY_I32
            + "(select (local.get $a) (local.get $b) (i32.gt_s (local.get $a) (local.get $b)))",
            max,
            I32_PAIRS,
        ),
        Intent(
            "min",
            "returns the smaller of two integers",
            I32_2,
            BINARY_I32
            + "(select (local.get $a) (local.get $b) (i32.lt_s (local.get $a) (local.get $b)))",
            min,
            I32_PAIRS,
        ),
        Intent(
            "double",
            "multiplies an integer by two",
            I32_1,
            UNARY_I32 + "(i32.mul (local.get $x) (i32.const 2))",
            lambda x: 2 * x,
            I32_ONES,
        ),
        Intent(
            "halve",
            "divides an integer by two, rounding toward zero",
            I32_1,
            UNARY_I32 + "(i32.div_s (local.get $x) (i32.const 2))",
            lambda x: _trunc_div(x, 2),
            I32_ONES,
        ),
        Intent(
            "floor",
            "rounds a number down to the nearest integer",
            F64_1,
            UNARY_F64 + "(f64.floor (local.get $x))",
            lambda x: float(math.floor(x)),
            F64_ONES,
        ),
        Intent(
            "ceil",
            "rounds a number up to the nearest integer",
            F64_1,
            UNARY_F64 + "(f64.ceil (local.get $x))",
            lambda x: float(math.ceil(x)),
            F64_ONES,
        ),
        Intent(
            "sin",
            "computes the sine of an angle in radians",
            F64_1,
            _series_body("(local.get $x)", 1),
            math.sin,
            F64_ONES,
        ),
        Intent(
            "cos",
            "computes the cosine of an angle in radians",
            F64_1,
            _series_body("(f64.const 1)", 0),
            math.cos,
            F64_ONES,
        ),
        Intent(
            "sort3_asc",
            "sorts three integers in ascending order",
            I32_3,
            _sort3_body("i32.gt_s"),
            _sort3(False),
            I32_TRIPLES,
        ),
        Intent(
            "sort3_desc",
            "sorts three integers in descending order",
            I32_3,
            _sort3_body("i32.lt_s"),
            _sort3(True),
            I32_TRIPLES,
        ),
        Intent(
            "is_even",
            "returns 1 if the integer is even, else 0",
            I32_1,
            UNARY_I32 + "(i32.eqz (i32.and (local.get $x) (i32.const 1)))",
            lambda x: int(x % 2 == 0),
            I32_ONES,
        ),
        Intent(
            "is_odd",
            "returns 1 if the integer is odd, else 0",
            I32_1,
            UNARY_I32 + "(i32.and (local.get $x) (i32.const 1))",
            lambda x: int(x % 2 != 0),
            I32_ONES,
        ),
        Intent(
            "celsius_to_fahrenheit",
            "converts a temperature from Celsius to Fahrenheit",
            F64_1,
            UNARY_F64 + "(f64.add (f64.mul (local.get $x) (f64.const 1.8)) (f64.const 32))",
            lambda x: x * 1.8 + 32,
            F64_ONES,
        ),
        Intent(
            "fahrenheit_to_celsius",
            "converts a temperature from Fahrenheit to Celsius",
            F64_1,
            UNARY_F64 + "(f64.div (f64.sub (local.get $x) (f64.const 32)) (f64.const 1.8))",
            lambda x: (x - 32) / 1.8,
            F64_ONES,
        ),
        Intent(
            "increment",
            "adds one to an integer",
            I32_1,
            UNARY_I32 + "(i32.add (local.get $x) (i32.const 1))",
            lambda x: x + 1,
            I32_ONES,
        ),
        Intent(
            "decrement",
            "subtracts one from an integer",
            I32_1,
            UNARY_I32 + "(i32.sub (local.get $x) (i32.const 1))",
            lambda x: x - 1,
            I32_ONES,
        ),
        Intent(
            "to_radians",
            "converts an angle from degrees to radians",
            F64_1,
            UNARY_F64 + "(f64.mul (local.get $x) (f64.const 0.017453292519943295))",
            math.radians,
            F64_ONES,
        ),
        Intent(
            "to_degrees",
            "converts an angle from radians to degrees",
            F64_1,
            UNARY_F64 + "(f64.mul (local.get $x) (f64.const 57.29577951308232))",
            math.degrees,
            F64_ONES,
        ),
        # In both libraries.
        Intent(
            "multiply",
            "multiplies two integers",
            I32_2,
            BINARY_I32 + "(i32.mul (local.get $a) (local.get $b))",
            lambda a, b: _wrap(a * b),
            I32_PAIRS,
        ),
        Intent(
            "abs",
            "returns the absolute value of an integer",
            I32_1,
            UNARY_I32
            + "(select (local.get $x) (i32.sub (i32.const 0) (local.get $x)) (i32.ge_s (local.get $x) (i32.const 0)))",
            abs,
            I32_ONES,
        ),
        Intent(
            "negate",
            "negates an integer",
            I32_1,
            UNARY_I32 + "(i32.sub (i32.const 0) (local.get $x))",
            lambda x: -x,
            I32_ONES,
        ),
        Intent(
            "square",
            "squares an integer",
            I32_1,
            UNARY_I32 + "(i32.mul (local.get $x) (local.get $x))",
            lambda x: x * x,
            I32_ONES,
        ),
        Intent(
            "factorial",
            "computes the factorial of n",
            I32_1,
            _LOOP_PRODUCT,
            _factorial,
            SMALL_NATURALS,
        ),
        Intent(
            "fibonacci",
            "returns the n-th Fibonacci number",
            I32_1,
            _FIBONACCI,
            _fibonacci,
            SMALL_NATURALS,
        ),
        Intent(
            "gcd",
            "computes the greatest common divisor of two integers",
            I32_2,
            _GCD,
            math.gcd,
            NATURAL_PAIRS,
        ),
        Intent(
            "power",
            "raises an integer base to a non-negative integer exponent",
            I32_2,
            _POWER,
            lambda b, e: _wrap(b**e),
            ((2, 10), (3, 4), (-2, 3), (7, 0)),
        ),
        Intent(
            "is_prime",
            "returns 1 if n is a prime number, else 0",
            I32_1,
            _IS_PRIME,
            _is_prime,
            ((2,), (9,), (13,), (1,), (97,)),
        ),
        Intent(
            "popcount",
            "counts the set bits of an integer",
            I32_1,
            UNARY_I32 + "(i32.popcnt (local.get $x))",
            lambda x: bin(x % 2**32).count("1"),
            I32_ONES,
        ),
        Intent(
            "circle_area",
            "computes the area of a circle from its radius",
            F64_1,
            UNARY_F64
            + "(f64.mul (f64.const 3.141592653589793) (f64.mul (local.get $x) (local.get $x)))",
            lambda r: math.pi * r * r,
            F64_ONES,
        ),
        Intent(
            "average",
            "returns the mean of two numbers",
            F64_2,
            BINARY_F64 + "(f64.div (f64.add (local.get $a) (local.get $b)) (f64.const 2))",
            lambda a, b: (a + b) / 2,
            F64_PAIRS,
        ),
        Intent(
            "hypotenuse",
            "computes the length of the hypotenuse from the two legs of a right triangle",
            F64_2,
            BINARY_F64
            + "(f64.sqrt (f64.add (f64.mul (local.get $a) (local.get $a)) (f64.mul (local.get $b) (local.get $b))))",
            math.hypot,
            F64_PAIRS,
        ),
        # In neither library, so never compiled: requests for these must be generated.
        Intent("triple", "multiplies an integer by three", I32_1, "", lambda x: 3 * x, I32_ONES),
        Intent("cube", "cubes an integer", I32_1, "", lambda x: x**3, I32_ONES),
        Intent(
            "lcm",
            "computes the least common multiple of two integers",
            I32_2,
            "",
            math.lcm,
            NATURAL_PAIRS,
        ),
        Intent(
            "modulo",
            "returns the remainder of dividing the first integer by the second",
            I32_2,
            "",
            lambda a, b: int(math.fmod(a, b)),
            ((7, 3), (20, 6), (-7, 3), (9, 9)),
        ),
        Intent(
            "sign",
            "returns -1, 0 or 1 for the sign of an integer",
            I32_1,
            "",
            lambda x: (x > 0) - (x < 0),
            I32_ONES,
        ),
        Intent(
            "round",
            "rounds a number to the nearest integer",
            F64_1,
            "",
            lambda x: float(round(x)),
            ((0.4,), (-1.6,), (2.2,), (3.7,)),
        ),
        Intent(
            "tan",
            "computes the tangent of an angle in radians",
            F64_1,
            "",
            math.tan,
            ((0.5,), (-1.0,), (0.25,), (1.2,)),
        ),
        Intent(
            "distance",
            "computes the difference between two numbers as an absolute value",
            F64_2,
            "",
            lambda a, b: abs(a - b),
            F64_PAIRS,
        ),
    ]
}

PAIRS = [
    ("add", "subtract"),
    ("max", "min"),
    ("double", "halve"),
    ("floor", "ceil"),
    ("sin", "cos"),
    ("sort3_asc", "sort3_desc"),
    ("is_even", "is_odd"),
    ("celsius_to_fahrenheit", "fahrenheit_to_celsius"),
    ("increment", "decrement"),
    ("to_radians", "to_degrees"),
]
SHARED = [
    "multiply",
    "abs",
    "negate",
    "square",
    "factorial",
    "fibonacci",
    "gcd",
    "power",
    "is_prime",
    "popcount",
    "circle_area",
    "average",
    "hypotenuse",
]
LIBRARIES = {
    "A": [first for first, _ in PAIRS] + SHARED,
    "B": [second for _, second in PAIRS] + SHARED,
}
"""Library A contains one side of every near-opposite pair, library B the other."""
