"""Rebuild the scoring classifiers and FID reference statistics shipped in diffcli/scoring/assets/.

Usage: python scripts/build_scorers.py --mnist DIR --fashion-mnist DIR [--out DIR] [--skip-eval-check]
       (`make scorers MNIST_DIR=... FASHION_DIR=...` runs it; give one of the two to rebuild only that one)

For each dataset (a torchvision root or a folder holding the four IDX files, plain or .gz):
1. train the classifier with classifier_training.py's recipe, unchanged (`train_for_dataset`, seed 0,
   CPU), i.e. what `diffcli eval --retrain-classifier` trains;
2. store it as float16 when that changes no accuracy figure at 4 decimals (overall and per-class test
   accuracy, and the embedded model's default `eval` accuracies), else as float32;
3. with the weights as stored: mean and covariance of the test split's features, and the real-vs-real
   floor `fid.real_floor` would measure, for n = 2..9 and every multiple of 10 up to the train split;
4. measure the 1/n interpolation rule (shipped.py) against floors measured at n outside the table, the
   seed-to-seed spread of the floor itself, and the table against `fid.real_floor` re-run from the data;
5. write `<dataset>-classifier.safetensors`, `<dataset>-reference.safetensors` and provenance.json (the
   command, the data files' sha256, torch version, date, accuracies, each asset's sha256), atomically.
Progress goes to stderr; the summary (one JSON object) to stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from diffcli import __version__
from diffcli.data.idx import find_file
from diffcli.data.mnist import FILES, locate
from diffcli.io.atomic import atomic_write_bytes, atomic_write_text
from diffcli.scoring import classifier as clf
from diffcli.scoring import classifier_training as clf_training
from diffcli.scoring import fid, inference, shipped

REPO = Path(__file__).resolve().parents[1]

DATASETS = ("mnist", "fashion-mnist")
FLOOR_SEED = 0  # fid.real_floor's default: the table must be what it measures
CHECK_N = (10, 50, 1000, 10000)  # table entries re-measured with fid.real_floor from the data
SPREAD_N = (100, 1000, 10000)
SPREAD_SEEDS = 10
RULE_DENSE_UP_TO = 2000  # the rule is tested at every n up to here that is not in the table ...
RULE_STRIDE = 7  # ... and at every 7th n above it


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    return shipped.sha256_of(path.read_bytes())


def data_files(spec: str, data_dir: Path) -> tuple[Path, dict[str, str]]:
    """The folder holding the four IDX files and each file's sha256 (by name)."""
    folder = locate(spec, data_dir)
    if folder is None:
        raise SystemExit(f"{spec}: the four IDX files are not in {data_dir} (nor its torchvision raw/ folder)")
    hashes = {}
    for stem in FILES:
        path = find_file(folder, stem)
        assert path is not None
        hashes[path.name] = sha256_file(path)
    return folder, hashes


def per_class_accuracy(module: torch.nn.Module, test) -> dict[str, float]:
    """Overall ("all") and per-class test accuracy."""
    out = {"all": clf_training.accuracy(module, test.images, test.labels)}
    for k, name in enumerate(test.label_names):
        mask = test.labels == k
        out[name] = clf_training.accuracy(module, test.images[mask], test.labels[mask])
    return out


def as_float16(module: torch.nn.Module) -> torch.nn.Module:
    """A copy whose floating-point weights went through float16 (what loading a float16 file gives)."""
    rounded = copy.deepcopy(module)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return rounded


def embedded_model(spec: str):
    """The name of the built-in generator trained on this dataset, if any."""
    from diffcli.models.registry import Registry

    for entry in Registry(root=Path(tempfile.gettempdir()) / "no-registry").entries():
        if entry.builtin and entry.config().dataset_name == spec:
            return entry.name
    return None


