"""bench/quality.py's bookkeeping: which checkpoint is the time to 98 %, the ratio, the goal, the plot."""

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import load_script, png_array

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    return load_script(BENCH, "bench_quality")


def _row(recipe, checkpoint, seconds, accuracy, lowest=0.96, fid=10.0, floor=8.0):
    return {
        "recipe": recipe,
        "checkpoint": checkpoint,
        "epochs": 1,
        "steps": 100,
        "train_wall_s": seconds,
        "train_step_s": seconds * 0.9,
        "img_s": 500.0,
        "accuracy": accuracy,
        "min_class_accuracy": lowest,
        "worst": "8",
        "fid": fid,
        "fid_floor": floor,
        "fid_over_floor": round(fid / floor, 3),
        "n": 1000,
        "sampler": "ddim 20",
        "guidance": 2.0,
    }


def _results(default, course, long=()):
    return {"default": list(default), "course": list(course), "long": list(long)}


def test_time_to_98_is_the_quickest_checkpoint_that_reaches_it(quality):
    default = [
        _row("default", "--epochs 5", 300, 0.995),
        _row("default", "--epochs 1", 60, 0.985),
        _row("default", "--epochs 2", 120, 0.97),
    ]
    course = [
        _row("course", "epoch 1", 700, 0.95),
        _row("course", "epoch 2", 1400, 0.975),
        _row("course", "epoch 3", 2100, 0.981),
    ]
    s = quality.summary(_results(default, course))
    assert s["default_time_to_98_checkpoint"] == "--epochs 1" and s["default_time_to_98_s"] == 60
    assert s["course_time_to_98_checkpoint"] == "epoch 3" and s["course_time_to_98_s"] == 2100
    assert s["time_to_98_ratio"] == round(60 / 2100, 4)


def test_goal_needs_every_class_and_the_fid_too(quality):
    default = [
        _row("default", "--epochs 1", 60, 0.99, lowest=0.93),  # one class too low
        _row("default", "--epochs 2", 120, 0.99, fid=13.0, floor=8.0),  # FID 1.63x the floor
        _row("default", "--epochs 5", 300, 0.99, lowest=0.97, fid=11.0, floor=8.0),
    ]
    course = [_row("course", "epoch 1", 600, 0.985)]
    s = quality.summary(_results(default, course))
    assert s["default_time_to_goal_checkpoint"] == "--epochs 5"
    assert s["time_to_goal_vs_course_98"] == round(300 / 600, 4)


def test_a_course_that_never_reaches_98_gives_an_upper_bound(quality):
    results = _results(
        [_row("default", "--epochs 1", 60, 0.985)],
        [_row("course", "epoch 1", 600, 0.9), _row("course", "epoch 2", 1200, 0.97)],
    )
    s = quality.summary(results)
    assert s["course_time_to_98_s"] is None and "time_to_98_ratio" not in s
    assert s["time_to_98_ratio_at_most"] == round(60 / 1200, 4)
    table = quality.markdown({**results, "summary": s, **_meta()})
    assert "did not reach 98 %" in table and "| course | epoch 2 |" in table


def _meta():
    return {
        "date": "today",
        "machine": {"cpu": "cpu", "cores": 2, "torch": "x", "device": "cpu"},
        "wall_s": 60.0,
        "load": {"load_when_started": [0.5]},
        "load_at_end": [0.7],
    }


def test_plot_draws_both_panels(quality, tmp_path):
    default = [_row("default", "--epochs 1", 60, 0.985), _row("default", "--epochs 2", 120, 0.99)]
    course = [_row("course", "epoch 1", 600, 0.93, fid=40.0), _row("course", "epoch 2", 1200, 0.97, fid=20.0)]
    quality.plot(_results(default, course), tmp_path / "plot.png")
    image = png_array(tmp_path / "plot.png")
    assert image.ndim == 3 and image.shape[0] > image.shape[1]  # two panels, one above the other
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 10  # lines, not a blank canvas


def test_a_later_section_is_listed_with_its_own_date(quality):
    results = _results(
        [_row("default", "--epochs 1", 60, 0.985)],
        [_row("course", "epoch 3", 2100, 0.99)],
        [_row("default-e20", "epoch 20", 3200, 0.999)],
    )
    update = {
        "sections": ["long"],
        "date": "later",
        "machine": {"cpu": "other cpu", "cores": 2, "torch": "y", "device": "cpu"},
        "wall_s": 3600.0,
        "load": {"load_when_started": [0.1]},
        "load_at_end": [0.2],
    }
    table = quality.markdown({**results, "summary": quality.summary(results), **_meta(), "updates": [update]})
    assert (
        "The long rows were measured later, on later on other cpu" in table and "`--sections long`, 60 minutes" in table
    )
    assert "| default-e20 | epoch 20 |" in table


def test_sections_must_be_known(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, str(BENCH), "--sections", "long,nope", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "give one or more of course, default, long" in done.stderr
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sections", "long", "--out", str(tmp_path), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert (
        done.returncode != 0
        and "keeps the other sections" in done.stderr
        and "measure every section first" in done.stderr
    )


