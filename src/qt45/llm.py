"""LlmClient: chat completions from an OpenAI-compatible server (Ollama by default)."""

from __future__ import annotations

import codecs
import json
import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext

import httpx

from .chat import ChatTask, Message, Progress
from .config import Config
from .errors import LlmError, LlmUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 8.0
MAX_REPLY_BYTES = 4_000_000
"""Longest reply body read from the server; a WAT module with its prose is far smaller."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LlmClient:
    """OpenAI-compatible chat completions over HTTP, streaming or not.

    Retries connection errors, truncated streams, 429 and 5xx replies up to
    ``config.llm_retries`` times with exponential backoff. Raises
    LlmUnavailable when no server responds or the model is missing, and
    LlmError for any other failed exchange.
    """

    def __init__(
        self,
        config: Config,
        progress: Progress | None = None,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.base_url = config.llm_url.rstrip("/")
        self.model = config.model
        self.label = f"{self.model} at {self.base_url}"
        self.progress = progress
        self.backoff_s = backoff_s
        self.calls = 0
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        timeout = httpx.Timeout(config.llm_timeout, connect=min(10.0, config.llm_timeout))
        self._http = httpx.Client(
            headers=headers, timeout=timeout, transport=transport, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def is_reachable(self, timeout: float = 2.0) -> bool:
        """Return True if an HTTP server responds at the base URL's models endpoint."""
        try:
            self._http.get(f"{self.base_url}/models", timeout=timeout)
        except httpx.HTTPError:
            return False
        return True

    def chat(self, messages: list[Message], task: ChatTask) -> str:
        """Send ``messages`` and return the reply text (may be empty)."""
        self.calls += 1
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "stream": self.config.stream,
        }
        waiting = self.progress.waiting(task) if self.progress else nullcontext()
        with waiting:
            return self._with_retries(body)

    def _with_retries(self, body: dict[str, object]) -> str:
        attempts = self.config.llm_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._send(body)
            except _Retryable as exc:
                if attempt == attempts:
                    raise LlmError(f"{exc}; gave up after {attempts} tries") from None
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else self.backoff_s * 2 ** (attempt - 1)
                )
                delay = min(delay, MAX_BACKOFF_S)
                log.warning(
                    "LLM request failed (%s); retry %d/%d in %.1f s",
                    exc,
                    attempt,
                    attempts - 1,
                    delay,
                )
                time.sleep(delay)
            except httpx.ConnectError as exc:
                if attempt == attempts:
                    raise self._unreachable(exc) from None
                log.info(
                    "cannot connect to %s (%s); retry %d/%d",
                    self.base_url,
                    exc,
                    attempt,
                    attempts - 1,
                )
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == attempts:
                    raise LlmError(
                        f"the connection to {self.base_url} broke during the reply ({exc}); "
                        f"gave up after {attempts} tries"
                    ) from None
                log.warning(
                    "connection to %s broke (%s); retry %d/%d",
                    self.base_url,
                    exc,
                    attempt,
                    attempts - 1,
                )
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            except httpx.TimeoutException:
                raise LlmError(
                    f"the model server at {self.base_url} sent no reply within "
                    f"{self.config.llm_timeout:g} s; raise the limit with --llm-timeout or "
                    "QT45_LLM_TIMEOUT, or use a smaller model"
                ) from None
            except httpx.HTTPError as exc:
                raise LlmError(f"request to {self.base_url} failed: {exc}") from None
        raise AssertionError("unreachable")

    def _unreachable(self, exc: Exception) -> LlmUnavailable:
        return LlmUnavailable(
            f"no LLM server is reachable at {self.base_url} ({exc}). Start Ollama with "
            "`ollama serve` (and `ollama pull qwen2.5-coder:7b`), or point --llm-url / "
            "QT45_LLM_URL at an OpenAI-compatible server."
        )

    def _send(self, body: dict[str, object]) -> str:
        url = f"{self.base_url}/chat/completions"
        deadline = time.monotonic() + self.config.llm_timeout
        with self._http.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                response.read()
                self._raise_for_status(response)
            if self.config.stream:
                return self._read_stream(response, deadline)
            body_bytes = b"".join(_bytes_until(response, deadline))
            return self._read_whole(body_bytes)

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        detail = _error_detail(response)
        if status == 429 or status >= 500:
            retry_after = _retry_after(response)
            raise _Retryable(f"server returned HTTP {status}: {detail}", retry_after)
        if status == 404 and "model" in detail.lower():
            raise LlmUnavailable(
                f"model {self.model!r} is not available at {self.base_url} ({detail}). "
                f"Run `ollama pull {self.model}`, or choose another model with --model / QT45_MODEL."
            )
        if status == 404:
            raise LlmUnavailable(
                f"{self.base_url}/chat/completions was not found (HTTP 404). Check --llm-url: "
                "an OpenAI-compatible base URL usually ends in /v1."
            )
        if status in (401, 403):
            raise LlmError(
                f"the server at {self.base_url} rejected the request (HTTP {status}: {detail}); "
                "set the API key in QT45_API_KEY"
            )
        raise LlmError(f"the server at {self.base_url} returned HTTP {status}: {detail}")

    def _read_whole(self, body: bytes) -> str:
        try:
            payload = json.loads(body)
            choice = payload["choices"][0]
            content = choice.get("message", {}).get("content") or ""
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            excerpt = body[:200].decode("utf-8", "replace")
            raise _Retryable(f"malformed reply from the server: {excerpt!r}") from None
        _check_length_cut(content, finish)
        if self.progress:
            self.progress.received(len(content))
        return str(content)

    def _read_stream(self, response: httpx.Response, deadline: float) -> str:
        parts: list[str] = []
        finish: str | None = None
        done = False
        received = 0
        for data in _sse_data(_lines_until(response, deadline)):
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
                choice = chunk["choices"][0] if chunk.get("choices") else {}
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise _Retryable(
                    f"malformed stream chunk from the server: {data[:200]!r}"
                ) from None
            if not isinstance(choice, dict):
                raise _Retryable(f"malformed stream chunk from the server: {data[:200]!r}")
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                parts.append(text)
                received += len(text)
                if self.progress:
                    self.progress.received(received)
            finish = choice.get("finish_reason") or finish
        if not done and finish is None:
            raise _Retryable("the reply stream ended before the model finished (truncated stream)")
        content = "".join(parts)
        _check_length_cut(content, finish)
        return content


