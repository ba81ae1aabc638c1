"""Prompt templates, stored as package data files under ``qt45/prompts``.

Templates use ``string.Template`` placeholders (``$name``) because WAT and
WGSL text is full of parentheses and braces.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


@cache
def template(name: str) -> Template:
    """Load ``prompts/<name>.txt``."""
    text = resources.files("qt45").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")
    return Template(text)


def render(template_name: str, /, **fields: object) -> str:
    """Fill template ``template_name``; a missing field raises KeyError, so typos surface in tests."""
    return template(template_name).substitute({key: str(value) for key, value in fields.items()})
