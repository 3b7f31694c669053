"""Per-class accuracy of a dataset's scoring classifier on the real test images.

It is the ceiling for `diffcli eval`'s per-class figures on samples distributed like the data: a
class the scorer reads right 60 % of the time on real images reads about that on such samples.

    python studies/scorer_classes.py fashion-mnist --data-dir /usr/share/datasets/fashion-mnist [--json]
"""

from __future__ import annotations

import argparse
import json
import sys


def per_class_accuracy(dataset: str, data_dir: str | None, epochs: int | None = None) -> dict:
    """{'overall': fraction, 'classes': {label: fraction}, 'n': images} for the dataset's test split.

    epochs: only where no classifier is shipped or cached and one is trained (None: the usual plan)."""
    import torch

    from diffcli.scoring.classifier import load_or_train_classifier
    from diffcli.scoring.inference import predict
    from diffcli.scoring.splits import load_split

    classifier = load_or_train_classifier(dataset, data_dir=data_dir, epochs=epochs)
    test = load_split(dataset, "test", data_dir)
    if test.labels is None:
        raise SystemExit(f"scorer_classes: the {dataset} test split has no labels")
    predicted = predict(classifier, test.images.float() / 255.0).argmax(1)
    labels = torch.as_tensor(test.labels)
    classes = {
        name: round(float((predicted[labels == k] == k).float().mean()), 4)
        for k, name in enumerate(test.label_names)
        if bool((labels == k).any())
    }
    return {
        "dataset": dataset,
        "classifier": classifier.name,
        "n": len(test),
        "overall": round(float((predicted == labels).float().mean()), 4),
        "classes": classes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="mnist, fashion-mnist, glyphs or folder:PATH")
    parser.add_argument("--data-dir", default=None, help="where the dataset is (as for `diffcli eval --data-dir`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from diffcli.errors import DiffcliError

    try:
        report = per_class_accuracy(args.dataset, args.data_dir)
    except DiffcliError as error:  # a bad dataset or data folder: one line, not a traceback
        print(f"scorer_classes: {error.one_line()}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['classifier']} on {report['n']} {args.dataset} test images: {100 * report['overall']:.1f} %")
    for name, value in sorted(report["classes"].items(), key=lambda kv: kv[1]):
        print(f"  {name:<14} {100 * value:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
