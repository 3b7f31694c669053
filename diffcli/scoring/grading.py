"""What an evaluation grades against what: the dataset a model's images are graded by, where its files
are, whether a classifier reads the model's classes, and the class pairs of an illusion evaluation.

Shared by `eval` (scoring/runner.py, jobs/evaluate.py) and `--best-of`'s reader (scoring/readings.py).
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

from diffcli.errors import DiffcliError, UsageError
from diffcli.models.backends.base import LoadedModel, Prompt


def dataset_of(model: LoadedModel, dataset: str | None) -> str:
    """The dataset the model's samples are graded against: --dataset, else what its config records."""
    from diffcli.data.names import canonical_dataset

    spec = canonical_dataset(dataset) if dataset else model.config.dataset_name
    if not spec:
        raise UsageError(
            f"model {model.name!r} records no training dataset, so there is no classifier to grade it",
            "give the `dataset` (mnist, fashion-mnist, glyphs or folder:PATH) and its `data_dir`",
        )
    return spec


def data_dir_for(model: LoadedModel, spec: str, given: str | None) -> Path | None:
    """--data-dir, else the default data dir when it holds the dataset, else the folder the model was
    trained from (its config records it), so `eval` finds the data that `train` used."""
    if given:
        return Path(given).expanduser()
    if spec not in ("mnist", "fashion-mnist"):
        return None
    from diffcli.data import default_data_dir
    from diffcli.data.mnist import locate

    default = default_data_dir()
    if locate(spec, default) is not None:
        return default
    source = (model.config.dataset or {}).get("source")
    if source and Path(source).is_dir() and locate(spec, Path(source)) is not None:
        return Path(source)
    return default


def class_prompts(model: LoadedModel) -> list[Prompt]:
    if model.cond_type != "class":
        return []
    return [Prompt(name, k) for k, name in enumerate(model.labels)]


def check_labels_match(model: LoadedModel, classifier) -> None:
    """A class model is graded by a classifier of the same classes, in the same order."""
    if model.cond_type == "class" and list(model.labels) != list(classifier.label_names):
        raise DiffcliError(
            f"model {model.name!r} has classes {', '.join(model.labels)} "
            f"but classifier {classifier.name!r} has {', '.join(classifier.label_names)}",
            "give the `dataset` the model was trained on",
        )
    if (model.channels, model.size) != (classifier.channels, classifier.size):
        raise DiffcliError(
            f"model {model.name!r} makes {model.channels}x{model.size}x{model.size} images "
            f"but classifier {classifier.name!r} reads {classifier.channels}x{classifier.size}x{classifier.size}",
            "give the `dataset` the model was trained on",
        )


def parse_pairs(text: str | None, model: LoadedModel) -> list[tuple[Prompt, Prompt]]:
    """'6:9,1:7' -> resolved prompt pairs; None -> every ordered pair of distinct classes."""
    if model.cond_type != "class":
        raise UsageError(f"model {model.name!r} is not class-conditional: illusions are scored for class pairs")
    if not text:
        classes = class_prompts(model)
        return list(permutations(classes, 2))
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"`pairs` entry {item.strip()!r} is not A:B", "write pairs like 6:9,1:7")
        pairs.append((model.resolve_prompt(parts[0].strip()), model.resolve_prompt(parts[1].strip())))
    return pairs
