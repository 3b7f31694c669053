"""Training precision: `auto` picks bf16 only on a CPU with native bf16, is saved resolved, and a bf16
run resumes exactly; the course presets stay fp32 (the course's own recipe)."""

from pathlib import Path

import pytest
import torch
from helpers import run_cli
from test_cli_train import TINY, _same, _weights

from diffcli.device import cpu_has_native_bf16, resolve_precision
from diffcli.errors import UsageError
from diffcli.training.checkpoint import CHECKPOINT, load_checkpoint
from diffcli.training.recipe import settings_for

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n"


@pytest.mark.parametrize(
    "text, native", [(ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE, False), ("", False), ("processor: 0\n", False)]
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    assert cpu_has_native_bf16(info) is native


def test_no_cpuinfo_means_no_native_bf16(tmp_path):
    assert cpu_has_native_bf16(tmp_path / "absent") is False


@pytest.mark.parametrize(
    "native, device, expected",
    [(True, "cpu", "bf16"), (False, "cpu", "fp32"), (True, "cuda", "fp32"), (True, "mps", "fp32")],
)
def test_auto_is_bf16_only_on_a_cpu_that_has_it(monkeypatch, native, device, expected):
    monkeypatch.setattr("diffcli.device.cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", torch.device(device)) == expected


@pytest.mark.parametrize("choice", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_is_kept(monkeypatch, choice):
    monkeypatch.setattr("diffcli.device.cpu_has_native_bf16", lambda: True)
    assert resolve_precision(choice, torch.device("cpu")) == choice


def test_an_unknown_precision_is_refused():
    with pytest.raises(UsageError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", torch.device("cpu"))


def test_defaults_auto_for_ours_fp32_for_the_course_presets():
    assert settings_for("default", {}).precision == "auto"
    assert settings_for("course", {}).precision == "fp32"
    assert settings_for("denoiser", {}).precision == "fp32"


def _saved_precision(home: Path, name: str) -> str:
    state = load_checkpoint(home / "models" / name / "train" / CHECKPOINT, name)
    return state["settings"]["precision"]


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_saved_resolved_and_a_resume_keeps_it(home, monkeypatch, native):
    monkeypatch.setattr("diffcli.device.cpu_has_native_bf16", lambda: native)
    assert run_cli(["train", *TINY, "--epochs", "2", "--name", "m", "--max-steps", "3", "-q"]).code == 0
    expected = "bf16" if native else "fp32"
    assert _saved_precision(home, "m") == expected
    # The machine changes its mind (another CPU): the resumed run still computes as it began.
    monkeypatch.setattr("diffcli.device.cpu_has_native_bf16", lambda: not native)
    assert run_cli(["train", "--name", "m", "--resume", "--max-steps", "8", "-q"]).code == 0
    assert _saved_precision(home, "m") == expected


def test_a_bf16_run_resumes_exactly(home):
    bf16 = [*TINY, "--precision", "bf16", "--epochs", "2"]
    assert run_cli(["train", *bf16, "--name", "whole", "-q"]).code == 0
    assert run_cli(["train", *bf16, "--name", "split", "--max-steps", "3", "-q"]).code == 0
    assert run_cli(["train", "--name", "split", "--resume", "--max-steps", "8", "-q"]).code == 0
    assert _same(_weights(home, "whole"), _weights(home, "split"))
    fp32 = [*TINY, "--precision", "fp32", "--epochs", "2"]
    assert run_cli(["train", *fp32, "--name", "fp32", "-q"]).code == 0
    assert not _same(_weights(home, "whole"), _weights(home, "fp32"))  # bf16 did compute in bf16


def test_bad_precision_is_one_line(home):
    r = run_cli(["train", *TINY, "--precision", "fp8", "--name", "x"])
    assert r.code == 2 and "precision" in r.stderr and "Traceback" not in r.stderr
    assert "auto" in r.stderr  # the choices name the new default
    assert not (home / "models" / "x").exists()
