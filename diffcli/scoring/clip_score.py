"""Optional CLIP scores: how well each sample matches a text prompt for its class (open_clip, the `clip` extra).

The score of an image is 100 x the cosine similarity between its CLIP embedding and the embedding of
`template.format(label=...)` for the class it was generated as (the raw cosine, not clipped at 0 as
torchmetrics' CLIPScore does, so a bad class can read below 0). Zero-shot accuracy is the share of
images whose most similar prompt, among all classes, is their own. Zero-shot CLIP reads MNIST digits
poorly, so the classifier stays the primary score.

Weights are only ever read from disk here: a pretrained tag resolves to open_clip's cache (Hugging Face
hub cache, or ~/.cache/clip for URL weights) without touching the network, and downloading is a
separate, explicit step (`download=True`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffcli.errors import DiffcliError, UsageError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
DIGIT_TEMPLATE = "a photo of the digit {label}"
OBJECT_TEMPLATE = "a photo of a {label}"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
EXTRA = "clip"  # pip's extra that installs open_clip
INSTALL_HINT = f"pip install 'diffcli[{EXTRA}]'"


def default_template(dataset: str | None) -> str:
    """The prompt template for a dataset: digits for mnist and glyphs, objects otherwise (fashion-mnist, folders)."""
    return DIGIT_TEMPLATE if dataset in ("mnist", "glyphs") else OBJECT_TEMPLATE


@dataclass
class ClipModel:
    """A CLIP model with what scoring needs beside it: tokenizer, input size and normalisation."""

    model: torch.nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    name: str = "clip"

    @classmethod
    def wrap(
        cls,
        model: torch.nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        name: str = "clip",
        mean=None,
        std=None,
    ) -> ClipModel:
        """Wrap an open_clip model (e.g. one built in a test), reading its input size and normalisation."""
        size = getattr(model.visual, "image_size", 224)
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
        cfg = getattr(model.visual, "preprocess_cfg", None) or {}
        return cls(
            model.eval(),
            tokenizer,
            size,
            tuple(mean or cfg.get("mean") or OPENAI_MEAN),
            tuple(std or cfg.get("std") or OPENAI_STD),
            name,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _import_open_clip():
    try:
        import open_clip
    except ImportError:
        raise DiffcliError("CLIP scores need open_clip, which is not installed", INSTALL_HINT) from None
    return open_clip


def _cached_checkpoint(tag_cfg: dict, cache_dir: str | None) -> str | None:
    """The local file open_clip would load for a pretrained tag, or None; never touches the network."""
    if tag_cfg.get("file"):
        return tag_cfg["file"] if os.path.isfile(tag_cfg["file"]) else None
    if tag_cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(tag_cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        # open_clip prefers a .safetensors twin of a .bin/.pth file; look for it first, as it does.
        candidates = [filename[:-4] + ".safetensors"] if filename.endswith((".bin", ".pth")) else []
        if filename == "open_clip_pytorch_model.bin":
            candidates = ["open_clip_model.safetensors"]
        for name in candidates + [filename]:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if tag_cfg.get("url"):  # some tags name both; either copy will do
        path = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(tag_cfg["url"]))
        return path if os.path.isfile(path) else None
    return None


def _where(tag_cfg: dict) -> str:
    return tag_cfg.get("hf_hub") or tag_cfg.get("url") or tag_cfg.get("file") or "?"


def load_clip(
    model_name: str = DEFAULT_MODEL,
    pretrained: str = DEFAULT_PRETRAINED,
    device: str | torch.device = "cpu",
    *,
    weights: Path | None = None,
    cache_dir: str | None = None,
    download: bool = False,
) -> ClipModel:
    """Load an open_clip model from local weights: `weights` (a file, e.g. --clip-weights) or the cache of
    tag `pretrained`.

    download=True lets open_clip fetch a missing tag from the hub first. Every failure is a one-line
    DiffcliError naming what is missing: open_clip itself, the weights file, or the tag's weights.
    """
    open_clip = _import_open_clip()
    if model_name not in open_clip.list_models():
        raise UsageError(
            f"unknown CLIP model {model_name!r}", f"choose one of open_clip's models, e.g. {DEFAULT_MODEL}"
        )
    tag_cfg: dict = {}
    if weights is not None:
        checkpoint = str(Path(weights).expanduser())
        if not os.path.isfile(checkpoint):
            raise DiffcliError(
                f"CLIP weights file {checkpoint} not found",
                "give a local open_clip checkpoint of this model as `clip_weights`",
            )
    else:
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
        if not tag_cfg:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            raise UsageError(
                f"{pretrained!r} is not a pretrained tag of CLIP model {model_name!r} (known: {tags})",
                "or give a local checkpoint as `clip_weights`",
            )
        checkpoint = _cached_checkpoint(tag_cfg, cache_dir)
        if checkpoint is None and download:
            try:
                from open_clip.pretrained import download_pretrained

                checkpoint = download_pretrained(tag_cfg, cache_dir=cache_dir)
            except Exception as exc:  # offline, proxy, missing repo: one message for all
                raise DiffcliError(
                    (
                        f"could not download CLIP weights {model_name}/{pretrained} from {_where(tag_cfg)} "
                        f"({str(exc).splitlines()[0][:120]})"
                    ),
                    "download them elsewhere and give the file as `clip_weights`",
                ) from None
        if not checkpoint:
            raise DiffcliError(
                f"CLIP weights {model_name}/{pretrained} ({_where(tag_cfg)}) are not on this machine",
                "allow the download, or give a local open_clip checkpoint as `clip_weights`",
            )
    try:
        # A file path (not the tag) keeps open_clip off the network; the tag's activation must then be
        # set by hand: OpenAI's weights were trained with QuickGELU.
        model = open_clip.create_model(
            model_name,
            pretrained=checkpoint,
            device=torch.device(device),
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
        )
        tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as exc:  # open_clip raises RuntimeError/KeyError/OSError for bad or mismatched files
        raise DiffcliError(
            (
                f"could not load CLIP {model_name} from {checkpoint} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
            ),
            "check that the file is an open_clip checkpoint of this `clip_model`",
        ) from None
    return ClipModel.wrap(
        model,
        tokenizer,
        f"{model_name}/{pretrained if weights is None else Path(checkpoint).name}",
        tag_cfg.get("mean"),
        tag_cfg.get("std"),
    )


def prepare_images(
    pixels: torch.Tensor | np.ndarray, image_size: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """[0, 1] pixels [N, C, H, W] -> CLIP input [N, 3, S, S]: grey repeated to RGB, resized, normalised."""
    x = torch.as_tensor(pixels)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DiffcliError(f"CLIP scores need [N, 1 or 3, H, W] images, got {list(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (image_size, image_size):
        # bicubic like open_clip's own transform; antialias matters when shrinking large images
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0.0, 1.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def clip_scores(
    clip: ClipModel,
    pixels: torch.Tensor | np.ndarray,
    labels: Sequence[int] | torch.Tensor | np.ndarray,
    label_names: Sequence[str],
    template: str = DIGIT_TEMPLATE,
    batch_size: int = 64,
) -> dict:
    """Per-class mean CLIP score (100 x cosine with the class prompt) and zero-shot accuracy, and overall.

    `best` and `worst` name the classes with the highest and lowest mean CLIP score.
    """
    if "{label}" not in template:
        raise UsageError(f"CLIP prompt template {template!r} has no {{label}}", 'e.g. "a photo of the digit {label}"')
    intended = torch.as_tensor(np.asarray(labels), dtype=torch.long).cpu()
    x = torch.as_tensor(pixels)
    if len(intended) != len(x):
        raise ValueError(f"{len(x)} images but {len(intended)} labels")
    clip.model.eval()
    device = clip.device
    prompts = [template.format(label=name) for name in label_names]
    text = F.normalize(clip.model.encode_text(clip.tokenizer(prompts).to(device)).float(), dim=-1)
    sims = []
    for start in range(0, len(x), batch_size):
        batch = prepare_images(x[start : start + batch_size], clip.image_size, clip.mean, clip.std).to(device)
        image = F.normalize(clip.model.encode_image(batch).float(), dim=-1)
        sims.append((image @ text.T).cpu())
    sim = torch.cat(sims) if sims else torch.empty(0, len(label_names))
    own = sim[torch.arange(len(intended)), intended] if len(intended) else torch.empty(0)
    correct = (sim.argmax(dim=1) == intended) if len(intended) else torch.empty(0, dtype=torch.bool)
    classes = []
    for k, name in enumerate(label_names):
        mask = intended == k
        n = int(mask.sum())
        classes.append(
            {
                "index": k,
                "label": name,
                "prompt": prompts[k],
                "n": n,
                "clip_score": float(100.0 * own[mask].mean()) if n else None,
                "zero_shot_accuracy": float(correct[mask].float().mean()) if n else None,
            }
        )
    scored = [c for c in classes if c["n"]]
    return {
        "model": clip.name,
        "template": template,
        "classes": classes,
        "n": len(intended),
        "clip_score": float(100.0 * own.mean()) if len(intended) else None,
        "zero_shot_accuracy": float(correct.float().mean()) if len(intended) else None,
        "best": max(scored, key=lambda c: c["clip_score"])["label"] if scored else None,
        "worst": min(scored, key=lambda c: c["clip_score"])["label"] if scored else None,
    }