def eval_with(module: torch.nn.Module, trained, spec: str, data_dir: Path, model: str) -> dict:
    """`diffcli eval -m MODEL --json` (defaults) in a fresh registry whose `<dataset>-classifier` is `module`."""
    from diffcli.models.registry import Registry

    with tempfile.TemporaryDirectory(prefix="diffcli-scorer-check-") as home:
        name = clf.classifier_name(spec)
        clf.save_classifier(
            Registry(root=Path(home)),
            name,
            spec,
            module,
            trained.test_accuracy,
            trained.train,
            trained.test,
            trained.training,
        )
        env = {**os.environ, "DIFFCLI_HOME": home, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "diffcli",
                "eval",
                "-m",
                model,
                "--data-dir",
                str(data_dir),
                "--device",
                "cpu",
                "--json",
                "-q",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"eval check failed: {done.stderr.strip()}")
        return json.loads(done.stdout)


def eval_figures(report: dict) -> dict[str, float]:
    figures = {"all": report["accuracy"]}
    figures.update({c["label"]: c["accuracy"] for c in report["classes"]})
    return figures


def same_at_4_decimals(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(round(a[k], 4) == round(b[k], 4) for k in a)


def prefix_floors(features: np.ndarray, ns: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """FID of features[:n] against (mu, sigma) for every n in the increasing `ns`, from running sums.

    Sums are taken around `mu` so the covariance keeps its precision; mean and unbiased covariance equal
    `fid.feature_statistics` of the prefix to rounding."""
    out = np.empty(len(ns))
    s1 = np.zeros(features.shape[1])
    s2 = np.zeros((features.shape[1],) * 2)
    done = 0
    for i, n in enumerate(ns):
        block = features[done:n] - mu
        s1 += block.sum(axis=0)
        s2 += block.T @ block
        done = n
        mean = mu + s1 / n
        cov = (s2 - np.outer(s1, s1) / n) / (n - 1)
        out[i] = fid.frechet_distance(mean, cov, mu, sigma)
    return out


def floor_table_ns(count: int) -> np.ndarray:
    """n = 2..9 and every multiple of 10 up to `count` (the size of the train split)."""
    return np.array(list(range(2, 10)) + list(range(10, count + 1, 10)), dtype=np.int64)


def build(spec: str, data_dir: Path, out: Path, eval_check: bool) -> dict:
    started = time.perf_counter()
    folder, hashes = data_files(spec, data_dir)
    log(f"{spec}: data in {folder}")
    trained = clf_training.train_for_dataset(
        spec, data_dir=data_dir, device="cpu", seed=0, notify=lambda m: log(f"{spec}: {m}")
    )

    # float16 only if no accuracy figure moves at 4 decimals
    half = as_float16(trained.module).eval()
    test32, test16 = per_class_accuracy(trained.module, trained.test), per_class_accuracy(half, trained.test)
    keep_half = same_at_4_decimals(test32, test16)
    dtype_check = {"test_accuracy_float32": test32, "test_accuracy_float16": test16}
    model = embedded_model(spec)
    if eval_check and model is not None:
        log(f"{spec}: eval -m {model} with the float32 and the float16 classifier")
        report32, report16 = (
            eval_with(trained.module, trained, spec, data_dir, model),
            eval_with(half, trained, spec, data_dir, model),
        )
        figures32, figures16 = eval_figures(report32), eval_figures(report16)
        keep_half = keep_half and same_at_4_decimals(figures32, figures16)
        dtype_check["eval"] = {
            "command": (
                f"diffcli eval -m {model} --json (defaults: {report32['per_class']} per class, "
                f"{report32['sampler']} {report32['steps']} steps, CFG {report32['guidance']:g})"
            ),
            "accuracy_float32": figures32,
            "accuracy_float16": figures16,
            "fid_float32": report32["fid"]["value"],
            "fid_float16": report16["fid"]["value"],
        }
    dtype = torch.float16 if keep_half else torch.float32
    module = half if keep_half else trained.module
    log(
        f"{spec}: storing the classifier as {dtype} (test accuracy "
        f"float32 {test32['all']:.4f}, float16 {test16['all']:.4f})"
    )

    name = clf.classifier_name(spec)
    shipped_accuracy = test16 if keep_half else test32
    classifier = clf.Classifier(
        module,
        name,
        spec,
        list(trained.train.label_names),
        shipped_accuracy["all"],
        module.channels,
        module.size,
        clf.weights_fingerprint(module),
    )
    mu, sigma = fid.feature_statistics(inference.embed(classifier, trained.test.images))
    with tempfile.TemporaryDirectory() as cache:  # the statistics eval would compute from the data: identical
        computed = fid.reference_statistics(classifier, spec, data_dir=data_dir, cache_dir=Path(cache))
    assert np.array_equal(computed[0], mu) and np.array_equal(computed[1], sigma), (
        "reference statistics differ from fid.reference_statistics"
    )

    # the floor table: the train split in real_floor's seeded order, prefixes of it
    train_features = inference.embed(classifier, trained.train.images).double().numpy()
    count = len(train_features)

    def floors(seed: int, ns: np.ndarray) -> np.ndarray:
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).numpy()
        return prefix_floors(train_features[order], ns, mu, sigma)

    table_n = floor_table_ns(count)
    table = floors(FLOOR_SEED, table_n)
    log(f"{spec}: floor table of {len(table_n)} entries; floor at n=1000 is {table[table_n == 1000][0]:.4f}")

    # the table against fid.real_floor re-run from the data (fresh embeddings, np.cov)
    checks = []
    for n in CHECK_N:
        measured = fid.real_floor(
            classifier, spec, n, data_dir=data_dir, seed=FLOOR_SEED, reference=(mu, sigma, len(trained.test))
        )
        checks.append({"n": n, "table": round(float(table[table_n == n][0]), 6), "real_floor": round(measured, 6)})
    worst_check = max(abs(c["table"] - c["real_floor"]) for c in checks)

    # the 1/n rule at n outside the table
    reference = shipped.ShippedReference(spec, mu, sigma, len(trained.test), table_n, table)
    in_table = set(table_n.tolist())
    probe = np.array(
        [
            n
            for n in list(range(2, RULE_DENSE_UP_TO + 1)) + list(range(RULE_DENSE_UP_TO + 1, count, RULE_STRIDE))
            if n not in in_table
        ],
        dtype=np.int64,
    )
    exact = floors(FLOOR_SEED, probe)
    ruled = np.array([reference.floor_at(int(n))[0] for n in probe])
    abs_err, rel_err = np.abs(ruled - exact), np.abs(ruled - exact) / exact
    worst = int(np.argmax(rel_err))
    rule_error = {
        "tested_n": (
            f"every n from 2 to {RULE_DENSE_UP_TO} and every {RULE_STRIDE}th n above it "
            f"that is not in the table ({len(probe)} values)"
        ),
        "max_abs": round(float(abs_err.max()), 6),
        "max_rel": round(float(rel_err.max()), 6),
        "max_rel_at_n": int(probe[worst]),
        "median_rel": round(float(np.median(rel_err)), 8),
        "max_rel_above_100": round(float(rel_err[probe > 100].max()), 6),
    }
    # how much the floor itself moves with the choice of real images (context for the rule's error)
    spread_n = np.array(SPREAD_N, dtype=np.int64)
    by_seed = np.stack([floors(seed, spread_n) for seed in range(SPREAD_SEEDS)])
    spread = {
        str(n): {
            "mean": round(float(by_seed[:, i].mean()), 4),
            "std": round(float(by_seed[:, i].std(ddof=1)), 4),
            "min": round(float(by_seed[:, i].min()), 4),
            "max": round(float(by_seed[:, i].max()), 4),
        }
        for i, n in enumerate(SPREAD_N)
    }
    log(
        f"{spec}: rule max relative error {rule_error['max_rel']:.2e} "
        f"(n={rule_error['max_rel_at_n']}); table vs real_floor max |diff| {worst_check:.2e}"
    )

    # write the assets
    from safetensors.numpy import save as save_numpy

    from diffcli.models.weights import save_weights

    out.mkdir(parents=True, exist_ok=True)
    classifier_file, reference_file = f"{spec}-classifier.safetensors", f"{spec}-reference.safetensors"
    save_weights(
        module,
        out / classifier_file,
        dtype=dtype,
        metadata={"dataset": spec, "dtype": str(dtype).replace("torch.", "")},
    )
    atomic_write_bytes(
        out / reference_file,
        save_numpy({"mu": mu, "sigma": sigma, "floor_n": table_n, "floor": table}, metadata={"dataset": spec}),
    )
    return {
        "data": {
            "source": f"$DATA/{folder.relative_to(data_dir)}" if folder != data_dir else "$DATA",
            "layout": "torchvision root" if folder != data_dir else "folder of IDX files",
            "sha256": hashes,
        },
        "classifier": {
            "file": classifier_file,
            "sha256": sha256_file(out / classifier_file),
            "bytes": (out / classifier_file).stat().st_size,
            "dtype": str(dtype).replace("torch.", ""),
            "architecture": module.architecture(),
            "channels": module.channels,
            "size": module.size,
            "labels": list(trained.train.label_names),
            "test_accuracy": round(shipped_accuracy["all"], 6),
            "per_class_test_accuracy": {k: round(v, 6) for k, v in shipped_accuracy.items() if k != "all"},
            "fingerprint": classifier.fingerprint,
            "training": trained.training,
            "dtype_check": dtype_check,
        },
        "reference": {
            "file": reference_file,
            "sha256": sha256_file(out / reference_file),
            "bytes": (out / reference_file).stat().st_size,
            "split": "test",
            "n": len(trained.test),
            "floor": {
                "what": (
                    f"FID of the first n train images in the order torch.randperm({count}, seed {FLOOR_SEED}) "
                    "against mu/sigma, as fid.real_floor measures it"
                ),
                "table_n": f"2..9 and every multiple of 10 up to {count}",
                "at_1000": round(float(table[table_n == 1000][0]), 4),
                "rule": "for n not in the table: linear interpolation in 1/n between the two neighbouring entries",
                "rule_error": rule_error,
                "checked_against_real_floor": checks,
                "spread_over_seeds": {"seeds": SPREAD_SEEDS, "by_n": spread},
            },
        },
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=Path, help="MNIST: a torchvision root or a folder of the four IDX files")
    parser.add_argument("--fashion-mnist", type=Path, help="Fashion-MNIST: the same")
    parser.add_argument("--out", type=Path, default=shipped.ASSETS, help="where the assets go (default: the package's)")
    parser.add_argument(
        "--skip-eval-check",
        action="store_true",
        help="decide float16 on the test accuracies alone (skips two eval runs per dataset)",
    )
    args = parser.parse_args()
    dirs = {"mnist": args.mnist, "fashion-mnist": args.fashion_mnist}
    if not any(dirs.values()):
        parser.error("give --mnist and/or --fashion-mnist")
    out: Path = args.out
    path = out / shipped.PROVENANCE
    record = (
        json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"format": shipped.FORMAT, "datasets": {}}
    )
    command = ["python", "scripts/build_scorers.py"]
    for spec in DATASETS:
        if dirs[spec]:
            command += [f"--{spec}", f"${spec.upper().replace('-', '_')}_DIR"]
    if args.skip_eval_check:
        command.append("--skip-eval-check")
    for spec in DATASETS:
        if dirs[spec]:
            record["datasets"][spec] = build(spec, dirs[spec].expanduser().resolve(), out, not args.skip_eval_check)
            record["datasets"][spec]["built"] = {
                "command": " ".join(command),
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
                "diffcli": __version__,
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
            }
    record["format"] = shipped.FORMAT
    record["about"] = (
        "Scoring classifiers and FID reference statistics shipped for `diffcli eval`; "
        "see diffcli/scoring/shipped.py. Rebuilt by scripts/build_scorers.py."
    )
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    print(
        json.dumps(
            {
                spec: {
                    "test_accuracy": d["classifier"]["test_accuracy"],
                    "dtype": d["classifier"]["dtype"],
                    "floor_at_1000": d["reference"]["floor"]["at_1000"],
                    "rule_max_rel": d["reference"]["floor"]["rule_error"]["max_rel"],
                }
                for spec, d in record["datasets"].items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