def test_add_levers_needs_the_levers_section(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, str(BENCH), "--sections", "long", "--add-levers", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "--add-levers adds lever rows: give it with --sections levers" in done.stderr


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_a_damaged_results_file_is_refused_in_one_line(tmp_path, content):
    import subprocess

    (tmp_path / "quality.json").write_text(content)
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sections", "long", "--out", str(tmp_path), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "restore it from git or measure every section" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_levers_parse_with_the_baseline_first_and_bad_items_refused(quality):
    levers = quality.parse_levers("baseline=; bf16=--precision bf16;  flow = --objective flow --lr 0.004 ;")
    assert levers == [
        ("baseline", []),
        ("bf16", ["--precision", "bf16"]),
        ("flow", ["--objective", "flow", "--lr", "0.004"]),
    ]
    with pytest.raises(SystemExit, match="LABEL=FLAGS"):
        quality.parse_levers("baseline=; --precision bf16")
    with pytest.raises(SystemExit, match="empty"):
        quality.parse_levers(" ; ")
    for bad in ("long=--objective flow --epochs", "long=--epochs two", "long=--epochs 0"):
        with pytest.raises(SystemExit, match="--epochs needs a whole number"):
            quality.parse_levers(f"fp32=--precision fp32; {bad}")


def test_lever_table_compares_each_with_the_baseline(quality):
    rows = [
        {**_row("lever", "baseline", 160, 0.984, lowest=0.94), "flags": ""},
        {**_row("lever", "bf16", 120, 0.988), "flags": "--precision bf16"},
    ]
    table = "\n".join(quality.lever_table(rows))
    assert "| baseline | `(none)` | 1 | 2.67 min | 1.000 |" in table
    assert "| bf16 | `--precision bf16` | 1 | 2.00 min | 0.750 |" in table
    assert quality.lever_table([]) == []
    # Levers never count as the default recipe's time to 98 %.
    s = quality.summary(
        {
            **_results([_row("default", "--epochs 1", 160, 0.984)], [_row("course", "epoch 2", 1600, 0.98)]),
            "levers": rows,
        }
    )
    assert s["default_time_to_98_s"] == 160


def test_a_lever_with_its_own_epochs_runs_that_long(quality):
    calls = []

    class FakeBench:
        def train(self, name, args, max_steps, resume):
            calls.append(args)
            return type(
                "C",
                (),
                {
                    "last_json": lambda self: {"step": 10, "training_seconds": 5.0, "images_per_second": 100.0},
                    "wall_s": 6.0,
                    "describe": lambda self: {},
                },
            )()

        def score(self, name, per_class):
            return {
                "accuracy": 0.99,
                "min_class_accuracy": 0.97,
                "worst": "9",
                "fid": 10.0,
                "fid_floor": 8.0,
                "fid_over_floor": 1.25,
                "n": 20,
                "sampler": "ddim 20",
                "guidance": 2.0,
            }, type("C", (), {"describe": lambda self: {}})()

        def record(self, results, section, rows):
            pass

        def trained_with(self, name):
            return {"objective": "flow"}

    rows = quality.lever_runs(
        FakeBench(),
        [("fp32", ["--precision", "fp32"]), ("flow, 2 epochs", ["--objective", "flow", "--epochs", "2"])],
        1,
        2,
        {},
    )
    assert calls == [["--precision", "fp32", "--epochs", "1"], ["--objective", "flow", "--epochs", "2"]]
    assert [r["epochs"] for r in rows] == [1, 2] and rows[1]["flags"] == "--objective flow"


def test_a_section_measured_again_leaves_the_earlier_update(quality):
    updates = [
        {"sections": ["long"], "date": "a"},
        {"sections": ["levers"], "date": "b"},
        {"sections": ["default", "levers"], "date": "c"},
    ]
    assert quality.later_updates(updates, ["levers"]) == [
        {"sections": ["long"], "date": "a"},
        {"sections": ["default"], "date": "c"},
    ]


def test_added_levers_are_compared_with_their_own_runs_baseline(quality):
    def row(label, wall, accuracy):
        return {
            "checkpoint": label,
            "flags": "",
            "epochs": 1,
            "train_wall_s": wall,
            "img_s": 600,
            "accuracy": accuracy,
            "min_class_accuracy": 0.9,
            "worst": "9",
            "fid_over_floor": 2.0,
        }

    earlier = [row("fp32", 200.0, 0.98), row("bf16", 100.0, 0.99)]
    rows = quality.with_levers(
        earlier, [row("bf16 again", 120.0, 0.99), row("min-SNR", 60.0, 0.97)], "2026-12-02 09:00"
    )
    assert [r.get("run") for r in rows] == [None, None, "2026-12-02 09:00", "2026-12-02 09:00"]
    table = "\n".join(quality.lever_table(rows))
    assert "| bf16 | `(none)` | 1 | 1.67 min | 0.500 |" in table  # against fp32, its run's first row
    assert "| min-SNR | `(none)` | 1 | 1.00 min | 0.500 |" in table  # against "bf16 again", not fp32
    assert "| bf16 again | `(none)` | 1 | 2.00 min | 1.000 |" in table and table.count(" run |") == 1
    assert quality.with_levers([], earlier, "d")[0]["run"] == "d"  # without --add-levers a run stands alone
    dated = quality.with_levers(earlier, [row("x", 1.0, 0.9)], "now", "then")
    assert [r["run"] for r in dated] == ["then", "then", "now"]
    assert (
        quality.levers_date(
            {
                "date": "a",
                "levers": earlier,
                "updates": [{"sections": ["default", "levers"], "date": "b"}, {"sections": ["long"], "date": "c"}],
            }
        )
        == "b"
    )


def test_each_row_names_what_its_recipe_trained_with(quality):
    # The default recipe changed over the table's history: a row that recorded its objective, timestep
    # sampling and precision shows them; an older row without them shows its recipe name alone.
    flow = {
        **_row("default-e20", "epoch 1", 300, 0.99),
        "trained_with": {"objective": "flow", "timestep_sampling": "logit-normal", "precision": "fp32"},
    }
    results = _results([_row("default", "--epochs 1", 60, 0.985)], [_row("course", "epoch 2", 1600, 0.98)], [flow])
    table = quality.markdown({**results, "summary": quality.summary(results), **_meta()})
    assert "| default-e20 (flow, logit-normal, fp32) | epoch 1 |" in table
    assert "| default | --epochs 1 |" in table
    assert (
        quality._with_detail("default, --epochs 20 run", flow) == "default, --epochs 20 run: flow, logit-normal, fp32"
    )
    assert quality._with_detail("course recipe", _row("course", "epoch 1", 600, 0.9)) == "course recipe"


def test_trained_with_reads_what_a_real_run_saved(quality, home):
    # The bench reads the row's recipe from the model `diffcli train` just wrote, not from its flags.
    from tests.helpers import run_cli
    from tests.test_cli_train import TINY

    r = run_cli(["train", *TINY, "--max-steps", "1", "--precision", "fp32", "--name", "m", "-q"])
    assert r.code == 0, r.stderr
    bench = quality.Bench({"DIFFCLI_HOME": str(home)}, [], 1, 1)
    assert bench.trained_with("m") == {"objective": "flow", "timestep_sampling": "logit-normal", "precision": "fp32"}


def test_the_machine_line_names_native_bf16_when_it_was_recorded(quality):
    results = _results([_row("default", "--epochs 1", 60, 0.985)], [_row("course", "epoch 3", 2100, 0.99)])
    meta = _meta()
    assert "on cpu (2 cores, torch x, device cpu)" in quality.markdown(
        {**results, "summary": quality.summary(results), **meta}
    )  # an older record
    for native, words in ((True, "2 cores, native bf16, torch x"), (False, "2 cores, no native bf16, torch x")):
        meta["machine"]["native_bf16"] = native
        assert words in quality.markdown({**results, "summary": quality.summary(results), **meta})


def test_render_only_redraws_the_table_and_plot_from_the_results_file(quality, tmp_path):
    import json
    import subprocess

    results = _results(
        [_row("default", "--epochs 1", 60, 0.985)],
        [_row("course", "epoch 1", 600, 0.93, fid=40.0), _row("course", "epoch 2", 1200, 0.985)],
    )
    (tmp_path / "quality.json").write_text(json.dumps({**results, **_meta()}))
    plot = tmp_path / "plot.png"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--render-only", "--out", str(tmp_path), "--plot", str(plot)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "quality.md").read_text()
    assert (
        "| course | epoch 2 |" in table and "Time to 98 %, default / course: **0.05** (1/20)." in table
    )  # the summary computed afresh
    assert png_array(plot).shape[0] > 100
    missing = tmp_path / "elsewhere"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--render-only", "--out", str(missing), "--plot", str(plot)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr and "does not exist: measure first" in done.stderr


def test_render_only_refuses_an_incomplete_file_and_an_unwritable_plot_in_one_line(tmp_path):
    import json
    import subprocess

    (tmp_path / "quality.json").write_text("{}")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--render-only", "--out", str(tmp_path), "--plot", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr and "lacks date, machine" in done.stderr
    results = _results([_row("default", "--epochs 1", 60, 0.985)], [_row("course", "epoch 2", 1200, 0.985)])
    (tmp_path / "quality.json").write_text(json.dumps({**results, **_meta()}))
    under_a_file = tmp_path / "quality.json" / "p.png"  # a folder that cannot exist, even for root
    done = subprocess.run(
        [sys.executable, str(BENCH), "--render-only", "--out", str(tmp_path), "--plot", str(under_a_file)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (
        "cannot write" in done.stderr
        and "redraw with --render-only" in done.stderr
        and len(done.stderr.strip().splitlines()) == 1
    )
