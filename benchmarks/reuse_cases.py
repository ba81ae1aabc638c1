"""Labelled cases of the reuse benchmark: library, request, and the right decision.

``expected`` is the stored function that should serve the request, or None
when the request must be generated because the library has no function
doing that job (often it has the near-opposite). ``kind`` groups the cases:

- ``paraphrase``: the same job described in other words or with a synonym;
- ``naming``: another naming style (camelCase, abbreviations such as ``dec``);
- ``opposite``: the library contains only a near-opposite, so reuse is wrong;
- ``unrelated``: the library contains only related but different functions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    library: str
    name: str
    description: str
    intent: str
    """The job the request is for: a key of reuse_library.INTENTS."""
    expected: str | None
    kind: str


def _pair(
    first: str,
    second: str,
    first_requests: list[tuple[str, str, str]],
    second_requests: list[tuple[str, str, str]],
) -> list[Case]:
    """Cases for a near-opposite pair: library A contains ``first``, library B ``second``.

    Every request is asked of both libraries: reuse where its own job is
    stored, generation where only the opposite is.
    """
    cases = []
    for name, description, kind in first_requests:
        cases.append(Case("A", name, description, first, first, kind))
        cases.append(Case("B", name, description, first, None, "opposite"))
    for name, description, kind in second_requests:
        cases.append(Case("B", name, description, second, second, kind))
        cases.append(Case("A", name, description, second, None, "opposite"))
    return cases


CASES: list[Case] = [
    *_pair(
        "add",
        "subtract",
        [
            ("sum", "adds two numbers together", "paraphrase"),
            ("plus", "returns a plus b", "paraphrase"),
            ("addInts", "add two integers and return the total", "naming"),
        ],
        [
            ("minus", "returns a minus b", "paraphrase"),
            ("sub", "subtract b from a", "naming"),
            (
                "difference",
                "computes the difference of two integers, first minus second",
                "paraphrase",
            ),
        ],
    ),
    *_pair(
        "max",
        "min",
        [
            ("maximum", "returns the greater of two integers", "paraphrase"),
            ("largerOf", "picks the bigger of two numbers", "naming"),
        ],
        [
            ("minimum", "returns the lesser of two integers", "paraphrase"),
            ("smallerOf", "picks the smaller of two numbers", "naming"),
        ],
    ),
    *_pair(
        "double",
        "halve",
        [
            ("times_two", "multiplies a number by 2", "paraphrase"),
            ("dbl", "doubles an integer", "naming"),
        ],
        [
            ("half", "divides an integer by 2, truncating toward zero", "paraphrase"),
            ("divideByTwo", "integer division by two", "naming"),
        ],
    ),
    *_pair(
        "floor",
        "ceil",
        [
            ("round_down", "rounds a float down to an integral value", "paraphrase"),
            ("floorF64", "floor of a double", "naming"),
        ],
        [
            ("round_up", "rounds a float up to an integral value", "paraphrase"),
            ("ceiling", "the smallest integral value not less than x", "paraphrase"),
        ],
    ),
    *_pair(
        "sin",
        "cos",
        [
            ("sine", "sine of x in radians", "paraphrase"),
            ("calcSin", "calculates sin(x)", "naming"),
        ],
        [
            ("cosine", "cosine of x in radians", "paraphrase"),
            ("calcCos", "calculates cos(x)", "naming"),
        ],
    ),
    *_pair(
        "sort3_asc",
        "sort3_desc",
        [("sort_three_ascending", "orders three integers from smallest to largest", "paraphrase")],
        [("sort_three_descending", "orders three integers from largest to smallest", "paraphrase")],
    ),
    *_pair(
        "sort3_asc",
        "sort3_desc",
        [("sortAsc3", "sort 3 ints ascending", "naming")],
        [("sortDesc3", "sort 3 ints descending", "naming")],
    ),
    *_pair(
        "is_even",
        "is_odd",
        [
            ("isEven", "checks whether an integer is even, returning 1 or 0", "naming"),
            ("even", "returns 1 for even numbers and 0 otherwise", "paraphrase"),
        ],
        [
            ("isOdd", "checks whether an integer is odd, returning 1 or 0", "naming"),
            ("odd", "returns 1 for odd numbers and 0 otherwise", "paraphrase"),
        ],
    ),
    *_pair(
        "celsius_to_fahrenheit",
        "fahrenheit_to_celsius",
        [
            ("c_to_f", "Celsius to Fahrenheit conversion", "naming"),
            ("celsiusToFahrenheit", "convert degrees Celsius into degrees Fahrenheit", "naming"),
        ],
        [
            ("f_to_c", "Fahrenheit to Celsius conversion", "naming"),
            ("fahrenheitToCelsius", "convert degrees Fahrenheit into degrees Celsius", "naming"),
        ],
    ),
    *_pair(
        "increment",
        "decrement",
        [
            ("inc", "increments an integer by one", "naming"),
            ("plus_one", "returns x + 1", "paraphrase"),
        ],
        [
            ("dec", "decrements an integer by one", "naming"),
            ("minus_one", "returns x - 1", "paraphrase"),
        ],
    ),
    *_pair(
        "to_radians",
        "to_degrees",
        [
            ("deg2rad", "converts degrees to radians", "naming"),
            ("degreesToRadians", "convert an angle in degrees into radians", "naming"),
        ],
        [
            ("rad2deg", "converts radians to degrees", "naming"),
            ("radiansToDegrees", "convert an angle in radians into degrees", "naming"),
        ],
    ),
    # Functions stored in both libraries, requested under other names.
    Case(
        "A", "product", "returns the product of two integers", "multiply", "multiply", "paraphrase"
    ),
    Case("B", "mul", "multiply a by b", "multiply", "multiply", "naming"),
    Case("A", "absolute_value", "absolute value of x", "abs", "abs", "paraphrase"),
    Case("B", "magnitude", "the distance of an integer from zero", "abs", "abs", "paraphrase"),
    Case("A", "negative", "returns the negation of x", "negate", "negate", "paraphrase"),
    Case("B", "flip_sign", "changes the sign of an integer", "negate", "negate", "paraphrase"),
    Case("A", "sqr", "square of an integer", "square", "square", "naming"),
    Case("B", "squared", "multiplies an integer by itself", "square", "square", "paraphrase"),
    Case("A", "fact", "n factorial, the product of 1 to n", "factorial", "factorial", "naming"),
    Case(
        "B", "fib", "the nth number of the Fibonacci sequence", "fibonacci", "fibonacci", "naming"
    ),
    Case(
        "A",
        "greatest_common_divisor",
        "largest integer dividing both a and b",
        "gcd",
        "gcd",
        "paraphrase",
    ),
    Case("B", "pow", "integer exponentiation: base to the power exp", "power", "power", "naming"),
    Case(
        "A",
        "isPrime",
        "checks if an integer is prime (1) or not (0)",
        "is_prime",
        "is_prime",
        "naming",
    ),
    Case(
        "B",
        "count_bits",
        "number of 1 bits in the binary representation",
        "popcount",
        "popcount",
        "paraphrase",
    ),
    Case(
        "A",
        "area_of_circle",
        "area of a circle with radius r",
        "circle_area",
        "circle_area",
        "paraphrase",
    ),
    Case("B", "mean", "arithmetic mean of two values", "average", "average", "paraphrase"),
    Case(
        "A",
        "hypot",
        "length of the hypotenuse of a right triangle with legs a and b",
        "hypotenuse",
        "hypotenuse",
        "naming",
    ),
    # Jobs that no library contains; related functions with the same signature are stored.
    Case("A", "triple", "multiplies an integer by three", "triple", None, "unrelated"),
    Case("B", "triple", "multiplies an integer by three", "triple", None, "unrelated"),
    Case("A", "cube", "cubes an integer", "cube", None, "unrelated"),
    Case("B", "lcm", "least common multiple of two integers", "lcm", None, "unrelated"),
    Case("A", "modulo", "remainder of a divided by b", "modulo", None, "unrelated"),
    Case("B", "sign", "sign of an integer: -1, 0 or 1", "sign", None, "unrelated"),
    Case("A", "round", "rounds a number to the nearest integer", "round", None, "unrelated"),
    Case("A", "tan", "tangent of an angle in radians", "tan", None, "unrelated"),
    Case("B", "distance", "absolute difference between two numbers", "distance", None, "unrelated"),
]
