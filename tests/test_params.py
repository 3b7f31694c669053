"""The one declaration of each option: the CLI option, the Python keyword and the value rule all come from it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from diffcli import checks, params
from diffcli.cli.params import options
from diffcli.errors import UsageError
from diffcli.params import param


@dataclass(kw_only=True)
class Steps:
    steps: int | None = param(None, help="Sampler steps.", low=1, high=1000, metavar="INT")
    guidance: float | None = param(None, help="CFG scale.", flags=("-g", "--guidance"), low=0, high=100)


@dataclass(kw_only=True)
class Toy:
    classes: list[str] | None = param(None, help="Classes.", argument=True, metavar="CLASS")
    n: int = param(1, help="Images per class.", flags=("-n",), low=1, high=50)
    view: str = param("flip", help="The view.", choices=("flip", "rot180"))
    kernel: int = param(5, help="Odd kernel.", rule=checks.odd_kernel)
    chain: bool = param(False, help="Lay out the chain.")
    sampling: Steps = param(help="How to sample.", factory=Steps)
    secret: int = field(default=3)  # not declared: neither offered nor checked


def test_check_applies_each_declared_rule_and_normalises_numpy_numbers():
    toy = params.check(Toy(n=np.int64(3), classes="7", sampling=Steps(steps=np.int32(20))))
    assert toy.n == 3 and type(toy.n) is int
    assert toy.classes == ["7"]
    assert params.check(toy.sampling).steps == 20
    with pytest.raises(UsageError, match="`n` must be between 1 and 50, got 51"):
        params.check(Toy(n=51))
    with pytest.raises(UsageError, match="unknown `view` 'up'"):
        params.check(Toy(view="up"))
    with pytest.raises(UsageError, match="`kernel` must be an odd"):
        params.check(Toy(kernel=4))
    with pytest.raises(UsageError, match="`chain` must be True or False"):
        params.check(Toy(chain="yes"))
    with pytest.raises(UsageError, match="`guidance` must be in"):
        params.check(Steps(guidance=1e308))


def test_build_refuses_unknown_keywords_with_the_nearest_name():
    with pytest.raises(UsageError, match="unknown option `veiw`; did you mean `view`"):
        params.build(Toy, {"veiw": "flip"})
    assert params.build(Toy, {"n": 2}).n == 2


def test_signature_lists_declared_names_and_defaults():
    sig = params.signature(Toy, first=("classes", "n"))
    assert list(sig.parameters)[:3] == ["classes", "n", "view"]
    assert sig.parameters["n"].default == 1 and sig.parameters["view"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "secret" not in sig.parameters


def test_cli_options_come_from_the_declaration():
    app = typer.Typer()
    seen = {}

    @app.command()
    @options(request=Toy)
    def go(*, request: Toy) -> None:
        seen["request"] = request

    runner = CliRunner()
    done = runner.invoke(app, ["7", "3", "-n", "2", "--view", "rot180", "--chain", "--steps", "9", "-g", "2.5"])
    assert done.exit_code == 0, done.output
    request = seen["request"]
    assert request.classes == ["7", "3"] and request.n == 2 and request.view == "rot180" and request.chain
    assert request.sampling == Steps(steps=9, guidance=2.5)
    helped = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for text in ("Images per class.", "--steps", "Sampler steps.", "--guidance", "-g", "The view."):
        assert text in helped
    assert "--secret" not in helped
    done = runner.invoke(app, [])
    assert seen["request"].classes is None and seen["request"].sampling == Steps()