def _bytes_until(response: httpx.Response, deadline: float) -> Iterator[bytes]:
    """Yield the body in chunks; raise ReadTimeout once ``deadline`` passes.

    httpx's read timeout bounds each read, not the whole body, so a server that
    trickles bytes would otherwise hold the request open without limit. A body
    beyond MAX_REPLY_BYTES raises LlmError.
    """
    received = 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the reply exceeded the request timeout")
        received += len(chunk)
        if received > MAX_REPLY_BYTES:
            raise LlmError(
                f"the reply from {response.url} is longer than {MAX_REPLY_BYTES:,} bytes; "
                "a function needs far less, so the server is misbehaving"
            )
        yield chunk


def _lines_until(response: httpx.Response, deadline: float) -> Iterator[str]:
    """Yield the lines of a streamed body, with the limits of ``_bytes_until``."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    partial: list[str] = []
    for chunk in _bytes_until(response, deadline):
        pieces = decoder.decode(chunk).split("\n")
        if len(pieces) == 1:
            partial.append(pieces[0])
            continue
        yield "".join([*partial, pieces[0]])
        yield from pieces[1:-1]
        partial = [pieces[-1]]
    tail = "".join([*partial, decoder.decode(b"", final=True)])
    if tail:
        yield tail


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        line = line.strip()
        if line.startswith("data:"):
            yield line[5:].strip()


def _check_length_cut(content: str, finish: str | None) -> None:
    if finish == "length" and not content.strip():
        raise LlmError(
            "the model reply was cut off (finish_reason 'length') before it wrote any code; "
            "raise the server's output limit or use a model with a larger context"
        )


def _error_detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    if isinstance(error, str):
        return error[:200]
    return str(payload)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
