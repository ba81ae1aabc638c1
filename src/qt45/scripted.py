"""Scripted model replies, used when no model server is reachable.

The replies are package data (``data/scripted.json``), written the way real
models reply: fenced and unfenced code, prose around it, ``<think>`` blocks,
several candidate modules, and one reply that fails to compile first. They go
through the same pipeline as live replies: extraction, compilation, retries,
tests and storage.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from importlib import resources
from typing import Any

from .chat import ChatTask, Message
from .config import DEFAULT_LLM_URL
from .errors import LlmUnavailable


@cache
def load_script() -> dict[str, Any]:
    """Load the scripted replies, keyed by function name."""
    text = resources.files("qt45").joinpath("data", "scripted.json").read_text(encoding="utf-8")
    script: dict[str, Any] = json.loads(text)
    return script


class ScriptedModel:
    """A ChatModel that replays ``data/scripted.json`` for the functions it covers."""

    def __init__(self, llm_url: str = DEFAULT_LLM_URL) -> None:
        self.label = "scripted replies"
        self.llm_url = llm_url
        self.calls = 0
        self._positions: dict[tuple[str, str], int] = defaultdict(int)

    def covers(self, name: str) -> bool:
        return name in load_script()

    def chat(self, messages: list[Message], task: ChatTask) -> str:
        """Return the next scripted reply for ``task``; raises LlmUnavailable outside the script."""
        entry = load_script().get(task.name)
        if entry is None:
            raise LlmUnavailable(
                f"no LLM server is reachable at {self.llm_url}, and the scripted replies cover only "
                f"the demo's functions, not {task.name!r}. Start Ollama with `ollama serve` "
                "(and `ollama pull qwen2.5-coder:7b`), or point --llm-url / QT45_LLM_URL at an "
                "OpenAI-compatible server."
            )
        sequence = "tests" if task.kind == "tests" else "replies"
        if task.kind == "confirm":
            sequence = "confirm"
        replies = entry.get(sequence) or []
        position = self._positions[(task.name, sequence)]
        self._positions[(task.name, sequence)] = position + 1
        self.calls += 1
        if not replies:
            return ""
        reply = replies[min(position, len(replies) - 1)]
        return "\n".join(reply) if isinstance(reply, list) else str(reply)
