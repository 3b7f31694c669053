"""Prompt embeddings on disk, so a text encoder as large as T5-XXL runs once per prompt, not once per run.

Layout: `<registry>/cache/prompt-embeddings/<model>/<sha256>.safetensors`, one file per prompt, written
atomically. The hash covers the pipeline's source (hub id or folder), the token limit and the prompt, so
re-registering a name with another pipeline never returns stale embeddings. Each file holds the
embedding [L, D] in float32 and, as metadata, the prompt, its token count and whether it was cut.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from diffcli.errors import DiffcliError
from diffcli.models.weights import read_weights, save_weights

KEY = "embedding"


@dataclass
class CachedPrompt:
    """One prompt's embedding and what the tokenizer made of it."""

    embedding: torch.Tensor  # [L, D] float32, on the CPU
    tokens: int
    truncated: bool


class PromptCache:
    """Embeddings of one pipeline's prompts, keyed by (pipeline source, token limit, prompt)."""

    def __init__(self, folder: Path, source: str, max_tokens: int) -> None:
        self.folder = folder
        self.source = source
        self.max_tokens = max_tokens

    def path(self, prompt: str) -> Path:
        key = json.dumps({"source": self.source, "max_tokens": self.max_tokens, "prompt": prompt}, sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.safetensors"

    def load(self, prompt: str) -> CachedPrompt | None:
        """The cached embedding, or None (a damaged file counts as missing and is rewritten later)."""
        path = self.path(prompt)
        if not path.is_file():
            return None
        try:
            tensors = read_weights(path, "prompt cache")
            meta = _metadata(path)
        except DiffcliError:
            return None
        if KEY not in tensors or meta.get("prompt") != prompt:
            return None
        return CachedPrompt(tensors[KEY].float(), int(meta.get("tokens", 0)), meta.get("truncated") == "1")

    def save(self, prompt: str, entry: CachedPrompt) -> None:
        """Write one prompt's embedding atomically (a failure to cache is not fatal to the run)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "prompt": prompt,
            "source": self.source,
            "tokens": str(entry.tokens),
            "truncated": "1" if entry.truncated else "0",
            "max_tokens": str(self.max_tokens),
        }
        save_weights({KEY: entry.embedding.detach().float().cpu()}, self.path(prompt), metadata=meta)


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception:  # malformed header: treat as a miss
        raise DiffcliError(f"{path} is damaged") from None
