"""The generation package's shape: one list of samplers and views that the engine, the CLI and the config
schema all read, one batched run whose pixels do not depend on the batching, and a package that stays
below the jobs and the front ends."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import make_tiny_model, run_cli

PACKAGE = Path(__file__).resolve().parents[1] / "diffcli"


def test_every_listed_sampler_and_view_exists_in_the_engine():
    from diffcli.diffusion import names, samplers, views
    from diffcli.models import config

    assert [samplers.make_sampler(name).name for name in names.SAMPLERS] == list(names.SAMPLERS)
    assert [views.get_view(name).name for name in names.VIEWS] == list(names.VIEWS)
    assert config.SAMPLERS == samplers.SAMPLERS == names.SAMPLERS


def test_a_sampler_in_its_own_module_is_found_by_its_listed_name(tmp_path, monkeypatch):
    """A new sampler is a module with @register_sampler plus its line in names.py: nothing else to edit."""
    from diffcli.diffusion import names, samplers
    from diffcli.generation.settings import SamplerSettings

    (tmp_path / "euler_like.py").write_text(
        "from diffcli.diffusion.samplers import DDIMSampler, register_sampler\n\n"
        "@register_sampler()\nclass EulerLike(DDIMSampler):\n    name = 'euler-like'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(names.SAMPLER_MODULES, "euler-like", "euler_like")
    monkeypatch.setattr(names, "SAMPLERS", (*names.SAMPLERS, "euler-like"))
    monkeypatch.setattr("diffcli.generation.settings.SAMPLERS", names.SAMPLERS)
    monkeypatch.delitem(sys.modules, "euler_like", raising=False)
    SamplerSettings("euler-like", steps=3).validate()
    assert samplers.make_sampler("euler-like").name == "euler-like"
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        samplers.make_sampler("nope")


def test_help_lists_the_samplers_and_views_from_the_one_list(monkeypatch):
    from diffcli.diffusion.names import SAMPLERS, VIEWS, spoken

    monkeypatch.setenv("COLUMNS", "300")  # each option's help on one line

    assert spoken(SAMPLERS).startswith("ddpm, ddim, heun") and "dpm++" in SAMPLERS
    sample_help = run_cli(["sample", "--help"]).stdout
    assert spoken(SAMPLERS) in " ".join(sample_help.split())
    anagram_help = " ".join(run_cli(["anagram", "--help"]).stdout.split())
    assert spoken(VIEWS, notes=True) in anagram_help
    assert "flip (upside down, the course's), rot180" in anagram_help


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_generation_stays_below_jobs_and_front_ends_and_small():
    for path in (PACKAGE / "generation").glob("*.py"):
        above = {i for i in _imports(path) if i.startswith(("diffcli.jobs", "diffcli.tui", "diffcli.cli"))}
        assert not above, (path.name, above)
        assert len(path.read_text().splitlines()) <= 400, path.name


def test_the_batched_run_gives_the_same_pixels_whatever_the_batching(home):
    """`sample` (batches of 256) and `eval` (batches of 250) share one run: image i is seeds[i]'s, whatever
    the batching, up to the float rounding of a batched network call (so each keeps its batch size)."""
    from diffcli.generation.batches import generate_all
    from diffcli.generation.reverse import prompt_terms
    from diffcli.generation.settings import Sampling, resolve_sampling
    from diffcli.jobs.generating import load_generator

    make_tiny_model(home, "tiny", timesteps=8, size=8)
    model = load_generator("tiny", "cpu")
    settings = resolve_sampling(model, Sampling(sampler="ddpm", steps=3, guidance=2.0))
    prompts = [model.resolve_prompt(str(k % 3)) for k in range(5)]

    def terms(rows):
        return prompt_terms(model, [prompts[i] for i in rows], settings.guidance)

    one = generate_all(model, terms=terms, seeds=list(range(10, 15)), settings=settings, batch=5)
    split = generate_all(model, terms=terms, seeds=list(range(10, 15)), settings=settings, batch=2)
    assert one.shape == (5, 1, 8, 8) and torch.allclose(one, split, atol=1e-4)
    other = generate_all(model, terms=terms, seeds=list(range(11, 16)), settings=settings, batch=5)
    assert not torch.allclose(one, other, atol=1e-2)
