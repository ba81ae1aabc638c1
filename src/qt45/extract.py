"""Cleaning of model replies: from chatty text to candidate WAT modules."""

from __future__ import annotations

import re

MAX_REPLY_CHARS = 200_000
"""Longer replies are cut to this size before scanning; a real module is far smaller."""

MAX_MODULE_SCANS = 32
"""At most this many ``(module`` openings are scanned for their closing parenthesis.

Each scan of an unclosed opening reads to the end of the reply, so the cap
keeps a hostile reply (thousands of ``(module``) to linear time.
"""

_THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_MODULE_START = re.compile(r"\(\s*module\b")
_WAT_TOKEN = re.compile(r'"|;;|\(;|\(|\)')
_WAT_STRING = re.compile(r'"(?:[^"\\]|\\.)*', re.DOTALL)


def strip_thinking(reply: str) -> str:
    """Remove ``<think>…</think>`` blocks; an unclosed block hides everything after it.

    A closing tag without an opening one (servers that drop the opening tag)
    hides everything before it. Runs in linear time on any input.
    """
    text = reply[:MAX_REPLY_CHARS]
    outside: list[str] = []
    position = 0
    inside = False
    for tag in _THINK_TAG.finditer(text):
        closing = tag.group(1) == "/"
        if not inside and not closing:
            outside.append(text[position : tag.start()])
            inside = True
        elif inside and closing:
            inside = False
            position = tag.end()
        elif not inside and closing:
            outside.clear()
            position = tag.end()
    if not inside:
        outside.append(text[position:])
    return "".join(outside)


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
    resume = 0
    scans = 0
    for match in _MODULE_START.finditer(text):
        if match.start() < resume:
            continue  # nested inside a module already found
        if scans == MAX_MODULE_SCANS:
            break
        scans += 1
        end = _matching_paren(text, match.start())
        if end is not None:
            modules.append(text[match.start() : end + 1].strip())
            resume = end + 1
    return modules


def _matching_paren(text: str, start: int) -> int | None:
    """Return the index of the parenthesis closing the one at ``start``, skipping strings and comments."""
    depth = 0
    position = start
    while True:
        token = _WAT_TOKEN.search(text, position)
        if token is None:
            return None
        index = token.start()
        kind = token.group(0)
        if kind == '"':
            position = _skip_string(text, index)
        elif kind == ";;":
            newline = text.find("\n", index)
            if newline == -1:
                return None
            position = newline
        elif kind == "(;":
            close = text.find(";)", index + 2)
            if close == -1:
                return None
            position = close + 2
        else:
            depth += 1 if kind == "(" else -1
            if depth == 0:
                return index
            position = index + 1


def _skip_string(text: str, start: int) -> int:
    """Return the index after the string literal at ``start`` (the end of text if unclosed)."""
    match = _WAT_STRING.match(text, start)
    assert match is not None
    end = match.end()
    return end + 1 if end < len(text) and text[end] == '"' else len(text)
