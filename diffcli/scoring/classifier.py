"""The classifier `diffcli eval` grades samples with: shipped for the embedded models' datasets, else
trained once per dataset and cached in the registry.

Which classifier scores a dataset (`load_or_train_classifier`), first match wins:
1. `<dataset>-classifier` in the registry (e.g. `mnist-classifier`, written by a first `eval` on a dataset
   that ships none, or by `eval --retrain-classifier`): a registry classifier takes precedence over a
   shipped one, as user models do over built-in ones; FID statistics are then computed from the data.
2. the classifier shipped inside the package (mnist and fashion-mnist, see shipped.py), with its FID
   reference statistics and floors: no dataset is read, whether or not --data-dir is given.
3. otherwise one is trained from the data and cached in the registry as in 1.
`--retrain-classifier` always trains from the data (so it needs the data) and replaces the registry copy;
`diffcli models rm <dataset>-classifier --yes` returns to the shipped one.

A registry classifier is an ordinary registry folder with `config.json` (kind "classifier", test accuracy
and training provenance) and `model.safetensors`, so `diffcli models list/show/rm` see it and nothing is
ever unpickled. The training recipe is in classifier_training.py, the data splits in splits.py, and reading
images with a classifier (`predict`, `embed`) in inference.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import torch

from diffcli.errors import DiffcliError
from diffcli.models.config import ModelConfig
from diffcli.models.registry import ModelEntry, Registry, validate_name
from diffcli.models.weights import weights_fingerprint
from diffcli.scoring.classifier_training import train_for_dataset
from diffcli.scoring.network import ScoringCNN
from diffcli.scoring.scorer import Classifier
from diffcli.scoring.splits import canonical_spec

Notify = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def classifier_name(dataset_spec: str) -> str:
    """The registry name of a dataset's classifier: `mnist-classifier`, `folder-cats-1a2b3c4d-classifier`."""
    if dataset_spec.startswith("folder:"):
        path = dataset_spec[len("folder:") :]
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", path.rstrip("/").split("/")[-1]).strip("-")[:40] or "root"
        digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:8]  # two folders called "cats" differ
        return validate_name(f"folder-{slug}-{digest}-classifier")
    return validate_name(f"{dataset_spec}-classifier")


def _rm_hint(name: str) -> str:
    return f"delete it with `diffcli models rm {name} --yes`; `diffcli eval` then retrains it"


