"""Illusions: terms limited to a range of timesteps, the illusion defaults (one source for the commands
and `eval`), and --best-of (grouping, the kept seed regenerates its image, warnings, JSON, bad input)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import make_tiny_model, png_array, run_cli

from diffcli.diffusion import filters
from diffcli.diffusion.guidance import GuidedModel, anagram_terms, hybrid_terms
from diffcli.diffusion.views import VIEWS


class Net:
    """eps = x * (1 + cond): distinct per condition; counts the rows it is asked for."""

    def __init__(self):
        self.rows = []

    def __call__(self, x, t, cond):
        self.rows.append(x.shape[0])
        return x * (1 + cond.float()[:, None, None, None])


# ----- terms over a range of timesteps ------------------------------------------------------------
def test_hybrid_bands_switch_prompts_at_their_timesteps_and_skip_unused_evaluations():
    net = Net()
    far, near = torch.tensor([1]), torch.tensor([2])
    x = torch.randn(1, 1, 16, 16)
    low = lambda e: filters.lowpass(e, 5, 1.0)  # noqa: E731
    high = lambda e: filters.highpass(e, 5, 1.0)  # noqa: E731
    model = GuidedModel(net, hybrid_terms(far, near, None, 1.0, 5, 1.0, low_switch=30, high_switch=70))
    cases = {  # t: (low band from, high band from)
        90: (far, far),  # early: FAR whole (its high band too)
        70: (far, far),
        50: (far, near),  # the middle: the classic split
        30: (far, near),
        10: (near, near),  # late: NEAR whole
    }
    for t, (low_from, high_from) in cases.items():
        net.rows.clear()
        out = model(x, torch.tensor([t]))
        expected = low(x * (1 + low_from.float())) + high(x * (1 + high_from.float()))
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        assert net.rows[0] == (1 if low_from is high_from else 2), t  # one prompt at this step: one row


def test_default_hybrid_terms_have_no_ranges_and_bands_always_sum_to_one_estimate():
    terms = hybrid_terms(torch.tensor([1]), torch.tensor([2]), torch.tensor([0]), 3.0, 5, 1.0)
    assert all(term.during is None for term in terms) and len(terms) == 4
    ranged = hybrid_terms(
        torch.tensor([1]), torch.tensor([2]), torch.tensor([0]), 3.0, 5, 1.0, low_switch=20, high_switch=80
    )
    for t in (0, 19, 20, 50, 79, 80, 999):
        assert sum(term.weight for term in ranged if term.applies(t)) == pytest.approx(
            2.0
        )  # low + high: each sums to 1


def test_anagram_weight_schedule_changes_weights_between_segments():
    net = Net()
    a, b = torch.tensor([1]), torch.tensor([2])
    view = VIEWS["rot180"]
    x = torch.randn(1, 1, 4, 4)
    model = GuidedModel(net, anagram_terms(a, b, None, 1.0, view, [(0, 50, 0.5), (50, 100, 1.0)]))
    torch.testing.assert_close(model(x, torch.tensor([70])), 2 * x)  # only A's estimate early on
    assert net.rows == [1]
    torch.testing.assert_close(model(x, torch.tensor([10])), 0.5 * 2 * x + 0.5 * view.inverse(3 * view.apply(x)))


def test_ranged_terms_need_one_timestep_per_batch():
    model = GuidedModel(
        Net(), hybrid_terms(torch.tensor([1, 1]), torch.tensor([2, 2]), None, 1.0, 3, 1.0, low_switch=5)
    )
    with pytest.raises(ValueError, match="one timestep"):
        model(torch.randn(2, 1, 8, 8), torch.tensor([3, 9]))


# ----- the illusion defaults ----------------------------------------------------------------------
def _fake_model(cond_type="class", timesteps=1000, guidance=True, size=28):
    return SimpleNamespace(
        cond_type=cond_type,
        schedule=SimpleNamespace(timesteps=timesteps),
        supports_guidance=guidance,
        size=size,
        config=SimpleNamespace(distillation={}, sampling={}),
    )


def test_defaults_fill_only_what_is_left_out():
    from diffcli.generation import illusions
    from diffcli.generation.settings import Sampling

    model = _fake_model()
    d = illusions.defaults(model, "anagram")
    filled = illusions.fill_sampling(model, Sampling(), "anagram")
    assert (filled.sampler, filled.steps, filled.guidance) == (d.sampler, d.steps, d.guidance)
    assert illusions.fill_sampling(model, Sampling(guidance=1.5, steps=7), "anagram").guidance == 1.5
    other = "ddim" if d.sampler != "ddim" else "ddpm"
    assert (
        illusions.fill_sampling(model, Sampling(sampler=other), "anagram").steps is None
    )  # the model's rule for other samplers
    assert illusions.fill_sampling(model, Sampling(stride=3), "anagram").steps is None
    assert (
        illusions.fill_sampling(_fake_model(guidance=False), Sampling(), "hybrid").guidance is None
    )  # cannot guide: stays off
    assert illusions.defaults(_fake_model(timesteps=20), "anagram").steps <= 20
    text = illusions.defaults(_fake_model("text"), "anagram")
    assert (text.sampler, text.steps, text.guidance) == ("ddpm", 30, 10.0)  # the visual-anagrams reference


def test_hybrid_filter_scales_with_the_image_and_a_lone_sigma_gets_its_kernel():
    from diffcli.generation import illusions
    from diffcli.generation.illusions import hybrid_filter

    assert illusions.hybrid_filter(_fake_model("text", size=64)) == (33, 2.0)  # the reference at 64 px
    kernel, sigma = illusions.hybrid_filter(_fake_model(size=28))
    assert kernel % 2 == 1 and kernel >= 6 * sigma + 1
    k56, s56 = illusions.hybrid_filter(_fake_model(size=56))
    assert s56 == pytest.approx(2 * sigma)
    assert hybrid_filter(_fake_model(size=28), None, 1.0) == (7, 1.0)
    assert hybrid_filter(_fake_model(size=28), 5, None) == (5, sigma)


@pytest.fixture
def tiny(home):
    make_tiny_model(home, "tiny", timesteps=20)
    return ["--model", "tiny", "--device", "cpu"]


@pytest.mark.parametrize(
    "task,command", [("anagram", ["anagram", "6", "9", "--view", "rot180"]), ("hybrid", ["hybrid", "1", "7"])]
)
def test_eval_generates_illusions_with_the_commands_settings(tiny, task, command, monkeypatch):
    """One source of defaults: `eval --task` measures what the command makes."""
    from diffcli.scoring import runner

    made = run_cli([*command, *tiny, "--seed", "0", "--json", "-o", "x.png"])
    assert made.code == 0, made.stderr
    seen = {}

    def spy(model, classifier, settings, pairs, n, *args, **kwargs):
        seen.update(sampler=settings.sampler, steps=settings.steps, guidance=settings.guidance, args=args)
        raise SystemExit(0)

    monkeypatch.setattr(runner, f"evaluate_{task}s", spy)
    monkeypatch.setattr(
        "diffcli.scoring.classifier.load_or_train_classifier",
        lambda *a, **k: SimpleNamespace(name="c", label_names=[str(i) for i in range(10)], channels=1, size=16),
    )
    with pytest.raises(SystemExit):
        from diffcli import api

        api.evaluate(
            "tiny",
            task,
            device="cpu",
            progress=False,
            pairs="6:9" if task == "anagram" else "1:7",
            **({"view": "rot180"} if task == "anagram" else {}),
        )
    summary = made.json()
    assert (seen["sampler"], seen["steps"], seen["guidance"]) == (
        summary["sampler"],
        summary["steps"],
        summary["guidance"],
    )
    if task == "hybrid":
        assert tuple(seen["args"][:4]) == (
            summary["kernel"],
            summary["sigma"],
            summary["far_first"],
            summary["near_last"],
        )
    else:
        assert seen["args"][1] == summary["weight"]


# ----- best of K ----------------------------------------------------------------------------------
def test_choose_prefers_readings_as_intended_then_the_weakest_confidence():
    from diffcli.generation.batches import choose
    from diffcli.scoring.readings import Reading

    first = Reading(
        torch.tensor([0.9, 0.6, 0.99, 0.2, 0.3, 0.1]), torch.tensor([True, True, True, False, False, False])
    )
    second = Reading(
        torch.tensor([0.4, 0.7, 0.95, 0.9, 0.2, 0.1]), torch.tensor([False, True, False, True, False, False])
    )
    keep, every = choose([first, second], 3)
    assert keep == [1, 0] and every == [True, False]  # group 1: the only one read both ways; group 2: none (most hits)
    keep, _ = choose([Reading(torch.tensor([0.5, 0.8]), torch.tensor([True, True]))], 2)
    assert keep == [1]
    with pytest.raises(ValueError, match="groups of 4"):
        choose([first], 4)


class FakeReader:
    """Confidence = the image's mean brightness; reads as intended above `threshold`."""

    name = "fake"

    def __init__(self, threshold=0.0):
        self.threshold = threshold

    def read(self, pixels, targets, rivals=None):
        brightness = torch.as_tensor(np.asarray(pixels)).float().mean(dim=(1, 2, 3))
        return SimpleNamespace(confidence=brightness, correct=brightness > self.threshold)


