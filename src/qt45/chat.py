"""The chat interface between the generation loop and a model (HTTP or scripted)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .signature import Tier

Message = dict[str, str]


@dataclass(frozen=True)
class ChatTask:
    """The purpose of a chat request, shown in progress output and used by scripted replies."""

    kind: str
    """``generate``, ``retry``, ``tests`` or ``confirm``."""
    name: str
    tier: Tier = Tier.SCALAR


class Progress(Protocol):
    """Receives progress while a model writes; the console shows a spinner."""

    def waiting(self, task: ChatTask) -> AbstractContextManager[None]: ...

    def received(self, characters: int) -> None: ...


class ChatModel(Protocol):
    """Anything that turns chat messages into a reply: the HTTP client or scripted replies."""

    label: str
    calls: int

    def chat(self, messages: list[Message], task: ChatTask) -> str: ...