def load_classifier(entry: ModelEntry, device: str | torch.device = "cpu") -> Classifier:
    """Rebuild a cached classifier from its registry folder (safetensors only, shapes checked)."""
    from diffcli.models.weights import load_into, read_weights

    label = f"classifier {entry.name!r}"
    try:
        config = entry.config()
    except DiffcliError as exc:
        raise DiffcliError(exc.message, _rm_hint(entry.name)) from None
    if config.kind != "classifier":  # someone's own model under this name: never advise deleting it
        raise DiffcliError(
            f"model {entry.name!r} is a {config.kind} model, not a classifier",
            (
                "rename it (`diffcli models export`, `rm`, `import --name`) "
                "so `diffcli eval` can cache its classifier there"
            ),
        )
    try:
        arch = config.architecture
        try:
            module = ScoringCNN(
                config.channels,
                config.size,
                len(config.labels),
                width=int(arch["width"]),
                feature_dim=int(arch["feature_dim"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiffcliError(
                f"{label}: {entry.config_path} has an invalid architecture ({type(exc).__name__}: {exc})"
            ) from None
        path = entry.weights_path()
        load_into(module, read_weights(path, label), path, label)
    except DiffcliError as exc:
        # Whatever broke (config, weights file, shapes), the fix for a cache is the same: delete it.
        raise DiffcliError(exc.message, _rm_hint(entry.name)) from None
    module.eval().to(torch.device(device) if not isinstance(device, torch.device) else device)
    accuracy_value = float(config.metrics.get("test_accuracy", float("nan")))
    return Classifier(
        module,
        entry.name,
        config.dataset_name or "?",
        config.labels,
        accuracy_value,
        config.channels,
        config.size,
        weights_fingerprint(module),
    )


def save_classifier(
    registry: Registry,
    name: str,
    dataset_spec: str,
    module: ScoringCNN,
    test_accuracy: float,
    train,
    test,
    training: dict,
) -> ModelEntry:
    """Write the classifier into the registry as every model is written: staged whole (weights, then
    config.json), then put in place by the registry's transaction under the model's lock, replacing an
    earlier classifier of the same name."""
    from diffcli.io.atomic import atomic_write_text
    from diffcli.models import transaction
    from diffcli.models.layout import CONFIG, WEIGHTS
    from diffcli.models.weights import save_weights

    config = ModelConfig(
        name=name,
        kind="classifier",
        architecture=module.architecture(),
        image={"channels": module.channels, "size": module.size, "range": [0.0, 1.0]},
        schedule={},
        prediction="logits",
        objective="classify",
        conditioning={"type": "class", "labels": list(train.label_names), "null_class": False},
        dataset={**train.describe(), "name": dataset_spec, "test_count": len(test)},
        training=training,
        metrics={"test_accuracy": round(test_accuracy, 6)},
        description=(
            f"scoring classifier for `diffcli eval` on {dataset_spec} (test accuracy {100 * test_accuracy:.2f}%)"
        ),
    )
    with transaction.Staging(registry.models_dir) as staged:
        save_weights(module, staged / WEIGHTS)
        atomic_write_text(staged / CONFIG, config.to_json())
        with registry.transaction(name, "saving the scoring classifier") as change:
            change.put(staged, replace=True)
    return registry.user_entry(name)


def _find(registry: Registry, name: str) -> ModelEntry | None:
    return next((e for e in registry.entries() if e.name == name), None)


def load_or_train_classifier(
    dataset_spec: str,
    *,
    data_dir=None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
    retrain: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    download: bool = False,
    notify: Notify = _quiet,
) -> Classifier:
    """The classifier that scores `dataset_spec`: the registry's `<dataset>-classifier`, else the shipped
    one, else one trained from the data and cached in the registry (see the module docstring).

    A cached classifier that cannot be read is an error naming the file (delete it to retrain); a damaged
    shipped one is an error too. `retrain=True` trains afresh and replaces the registry copy. `epochs`
    None: see `training_plan`. `download`: a dataset that training needs and `data_dir` lacks is fetched there.
    """
    from diffcli.device import resolve_device
    from diffcli.scoring import shipped

    registry = registry or Registry()
    dataset_spec = canonical_spec(dataset_spec)
    name = classifier_name(dataset_spec)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    entry = _find(registry, name)
    if entry is not None and not retrain:
        classifier = load_classifier(entry, torch_device)
        if classifier.dataset != dataset_spec:
            raise DiffcliError(
                f"classifier {name!r} was trained on {classifier.dataset!r}, not {dataset_spec!r}", _rm_hint(name)
            )
        if shipped.available(dataset_spec):
            notify(
                f"scoring with {name} from the registry, which takes precedence over the shipped one "
                f"(`diffcli models rm {name} --yes` returns to it)"
            )
        return classifier
    has_shipped = shipped.available(dataset_spec)
    if has_shipped and not retrain:
        return shipped.load_classifier(dataset_spec, torch_device)
    _check_can_cache(registry, name)  # before minutes of training, not after
    if has_shipped:
        notify(
            f"training the {dataset_spec} scoring classifier afresh (cached as model {name!r}, "
            f"which takes precedence over the shipped one until `diffcli models rm {name} --yes`)"
        )
    else:
        notify(f"training the {dataset_spec} scoring classifier (cached as model {name!r})")
    trained = train_for_dataset(
        dataset_spec, data_dir=data_dir, device=torch_device, epochs=epochs, seed=seed, download=download, notify=notify
    )
    save_classifier(
        registry,
        name,
        dataset_spec,
        trained.module,
        trained.test_accuracy,
        trained.train,
        trained.test,
        trained.training,
    )
    return Classifier(
        trained.module,
        name,
        dataset_spec,
        list(trained.train.label_names),
        trained.test_accuracy,
        trained.module.channels,
        trained.module.size,
        weights_fingerprint(trained.module),
    )


def _check_can_cache(registry: Registry, name: str) -> None:
    """Refuse a registry that cannot take the classifier (read-only, no permission) before training it."""
    from diffcli.io.atomic import check_can_create_files, first_missing

    missing = first_missing(registry.models_dir)
    folder = registry.models_dir if missing is None else missing.parent
    hint = "make the registry writable, or point DIFFCLI_HOME at a folder you can write to"
    check_can_create_files(folder, f"the scoring classifier {name!r} into the registry", hint)
