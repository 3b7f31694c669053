"""`diffcli eval`: scores that mean what they say (an oracle generator and a confused one), illusion
success tables, --record, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import make_tiny_model, png_array, run_cli
from test_evaluate import SHAPES as UNSORTED
from test_evaluate import write_shapes_folder

SHAPES = sorted(UNSORTED)  # a folder dataset's classes are its subfolders in sorted order


@pytest.fixture(scope="module")
def shapes_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "folder:" + str(write_shapes_folder(tmp_path_factory.mktemp("data") / "shapes"))


@pytest.fixture
def shapes_model(home: Path, shapes_spec: str) -> str:
    """A tiny (untrained) 3-class RGB model that records the shapes folder as its dataset."""
    folder = make_tiny_model(home, "shapes-model", timesteps=20, channels=3, labels=list(SHAPES))
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = {"name": shapes_spec}
    config["conditioning"]["aliases"] = {}
    (folder / "config.json").write_text(json.dumps(config))
    return "shapes-model"


def _oracle(monkeypatch: pytest.MonkeyPatch, shift: int) -> None:
    """Replace the model's network by one whose noise estimate always points at a real image of class
    (k + shift) mod 3: with DDIM the sample IS that image. shift 0 is a perfect class generator."""
    from diffcli.jobs import generating
    from diffcli.scoring.splits import load_split

    real_load = generating.load_generator

    def load(name, device, *args, **kwargs):
        model = real_load(name, device, *args, **kwargs)
        data = load_split(model.config.dataset_name, "train")
        templates = torch.stack([model.to_model(data.images[data.labels == k][0].float() / 255.0) for k in range(3)])

        def net(x, t, cond):
            wanted = (cond.clamp(max=2) + shift) % 3  # the null class reads as class 2: never used at --guidance 1
            return model.schedule.predict_eps(x, t, templates[wanted])

        model.net = net
        return model

    monkeypatch.setattr(generating, "load_generator", load)


ORACLE = ["--sampler", "ddim", "--steps", "5", "--guidance", "1", "-n", "4", "--device", "cpu"]


def test_a_perfect_generator_scores_one_and_a_confused_one_zero(shapes_model, monkeypatch):
    _oracle(monkeypatch, shift=0)
    r = run_cli(["eval", "--model", shapes_model, *ORACLE, "--json"])
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["accuracy"] == 1.0 and report["min_class_accuracy"] == 1.0 and report["n"] == 12
    assert [c["n"] for c in report["classes"]] == [4, 4, 4] and report["per_class"] == 4
    assert report["steps"] == 5 and report["sampler"] == "ddim" and report["guidance"] == 1.0
    fid = report["fid"]
    assert fid["n"] == 12 and fid["floor"] >= 0 and fid["value"] > 0  # one image per class: no diversity
    assert report["classifier"]["test_accuracy"] >= 0.9

    _oracle(monkeypatch, shift=1)
    confused = run_cli(["eval", "--model", shapes_model, *ORACLE, "--json"]).json()
    assert confused["accuracy"] == 0.0
    assert [c["mistaken_for"] for c in confused["classes"]] == ["ring", "vbar", "hbar"]


def test_the_report_is_the_output_and_record_in_the_config(shapes_model, home, monkeypatch):
    _oracle(monkeypatch, shift=0)
    r = run_cli(["eval", "--model", shapes_model, *ORACLE, "--record"])
    assert r.code == 0, r.stderr
    assert (
        "accuracy 100.0% over 12 samples" in r.stdout and "FID" in r.stdout and "floor" in r.stdout
    )  # `eval > report.txt` keeps it
    for name in SHAPES:
        assert name in r.stdout
    assert "over 12 samples" not in r.stderr
    quiet = run_cli(["eval", "--model", shapes_model, *ORACLE, "-q"])
    assert quiet.code == 0 and quiet.stderr == ""  # -q: no progress, no notes
    assert "accuracy 100.0% over 12 samples, the same for every class" in quiet.stdout  # but the report is the result
    assert "\u2503" not in quiet.stdout and "class\tn\taccuracy" in quiet.stdout  # piped: plain columns, no box drawing
    metrics = json.loads((home / "models" / shapes_model / "config.json").read_text())["metrics"]["eval"]["sample"]
    assert metrics["accuracy"] == 1.0 and metrics["per_class_accuracy"] == {"hbar": 1.0, "ring": 1.0, "vbar": 1.0}


def test_the_guidance_interval_is_reported(shapes_model, monkeypatch):
    _oracle(monkeypatch, shift=0)
    args = [
        "eval",
        "--model",
        shapes_model,
        *ORACLE[:4],
        "-g",
        "3",
        "--guidance-interval",
        "0.2:0.7",
        "-n",
        "2",
        "--device",
        "cpu",
    ]
    r = run_cli([*args, "--json"])
    assert r.code == 0, r.stderr
    assert r.json()["guidance"] == 3.0 and r.json()["guidance_interval"] == [0.2, 0.7]
    table = run_cli(args)
    assert table.code == 0 and "CFG 3 in 0.2:0.7" in table.stdout
    assert (
        run_cli([*args[:-6], "-n", "2", "--device", "cpu", "--json"]).json()["guidance_interval"] is None
    )  # a scale alone guides throughout


def test_classifier_is_trained_once_then_cached(shapes_model, home, monkeypatch):

    _oracle(monkeypatch, shift=0)
    first = run_cli(["eval", "--model", shapes_model, *ORACLE])
    assert "training the" in first.stderr and "scoring classifier" in first.stderr
    second = run_cli(["eval", "--model", shapes_model, *ORACLE])
    assert second.code == 0 and "training the" not in second.stderr
    assert any(p.name.endswith("-classifier") for p in (home / "models").iterdir())


@pytest.mark.parametrize(
    "task,extra,roles", [("anagram", ["--view", "rot180"], ("image", "view")), ("hybrid", [], ("far", "near"))]
)
def test_illusion_tasks_report_every_pair(shapes_model, task, extra, roles):
    r = run_cli(
        [
            "eval",
            "--model",
            shapes_model,
            "--task",
            task,
            *extra,
            "-n",
            "2",
            "--steps",
            "3",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["task"] == task and report["n"] == 12 and len(report["pairs"]) == 6  # 3 x 2 ordered pairs
    assert {(p[roles[0]], p[roles[1]]) for p in report["pairs"]} == {(a, b) for a in SHAPES for b in SHAPES if a != b}
    assert all(p["n"] == 2 and 0 <= p["rate"] <= 1 for p in report["pairs"])
    only = run_cli(
        [
            "eval",
            "--model",
            shapes_model,
            "--task",
            task,
            *extra,
            "--pairs",
            "ring:hbar",
            "-n",
            "2",
            "--steps",
            "3",
            "--device",
            "cpu",
            "--json",
        ]
    ).json()
    assert [(p[roles[0]], p[roles[1]]) for p in only["pairs"]] == [("ring", "hbar")] and only["n"] == 2


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["-n", "0"], 2, "-n must be between 1 and 100000, got 0"),
        (["--task", "dream"], 2, "unknown --task"),
        (["--task", "hybrid", "--kernel", "4"], 2, "--kernel must be an odd"),
        (["--task", "hybrid", "--kernel", "41"], 2, "larger than the model"),
        (["--task", "anagram", "--view", "spin"], 2, "unknown view"),
        (["--task", "anagram", "--pairs", "6-9"], 2, "is not A:B"),
        (["--task", "anagram", "--pairs", "ring:cat"], 2, "does not know 'cat'"),
        (["--scorer", "clip", "--task", "anagram"], 2, "--scorer clip scores --task sample only"),
    ],
)
def test_bad_inputs(shapes_model, args, code, message):
    r = run_cli(["eval", "--model", shapes_model, "--device", "cpu", *args])
    assert r.code == code, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_model_without_a_dataset_asks_for_one(home):
    folder = make_tiny_model(home, "orphan", timesteps=20)
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = {}
    (folder / "config.json").write_text(json.dumps(config))
    r = run_cli(["eval", "--model", "orphan", "--device", "cpu"])
    assert (
        r.code == 2
        and "records no training dataset" in r.stderr
        and "--dataset" in r.stderr
        and "--data-dir" in r.stderr
    )


def test_missing_data_names_the_files(home, tmp_path, monkeypatch):
    folder = make_tiny_model(home, "m", timesteps=20, size=28)
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = {"name": "mnist", "source": str(tmp_path / "gone")}
    (folder / "config.json").write_text(json.dumps(config))
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise AssertionError("a folder the user named is looked in, never downloaded into")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    # the shipped MNIST classifier needs no data; training one afresh does
    r = run_cli(
        ["eval", "--model", "m", "--device", "cpu", "--data-dir", str(tmp_path / "empty"), "--retrain-classifier"]
    )
    assert r.code == 1 and "train-images-idx3-ubyte" in r.stderr and "Traceback" not in r.stderr
    assert "leave --data-dir out to download mnist" in r.stderr and "add --download to download mnist" in r.stderr


def test_chain_task_finds_where_samples_become_recognisable(shapes_model, monkeypatch, tmp_path):
    _oracle(monkeypatch, shift=0)  # its clean estimate is the right image from the first step on
    r = run_cli(
        ["eval", "--model", shapes_model, "--task", "chain", *ORACLE, "--plot", str(tmp_path / "chain.png"), "--json"]
    )
    assert r.code == 0, r.stderr
    report = r.json()
    assert [s["step"] for s in report["chain"]] == [1, 2, 3, 4, 5] and report["steps"] == 5
    assert all(s["accuracy"] == 1.0 for s in report["chain"]) and report["recognisable_at"] == {
        "step": 1,
        "t": 19,
        "fraction": 0.2,
    }
    assert report["chain"][-1]["noisy_accuracy"] >= report["chain"][0]["noisy_accuracy"]  # x_t sharpens towards the end
    assert png_array(tmp_path / "chain.png").shape[2] == 3
    _oracle(monkeypatch, shift=1)
    never = run_cli(["eval", "--model", shapes_model, "--task", "chain", *ORACLE]).stdout
    assert "recognisable (accuracy >= 90.0% to the end): clean estimate never" in never
    assert run_cli(["eval", "--model", shapes_model, "--plot", "x.png"]).code == 2  # --plot belongs to --task chain


def test_record_writes_the_config_under_the_models_lock(shapes_model, home, monkeypatch):
    from holders import holding_lock

    _oracle(monkeypatch, shift=0)
    config = home / "models" / shapes_model / "config.json"
    before = config.read_bytes()
    with holding_lock(home, shapes_model, "training it") as pid:
        r = run_cli(["eval", "--model", shapes_model, *ORACLE, "--record"])
    assert r.code == 1 and f"model {shapes_model!r} is busy: process {pid}" in r.stderr, r.stderr
    assert config.read_bytes() == before  # a writer holds the model: its config is left alone
    assert run_cli(["eval", "--model", shapes_model, *ORACLE, "--record"]).code == 0
    assert "sample" in json.loads(config.read_text())["metrics"]["eval"]