@pytest.fixture
def fake_reader(monkeypatch):
    reader = FakeReader()
    monkeypatch.setattr("diffcli.jobs.generating.reader_for", lambda model, notify: reader)
    return reader


@pytest.mark.parametrize(
    "command,stem,per_image",
    [
        (["anagram", "6", "9", "--view", "rot180"], "6-{}", 2),
        (["hybrid", "1", "7"], "1-7-{}", 1),
        (["sample", "3"], "3-{}", 1),
    ],
)
def test_best_of_keeps_the_best_candidate_and_its_seed_makes_it_again(
    tiny, fake_reader, tmp_path, command, stem, per_image
):
    r = run_cli(
        [
            *command,
            *tiny,
            "--best-of",
            "3",
            "-n",
            "2",
            "--seed",
            "5",
            "--steps",
            "4",
            "--json",
            "--out-dir",
            str(tmp_path / "best"),
        ]
    )
    assert r.code == 0, r.stderr
    summary = r.json()
    assert summary["best_of"] == 3 and len(summary["kept"]) == 2 and summary["seed"] == 5
    kept = [k["seed"] for k in summary["kept"]]
    assert 5 <= kept[0] <= 7 and 8 <= kept[1] <= 10 and summary["seeds"] == kept  # one of each group
    assert all(k["candidate"] == k["seed"] - 5 - 3 * i + 1 for i, k in enumerate(summary["kept"]))
    assert "kept candidate" in r.stderr and "%" in r.stderr
    assert len(summary["outputs"]) == 2 * per_image

    # every candidate of the first group, made one by one: the kept one is the brightest (the fake
    # reader's confidence; a hybrid's weakest reading is its low-pass, so only its seed is checked)
    brightness = {}
    for seed in (5, 6, 7):
        one = run_cli(
            [*command, *tiny, "-n", "1", "--seed", str(seed), "--steps", "4", "--out-dir", str(tmp_path / f"s{seed}")]
        )
        assert one.code == 0, one.stderr
        image = png_array(tmp_path / f"s{seed}" / f"{stem.format(seed)}.png")
        brightness[seed] = image.astype(float).mean()
        if seed == kept[0]:
            again = image
    if command[0] != "hybrid":
        assert kept[0] == max(brightness, key=brightness.get)
    # the recorded seed makes the same image
    np.testing.assert_array_equal(png_array(tmp_path / "best" / f"{stem.format(kept[0])}.png"), again)


