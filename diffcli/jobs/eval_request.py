"""What `eval` is asked: a keyword-only request whose fields are declared once (diffcli/params.py), read by
the CLI's options, the Python API's keywords and the job's checks. Its illusion tasks take the same
declarations as the `anagram` and `hybrid` commands (jobs/requests.py). torch-free: `--help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffcli import checks
from diffcli.generation.requests import SAMPLING_PANEL, Sampling
from diffcli.jobs.requests import (
    BEST_OF,
    FAR_FIRST,
    ILLUSION_PANEL,
    KERNEL,
    NEAR_LAST,
    SEED,
    SIGMA,
    VIEW,
    WEIGHT,
    for_task,
)
from diffcli.params import param
from diffcli.training.recipe import DOWNLOAD, dataset_completions

TASK_PANEL, SCORER_PANEL, DATA_PANEL = "Task", "Scorer", "Data"
TASKS = ("sample", "anagram", "hybrid", "chain")
SCORERS = ("classifier", "clip")


@dataclass(kw_only=True)
class EvalRequest:
    """What `eval` measures and how. Tasks anagram and hybrid generate exactly as the `anagram` and `hybrid`
    commands do: what the request leaves out (sampler, steps, guidance, weight, filter) takes the same
    illusion defaults."""

    task: str = param(
        "sample",
        help="sample (per-class scores and FID), anagram or hybrid (success rate over class pairs), "
        "chain (the step at which samples become recognisable).",
        choices=TASKS,
        metavar="TASK",
        panel=TASK_PANEL,
    )
    n: int | None = param(
        None,
        help="Samples per class (sample: 100, chain: 20) or seeds per pair (anagram/hybrid: 10).",
        flags=("-n",),
        bound=checks.COUNT,
        metavar="INT",
        panel=TASK_PANEL,
    )
    scorer: str = param(
        "classifier",
        help="classifier (shipped for mnist and fashion-mnist, else trained once from the data and "
        "cached) or clip (open_clip, optional).",
        choices=SCORERS,
        metavar="NAME",
        panel=SCORER_PANEL,
    )
    view: str = param("flip", **for_task("anagram", VIEW))
    weight: float | None = param(None, **for_task("anagram", WEIGHT))
    pairs: str | None = param(
        None,
        help="Tasks anagram/hybrid: class pairs A:B, comma-separated (default: every ordered pair of distinct "
        "classes).",
        metavar="A:B,...",
        panel=ILLUSION_PANEL,
    )
    kernel: int | None = param(None, **for_task("hybrid", KERNEL))
    sigma: float | None = param(None, **for_task("hybrid", SIGMA))
    far_first: float | None = param(None, **for_task("hybrid", FAR_FIRST))
    near_last: float | None = param(None, **for_task("hybrid", NEAR_LAST))
    sampling: Sampling = param(help="How to walk the reverse process.", factory=Sampling)
    batch_size: int = param(
        250, help="Images generated per batch.", bound=checks.BATCH_SIZE, metavar="INT", panel=TASK_PANEL
    )
    dataset: str | None = param(
        None,
        help="Grade against this dataset (default: the one the model was trained on).",
        metavar="NAME",
        complete=dataset_completions,
        panel=DATA_PANEL,
    )
    data_dir: str | None = param(
        None,
        help="Where the dataset's files are; needed only for datasets without shipped scorers, or with "
        "--retrain-classifier (default: $DIFFCLI_DATA, else where the model was trained from).",
        rule=lambda name, value: checks.path(name, value),
        metavar="DIR",
        panel=DATA_PANEL,
    )
    download: bool = param(False, **DOWNLOAD)
    retrain_classifier: bool = param(
        False,
        help="Train the dataset's scoring classifier afresh from the data; it then takes precedence over the "
        "shipped one.",
        panel=SCORER_PANEL,
    )
    clip_model: str = param("ViT-B-32", help="Scorer clip: the open_clip model.", metavar="NAME", panel=SCORER_PANEL)
    clip_pretrained: str = param(
        "laion2b_s34b_b79k",
        help="Scorer clip: the pretrained tag, read from the local open_clip / Hugging Face cache.",
        metavar="TAG",
        panel=SCORER_PANEL,
    )
    clip_weights: str | None = param(
        None,
        help="Scorer clip: a local open_clip checkpoint file instead of the tag.",
        metavar="PATH",
        panel=SCORER_PANEL,
    )
    template: str | None = param(
        None,
        help='Scorer clip: prompt template with {label} (default: "a photo of the digit {label}" for digits).',
        metavar="TEXT",
        panel=SCORER_PANEL,
    )
    record: bool = param(
        False, help="Store the headline figures in the model's config.json (metrics.eval).", panel="Output"
    )
    seed: int = param(
        0,
        help="First seed; image i uses seed + i (fixed by default, so scores repeat).",
        rule=SEED["rule"],
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    best_of: int = param(
        1,
        **{
            **BEST_OF,
            "help": "Tasks anagram/hybrid: also measure what --best-of K keeps (n images per pair from n*K seeds).",
            "panel": ILLUSION_PANEL,
        },
    )
