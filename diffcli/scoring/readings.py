"""Reading generated images as their prompts, to keep the best of several candidates (`best_of`).

An illusion has two readings (an anagram: the image as A and its view as B; a hybrid: its low-pass as
FAR and the image as NEAR), a sample one. A reader scores each reading: its confidence (for a class
model, the dataset's scoring classifier's probability of the intended class; for a text-to-image
model, CLIP's probability of the intended prompt against the illusion's other prompt) and whether it
reads as intended (the classifier's top class, or CLIP preferring the intended prompt). The batched run's
`choose` (generation/batches.py) then keeps, in each group of candidates, the one that reads as intended
most often, the most confident among those; generation/illusions.py says which readings an illusion has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from diffcli.errors import DiffcliError, UsageError
from diffcli.scoring import grading

Notify = Callable[[str], None]


@dataclass
class Reading:
    """One reading of N images: the confidence of each in its intended prompt, and whether it reads so."""

    confidence: torch.Tensor  # [N] in [0, 1]
    correct: torch.Tensor  # [N] bool
    predicted: torch.Tensor | None = None  # [N] the classifier's top class (classifier readers)


class ClassifierReader:
    """Reads class-model images with the dataset's scoring classifier."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier
        self.name = classifier.name

    def read(
        self, pixels: np.ndarray | torch.Tensor, targets: Sequence[Any], rivals: Sequence[Sequence[Any]] | None = None
    ) -> Reading:
        """pixels [N, C, H, W] in [0, 1]; targets: the Prompt each image should read as (every class competes)."""
        from diffcli.scoring.inference import predict

        probs = predict(self.classifier, pixels)
        labels = torch.tensor([int(p.label) for p in targets])
        confidence = probs[torch.arange(len(labels)), labels]
        predicted = probs.argmax(1)
        return Reading(confidence, predicted == labels, predicted)


class ClipReader:
    """Reads text-to-image images with CLIP: the intended prompt against its rivals (the illusion's
    other prompts), softmax of CLIP's scaled cosine similarities."""

    def __init__(self, clip: Any) -> None:
        self.clip = clip
        self.name = clip.name

    @torch.no_grad()
    def read(
        self, pixels: np.ndarray | torch.Tensor, targets: Sequence[Any], rivals: Sequence[Sequence[Any]] | None = None
    ) -> Reading:
        import torch.nn.functional as F

        from diffcli.scoring.clip_score import prepare_images

        if not rivals or not all(rivals):
            raise UsageError(
                "CLIP reads a text-to-image image against other prompts; `best_of` needs an illusion's two prompts"
            )
        model, device = self.clip.model, self.clip.device
        texts = sorted({p.text for p in targets} | {r.text for group in rivals for r in group})
        encoded = F.normalize(model.encode_text(self.clip.tokenizer(texts).to(device)).float(), dim=-1)
        index = {text: k for k, text in enumerate(texts)}
        images = F.normalize(
            model.encode_image(
                prepare_images(pixels, self.clip.image_size, self.clip.mean, self.clip.std).to(device)
            ).float(),
            dim=-1,
        )
        confidence, correct = [], []
        for k, (target, group) in enumerate(zip(targets, rivals)):
            columns = [index[target.text], *(index[r.text] for r in group)]
            p = torch.softmax(100.0 * images[k] @ encoded[columns].T, dim=0).cpu()
            confidence.append(p[0])
            correct.append(bool(p[0] >= p.max()))
        return Reading(torch.stack(confidence), torch.tensor(correct))


def reader_for(model: Any, notify: Notify) -> ClassifierReader | ClipReader:
    """The reader that scores `model`'s images: the scoring classifier of its dataset (trained and cached
    once, as `diffcli eval` does) for a class model, CLIP for a text-to-image one."""
    if model.cond_type == "class":
        from diffcli.scoring.classifier import load_or_train_classifier

        spec = grading.dataset_of(model, None)
        classifier = load_or_train_classifier(
            spec, data_dir=grading.data_dir_for(model, spec, None), device=model.device, notify=notify
        )
        grading.check_labels_match(model, classifier)
        return ClassifierReader(classifier)
    if model.cond_type == "text":
        from diffcli.scoring.clip_score import INSTALL_HINT, load_clip

        try:
            return ClipReader(load_clip(device=model.device))
        except DiffcliError as exc:
            raise DiffcliError(
                (
                    f"`best_of` scores a text-to-image model's candidates with CLIP, "
                    f"which is not available here ({exc.message})"
                ),
                f"{INSTALL_HINT} and download its weights once, or generate several with `n` and pick by eye",
            ) from None
    raise UsageError(
        f"`best_of` reads each image as its prompt, and model {model.name!r} takes none",
        "generate several with `n` and pick by eye",
    )