def test_best_of_metadata_and_the_single_figure_record_the_kept_seed(tiny, fake_reader, tmp_path):
    from diffcli.io.images import read_metadata

    r = run_cli(
        [
            "anagram",
            "6",
            "9",
            *tiny,
            "--best-of",
            "4",
            "--seed",
            "10",
            "--steps",
            "3",
            "--json",
            "-o",
            str(tmp_path / "a.png"),
        ]
    )
    assert r.code == 0, r.stderr
    kept = r.json()["kept"][0]
    meta = read_metadata(tmp_path / "a.png")
    assert meta["seed"] == kept["seed"] and meta["best_of"] == 4 and meta["kept_seeds"] == [kept["seed"]]
    r = run_cli(
        ["anagram", "6", "9", *tiny, "--best-of", "2", "--seed", "10", "--steps", "3", "--out-dir", str(tmp_path / "d")]
    )
    for path in (tmp_path / "d").glob("*.png"):  # one file per image: its own seed, candidate and confidences
        meta = read_metadata(path)
        assert (
            meta["seed"] in (10, 11)
            and meta["candidate"] == meta["seed"] - 9
            and meta["best_of"] == 2
            and len(meta["confidence"]) == 2
        )


def test_best_of_warns_when_no_candidate_reads_as_intended(tiny, fake_reader):
    fake_reader.threshold = 2.0  # nothing is that bright
    r = run_cli(["hybrid", "1", "7", *tiny, "--best-of", "2", "--seed", "0", "--steps", "3", "--json", "-o", "h.png"])
    assert r.code == 0, r.stderr
    warning = "warning: none of the 2 candidates reads as 1 (afar) and 7 (up close); kept the closest, candidate"
    assert warning in r.stderr
    assert r.json()["read_as_intended"] == 0 and r.json()["kept"][0]["reads"] is False


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["anagram", "6", "9", "--best-of", "0"], 2, "--best-of must be between 1 and 64"),
        (["hybrid", "1", "7", "--best-of", "65"], 2, "--best-of must be between 1 and 64"),
        (["sample", "3", "--best-of", "2", "--chain"], 2, "--best-of keeps one image of several and --chain"),
        (["hybrid", "1", "7", "--far-first", "1.5"], 2, "--far-first must be in [0, 1]"),
        (
            ["hybrid", "1", "7", "--far-first", "0.7", "--near-last", "0.5"],
            2,
            "--far-first 0.7 and --near-last 0.5 add up to more than the whole reverse process",
        ),
    ],
)
def test_best_of_bad_input(tiny, fake_reader, args, code, message):
    r = run_cli([*args, *tiny, "-o", "x.png"])
    assert r.code == code and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_eval_checks_the_hybrid_shares(tiny):
    r = run_cli(["eval", "--task", "hybrid", "--near-last", "nan", *tiny])
    assert r.code == 2 and "--near-last must be a finite number" in r.stderr, r.stderr


