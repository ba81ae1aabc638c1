"""Parsing of REPL lines: requests and dot-commands.

Only ParseError escapes from ``parse_line``; its message shows the expected form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ParseError
from .request import ArrayRequest, ScalarRequest
from .signature import Signature, Tier

MAX_LINE_CHARS = 1_000_000
MAX_NAME_CHARS = 64
MAX_INT_DIGITS = 100
"""Longer decimal integers are rejected here; Python's int() refuses beyond 4300 digits."""
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SCALAR_FORM = 'name "description" (i32, i32) -> i32 : 10, 20'
ARRAY_FORM = 'simd name "description" [1, 2, 3, 4] [5, 6, 7, 8]   (or gpu ...)'
USAGE = f"expected a request like\n  {SCALAR_FORM}\n  {ARRAY_FORM}\nor a dot-command such as .help"


@dataclass(frozen=True)
class Command:
    """A dot-command such as ``.info add``."""

    name: str
    args: tuple[str, ...] = ()


Parsed = ScalarRequest | ArrayRequest | Command | None


def parse_line(line: str) -> Parsed:
    """Parse one REPL line; returns None for a blank line or a comment (``#``)."""
    if len(line) > MAX_LINE_CHARS:
        raise ParseError(
            f"the line is {len(line):,} characters long; the maximum is {MAX_LINE_CHARS:,}"
        )
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("."):
        return _parse_command(text)
    first = text.split(None, 1)[0]
    if first in ("simd", "gpu") and len(text.split(None, 1)) > 1:
        rest = text.split(None, 1)[1]
        if not rest.lstrip().startswith(('"', "(", ":")):
            return _parse_array(Tier(first), rest)
    return _parse_scalar(text)


def _parse_command(text: str) -> Command:
    parts = text.split()
    name = parts[0][1:].lower()
    if not name:
        raise ParseError("a dot-command needs a name, e.g. .help")
    return Command(name, tuple(parts[1:]))


def _take_name(text: str, form: str) -> tuple[str, str]:
    match = NAME_PATTERN.match(text)
    if match is None:
        first_word = text.split(None, 1)[0] if text.split() else text
        raise ParseError(
            f"invalid function name {first_word!r}: use letters, digits and _; {USAGE}"
        )
    name = match.group(0)
    if len(name) > MAX_NAME_CHARS:
        raise ParseError(f"function name {name[:20]!r}… is longer than {MAX_NAME_CHARS} characters")
    rest = text[match.end() :]
    if rest and not rest[0].isspace():
        raise ParseError(f"invalid function name {text.split(None, 1)[0]!r}: {USAGE}")
    return name, rest.lstrip()


def _take_description(text: str, name: str) -> tuple[str, str]:
    if not text.startswith('"'):
        raise ParseError(f"missing the quoted description after {name!r}; {USAGE}")
    chars: list[str] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            description = "".join(chars).strip()
            if not description:
                raise ParseError(
                    f"the description of {name!r} is empty; say what the function does"
                )
            return description, text[i + 1 :].lstrip()
        chars.append(char)
        i += 1
    raise ParseError(f'the description of {name!r} has no closing quote (")')


def _parse_scalar(text: str) -> ScalarRequest:
    name, rest = _take_name(text, SCALAR_FORM)
    description, rest = _take_description(rest, name)
    if not rest.startswith("("):
        raise ParseError(
            f"missing the signature after the description, e.g. (i32, i32) -> i32; {USAGE}"
        )
    signature_text, _, args_text = rest.partition(":")
    signature = Signature.parse(signature_text)
    args = _parse_numbers(args_text, "argument") if args_text.strip() else ()
    return ScalarRequest(name, description, signature, args)


def _parse_array(tier: Tier, text: str) -> ArrayRequest:
    name, rest = _take_name(text, ARRAY_FORM)
    description, rest = _take_description(rest, name)
    arrays: list[tuple[float, ...]] = []
    while rest:
        if not rest.startswith("["):
            raise ParseError(f"expected an array like [1, 2, 3] but found {rest[:20]!r}; {USAGE}")
        close = rest.find("]")
        if close == -1:
            raise ParseError("an array has no closing bracket (])")
        values = _parse_numbers(rest[1:close], "array element") if rest[1:close].strip() else ()
        arrays.append(tuple(float(v) for v in values))
        rest = rest[close + 1 :].lstrip().lstrip(",").lstrip()
    if not arrays:
        raise ParseError(f"{tier} requests need at least one array input; {USAGE}")
    lengths = {len(array) for array in arrays}
    if len(lengths) > 1:
        raise ParseError(
            f"all input arrays must have the same length, got lengths {sorted(lengths)}"
        )
    return ArrayRequest(tier, name, description, tuple(arrays))


_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)",
    re.IGNORECASE,
)


def _parse_numbers(text: str, label: str) -> tuple[int | float, ...]:
    values: list[int | float] = []
    for piece in text.split(","):
        token = piece.strip()
        if not _NUMBER.fullmatch(token):
            raise ParseError(
                f"invalid {label} {token!r}: expected numbers separated by commas, e.g. 10, 20 or 2.5"
            )
        values.append(_number(token))
    return tuple(values)


def _number(token: str) -> int | float:
    lower = token.lower()
    sign = -1 if lower.startswith("-") else 1
    body = lower.lstrip("+-")
    if body.startswith("0x"):
        return sign * int(body, 16)
    if body.startswith("inf"):
        return sign * math.inf
    if body == "nan":
        return math.nan
    if re.fullmatch(r"\d+", body):
        if len(body) > MAX_INT_DIGITS:
            raise ParseError(
                f"the integer {token[:20]}… has {len(body):,} digits; i64 values have at most 19"
            )
        return sign * int(body)
    value = float(token)
    if math.isinf(value):
        raise ParseError(
            f"the number {token[:20]} is out of range for a 64-bit float; write inf for infinity"
        )
    return value
