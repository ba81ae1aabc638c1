"""Cleaning of model replies: from chatty text to candidate WAT modules."""

from __future__ import annotations

import re

MAX_REPLY_CHARS = 200_000
"""Longer replies are cut to this size before scanning; a real module is far smaller."""

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def strip_thinking(reply: str) -> str:
    """Remove ``<think>…</think>`` blocks; an unclosed block hides everything after it."""
    text = _THINK_BLOCK.sub("", reply[:MAX_REPLY_CHARS])
    opened = text.lower().find("<think>")
    if opened != -1:
        text = text[:opened]
    closed = text.lower().rfind("</think>")
    if closed != -1:
        text = text[closed + len("</think>") :]
    return text


def fenced_blocks(text: str) -> list[str]:
    """Return the bodies of markdown code fences, in order (an unclosed fence runs to the end)."""
    return [match.group(2) for match in _FENCE.finditer(text)]


def extract_modules(reply: str) -> list[str]:
    """Return every ``(module …)`` form found in a reply, best candidates first.

    Fenced blocks are searched before the surrounding prose, and each
    candidate is a balanced s-expression, so prose before or after a module
    and several modules in one reply are handled. Duplicates are dropped.
    """
    text = strip_thinking(reply)
    sources = [*fenced_blocks(text), text]
    found: list[str] = []
    for source in sources:
        for module in _balanced_modules(source):
            if module not in found:
                found.append(module)
    return found


def _balanced_modules(text: str) -> list[str]:
    modules = []
    for match in re.finditer(r"\(\s*module\b", text):
        end = _matching_paren(text, match.start())
        if end is not None:
            modules.append(text[match.start() : end + 1].strip())
    return _drop_nested(modules)


def _drop_nested(modules: list[str]) -> list[str]:
    return [m for m in modules if not any(m != other and m in other for other in modules)]


def _matching_paren(text: str, start: int) -> int | None:
    """Return the index of the parenthesis closing the one at ``start``, skipping strings and comments."""
    depth = 0
    i = start
    length = len(text)
    while i < length:
        char = text[i]
        if char == '"':
            i = _skip_string(text, i)
            continue
        if text.startswith(";;", i):
            newline = text.find("\n", i)
            i = length if newline == -1 else newline
            continue
        if text.startswith("(;", i):
            close = text.find(";)", i + 2)
            i = length if close == -1 else close + 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _skip_string(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)