def test_best_of_needs_something_to_read_against(home):
    make_tiny_model(home, "uncond", cond="none", timesteps=10)
    r = run_cli(["sample", "--model", "uncond", "--best-of", "2", "--device", "cpu", "-o", "x.png"])
    assert r.code == 2 and "--best-of for samples needs a class model" in r.stderr


def test_text_models_without_clip_say_what_best_of_needs(monkeypatch):
    from diffcli.errors import DiffcliError
    from diffcli.scoring import clip_score, readings

    def missing(*args, **kwargs):
        raise DiffcliError("CLIP scores need open_clip, which is not installed", clip_score.INSTALL_HINT)

    monkeypatch.setattr(clip_score, "load_clip", missing)
    with pytest.raises(DiffcliError) as caught:
        readings.reader_for(SimpleNamespace(cond_type="text", device="cpu", name="if"), print)
    line = caught.value.one_line()
    assert (
        "`best_of` scores a text-to-image model's candidates with CLIP" in line
        and "pip install 'diffcli[clip]'" in line
    )


def test_clip_reader_prefers_the_prompt_the_image_matches():
    """A stand-in CLIP whose image embedding is the image's mean colour and whose text embedding names
    a colour: a red image reads as "red" against "blue"."""
    from diffcli.models.backends.base import Prompt
    from diffcli.scoring.readings import ClipReader

    colours = {"red": [1.0, 0.0, 0.0], "blue": [0.0, 0.0, 1.0]}

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def encode_image(self, x):
            return x.mean(dim=(2, 3))

        def encode_text(self, tokens):
            return tokens

    tokenizer = lambda texts: torch.tensor([colours[t] for t in texts])  # noqa: E731
    clip = SimpleNamespace(
        model=Stub(),
        tokenizer=tokenizer,
        image_size=8,
        mean=(0.0, 0.0, 0.0),
        std=(0.2, 0.2, 0.2),
        name="stub",
        device=torch.device("cpu"),
    )
    red = torch.zeros(2, 3, 8, 8)
    red[:, 0] = 1.0
    reading = ClipReader(clip).read(red, [Prompt("red"), Prompt("blue")], [[Prompt("blue")], [Prompt("red")]])
    assert reading.correct.tolist() == [True, False]
    assert reading.confidence[0] > 0.5 > reading.confidence[1]


