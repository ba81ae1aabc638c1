"""Settings, read from command-line flags, environment variables and defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_LLM_URL = "http://localhost:11434/v1"
DEFAULT_MODEL = "qwen2.5-coder:7b"
OPENAI_API_HOST = "api.openai.com"


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError as exc:
        from .errors import Qt45Error

        raise Qt45Error(f"invalid {name}={text!r}: expected an integer") from exc


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError as exc:
        from .errors import Qt45Error

        raise Qt45Error(f"invalid {name}={text!r}: expected a number") from exc


def default_key_path() -> Path:
    """Location of the per-installation key that authenticates compiled modules."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qt45" / "module.key"


@dataclass(frozen=True)
class Limits:
    """Execution limits applied to every call of every tier.

    Each can be set with a flag, an environment variable or this class; see
    LIMIT_SETTINGS for the names.
    """

    fuel: int = 1_000_000_000
    """WebAssembly instructions (fuel units) one call may run; about a second of work."""
    call_timeout_s: float = 10.0
    """Wall-clock seconds one call may run, including instructions that cost little fuel."""
    memory_bytes: int = 256 * 1024 * 1024
    """Maximum linear memory of one instance; ``memory.grow`` beyond it returns -1."""
    table_elements: int = 10_000
    """Maximum elements of one table."""
    instances: int = 4
    """Maximum instances, and memories and tables each, in one store."""
    wasm_stack_bytes: int = 512 * 1024
    """Native stack that wasm code may use; deeper recursion traps with a stack overflow."""
    gpu_buffer_bytes: int = 256 * 1024 * 1024
    """Maximum total size of the GPU buffers one GPU-tier call may allocate."""
    gpu_workgroups: int = 1_048_576
    """Maximum workgroups, summed over all dispatches, that one GPU-tier call may run."""
    gpu_timeout_s: float = 10.0
    """Wall-clock seconds from the start of a GPU-tier call by which its GPU work must end."""

    @classmethod
    def from_env(cls) -> Limits:
        """Read QT45_FUEL, QT45_CALL_TIMEOUT, QT45_MEMORY_MB, QT45_TABLE_ELEMENTS,
        QT45_INSTANCES, QT45_STACK_KB, QT45_GPU_BUFFER_MB, QT45_GPU_WORKGROUPS and
        QT45_GPU_TIMEOUT over the defaults."""
        base = cls()
        limits = replace(
            base,
            fuel=_env_int("QT45_FUEL", base.fuel),
            call_timeout_s=_env_float("QT45_CALL_TIMEOUT", base.call_timeout_s),
            memory_bytes=_env_int("QT45_MEMORY_MB", base.memory_bytes // 2**20) * 2**20,
            table_elements=_env_int("QT45_TABLE_ELEMENTS", base.table_elements),
            instances=_env_int("QT45_INSTANCES", base.instances),
            wasm_stack_bytes=_env_int("QT45_STACK_KB", base.wasm_stack_bytes // 1024) * 1024,
            gpu_buffer_bytes=_env_int("QT45_GPU_BUFFER_MB", base.gpu_buffer_bytes // 2**20) * 2**20,
            gpu_workgroups=_env_int("QT45_GPU_WORKGROUPS", base.gpu_workgroups),
            gpu_timeout_s=_env_float("QT45_GPU_TIMEOUT", base.gpu_timeout_s),
        )
        limits.check()
        return limits

    def check(self) -> None:
        """Raise Qt45Error naming the first limit that is not positive."""
        from .errors import Qt45Error

        for name, (flag, variable, unit) in LIMIT_SETTINGS.items():
            value = getattr(self, name)
            if not value > 0:
                value_in_unit = value // UNIT_BYTES[unit] if unit in UNIT_BYTES else value
                raise Qt45Error(
                    f"{flag} ({variable}, Limits.{name}) must be a positive number, "
                    f"got {value_in_unit}"
                )


LIMIT_SETTINGS: dict[str, tuple[str, str, str]] = {
    "fuel": ("--fuel", "QT45_FUEL", "fuel units"),
    "call_timeout_s": ("--call-timeout", "QT45_CALL_TIMEOUT", "seconds"),
    "memory_bytes": ("--memory-mb", "QT45_MEMORY_MB", "MiB"),
    "table_elements": ("--table-elements", "QT45_TABLE_ELEMENTS", "elements"),
    "instances": ("--instances", "QT45_INSTANCES", "instances"),
    "wasm_stack_bytes": ("--stack-kb", "QT45_STACK_KB", "KiB"),
    "gpu_buffer_bytes": ("--gpu-buffer-mb", "QT45_GPU_BUFFER_MB", "MiB"),
    "gpu_workgroups": ("--gpu-workgroups", "QT45_GPU_WORKGROUPS", "workgroups"),
    "gpu_timeout_s": ("--gpu-timeout", "QT45_GPU_TIMEOUT", "seconds"),
}
"""Flag, environment variable and unit of each field of Limits."""


UNIT_BYTES = {"MiB": 2**20, "KiB": 1024}
"""Limits kept in bytes but set in these units."""


def how_to_raise(limit: str) -> str:
    """Return the advice that ends a limit message, e.g. ``raise it with --fuel or QT45_FUEL``."""
    flag, variable, _ = LIMIT_SETTINGS[limit]
    return f"raise it with {flag} or {variable}"


@dataclass(frozen=True)
class Config:
    """Everything that can be configured; the CLI builds one from flags and environment."""

    db_path: Path = Path("qt45.db")
    llm_url: str = DEFAULT_LLM_URL
    model: str = DEFAULT_MODEL
    llm: str = "auto"
    """``auto`` (the server at llm_url), ``http`` (same, never scripted) or ``scripted``."""
    api_key: str | None = None
    llm_timeout: float = 120.0
    """Seconds to wait for one model reply before giving up."""
    llm_retries: int = 2
    """Extra tries after a connection error, a 429 or a 5xx reply."""
    stream: bool = True
    max_attempts: int = 3
    temperature: float = 0.2
    limits: Limits = field(default_factory=Limits)
    key_path: Path = field(default_factory=default_key_path)
    verbose: bool = False
    show_progress: bool = True
    embedding_model: str = "all-MiniLM-L6-v2"
    """Embedding model of the search: ``all-MiniLM-L6-v2`` (packaged), ``bge-small-en-v1.5`` or ``none``."""

    @classmethod
    def from_env(cls, **overrides: object) -> Config:
        """Build a Config from QT45_* variables, then apply non-None overrides."""
        llm_url = os.environ.get("QT45_LLM_URL") or DEFAULT_LLM_URL
        values: dict[str, object] = {
            "db_path": Path(os.environ.get("QT45_DB") or "qt45.db"),
            "llm_url": llm_url,
            "model": os.environ.get("QT45_MODEL") or DEFAULT_MODEL,
            "llm": os.environ.get("QT45_LLM") or "auto",
            "llm_timeout": _env_float("QT45_LLM_TIMEOUT", 120.0),
            "max_attempts": _env_int("QT45_MAX_ATTEMPTS", 3),
            "limits": Limits.from_env(),
            "embedding_model": os.environ.get("QT45_EMBEDDING_MODEL") or "all-MiniLM-L6-v2",
        }
        if os.environ.get("QT45_KEY_FILE"):
            values["key_path"] = Path(os.environ["QT45_KEY_FILE"])
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["api_key"] = resolve_api_key(str(values["llm_url"]), values.get("api_key"))
        _check_settings(values)
        return cls(**values)  # type: ignore[arg-type]


LLM_SOURCES = ("auto", "http", "scripted")


def _check_settings(values: dict[str, object]) -> None:
    """Raise Qt45Error for a model source or timeout that cannot work."""
    from .errors import Qt45Error

    if values["llm"] not in LLM_SOURCES:
        raise Qt45Error(
            f"invalid model source {values['llm']!r} (--llm or QT45_LLM): use one of "
            f"{', '.join(LLM_SOURCES)}"
        )
    timeout = values["llm_timeout"]
    if not isinstance(timeout, int | float) or not timeout > 0:
        raise Qt45Error(
            f"--llm-timeout (QT45_LLM_TIMEOUT) must be a positive number of seconds, got {timeout}"
        )


def resolve_api_key(llm_url: str, explicit: object = None) -> str | None:
    """Pick the API key for ``llm_url``.

    QT45_API_KEY goes to whatever server is configured. OPENAI_API_KEY goes
    only to OpenAI's own API, so a key is never leaked to a custom URL.
    """
    if isinstance(explicit, str) and explicit:
        return explicit
    if os.environ.get("QT45_API_KEY"):
        return os.environ["QT45_API_KEY"]
    from urllib.parse import urlsplit

    host = (urlsplit(llm_url).hostname or "").lower()
    if host == OPENAI_API_HOST and urlsplit(llm_url).scheme == "https":
        return os.environ.get("OPENAI_API_KEY") or None
    return None