def test_eval_best_of_counts_what_the_commands_would_keep():
    from diffcli.models.backends.base import Prompt
    from diffcli.scoring.readings import Reading
    from diffcli.scoring.runner import _best_of

    a, b, c = Prompt("a", 0), Prompt("b", 1), Prompt("c", 2)
    first, second = [a] * 4 + [c] * 4, [b] * 4 + [a] * 4  # pairs a:b then c:a, two groups of 2 each
    image = Reading(torch.tensor([0.9] * 8), torch.tensor([True, False, False, False, True, True, True, False]))
    view = Reading(torch.tensor([0.8] * 8), torch.tensor([True, True, False, True, False, False, True, True]))
    report = _best_of([image, view], first, second, 2, ("image", "view"), ["a", "b", "c"])
    assert (report["k"], report["n"], report["successes"]) == (2, 4, 2)
    assert report["pairs"] == [
        {
            "image": "a",
            "view": "b",
            "n": 2,
            "successes": 1,
            "rate": 0.5,
        },  # group 1: candidate 1 reads both ways; group 2: none
        {"image": "c", "view": "a", "n": 2, "successes": 1, "rate": 0.5},
    ]


def test_eval_reports_best_of_beside_the_per_seed_rate(home):
    from test_cli_eval import SHAPES
    from test_evaluate import write_shapes_folder

    folder = make_tiny_model(home, "shapes-model", timesteps=20, channels=3, labels=list(SHAPES))
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = {"name": "folder:" + str(write_shapes_folder(home.parent / "data" / "shapes"))}
    config["conditioning"]["aliases"] = {}
    (folder / "config.json").write_text(json.dumps(config))
    r = run_cli(
        (
            "eval --model shapes-model --task anagram --view rot180 -n 2 --best-of 3 --steps 2 --device cpu --json"
        ).split()
    )
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["per_pair"] == 6 and report["n"] == 36  # 6 ordered pairs x 2 images x 3 candidates
    best = report["best_of"]
    assert best["k"] == 3 and best["n"] == 12 and len(best["pairs"]) == 6
    assert best["rate"] >= report["rate"] - 1e-9  # keeping the best of 3 never does worse than one seed on average
    table = run_cli("eval --model shapes-model --task hybrid -n 1 --best-of 2 --steps 2 --device cpu".split())
    assert table.code == 0 and "with --best-of 2:" in table.stdout and "of 6 images read both ways" in table.stdout
    bad = run_cli(["eval", "--model", "shapes-model", "--best-of", "2", "--device", "cpu"])
    assert bad.code == 2 and "--best-of is measured for --task anagram and hybrid" in bad.stderr
    huge = run_cli(
        ["eval", "--model", "shapes-model", "--task", "anagram", "-n", "100000", "--best-of", "64", "--device", "cpu"]
    )  # at once
    assert (
        huge.code == 2
        and "100000 seeds x 64 candidates x 6 pairs is 38400000 images, more than one evaluation makes (1000000); "
        "lower -n or --best-of, or pick --pairs"
        in huge.stderr
    )
