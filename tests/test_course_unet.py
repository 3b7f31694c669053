"""The course UNet's layout: new models are built as the course draws them (the strided / transposed
convolution changes the width), checked against studies/course_reference.py's independent network;
models without `widen_in` in config.json build the first layout (the width kept through the resampling) and load."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from diffcli.models.course_unet import CourseUNet

ROOT = Path(__file__).resolve().parents[1]


def _reference():
    spec = importlib.util.spec_from_file_location("course_reference", ROOT / "studies" / "course_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_net():
    return _reference().Net(D=64, K=10)


def _shapes(module: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(v.shape) for v in module.state_dict().values()]


def test_the_course_layout_matches_the_independent_reference_tensor_for_tensor():
    ours = CourseUNet(1, 64, 10, True, 300)
    assert _shapes(ours) == _shapes(_reference_net())
    assert sum(p.numel() for p in ours.parameters()) == 2_019_201
    # The first UpBlock's transposed convolution maps 4D to D (the first layout keeps 4D there).
    assert tuple(ours.up1[0].weight.shape) == (256, 64, 4, 4)
    assert tuple(ours.down2[0].weight.shape) == (128, 64, 3, 3)


def test_the_old_layout_is_still_built_on_request():
    old = CourseUNet(1, 64, 10, True, 300, widen_in="convblock")
    assert sum(p.numel() for p in old.parameters()) == 2_974_145
    assert tuple(old.up1[0].weight.shape) == (256, 256, 4, 4)
    with pytest.raises(ValueError, match="widen_in"):
        CourseUNet(1, 8, 10, True, 300, widen_in="sideways")


@pytest.mark.parametrize("preset, overrides", [("course", {}), ("denoiser", {}), ("default", {"arch": "course"})])
def test_every_recipe_that_builds_the_course_unet_uses_the_course_layout(preset, overrides):
    from diffcli.training.recipe import settings_for

    arch = settings_for(preset, overrides).architecture
    assert arch["type"] == "course" and arch["widen_in"] == "resample"


def _config(architecture: dict):
    from diffcli.data.names import MNIST_LABELS
    from diffcli.models.config import ModelConfig

    return ModelConfig(
        name="c",
        architecture=architecture,
        image={"channels": 1, "size": 28, "range": [0.0, 1.0]},
        schedule={"kind": "linear", "timesteps": 300, "beta_start": 1e-4, "beta_end": 0.02},
        prediction="eps",
        objective="diffusion",
        conditioning={"type": "class", "labels": MNIST_LABELS, "aliases": {}, "null_class": True},
        sampling={},
        dataset={"name": "mnist"},
        training={},
    )


def test_a_config_without_the_key_builds_the_layout_its_weights_were_trained_with():
    from diffcli.models.networks import build_network

    old = build_network(_config({"type": "course", "width": 8}))
    new = build_network(_config({"type": "course", "width": 8, "widen_in": "resample"}))
    assert _shapes(old) == _shapes(CourseUNet(1, 8, 10, True, 300, widen_in="convblock"))
    assert _shapes(new) == _shapes(CourseUNet(1, 8, 10, True, 300))
    assert _shapes(old) != _shapes(new)


def test_an_old_course_model_still_samples_and_a_bad_layout_is_one_line(home, tmp_path):
    from helpers import make_tiny_model, png_array, run_cli

    import diffcli

    make_tiny_model(home, "old-course", size=28, timesteps=20, architecture={"type": "course", "width": 4})
    # Its weights load into the first layout (a transposed convolution that keeps 4D = 16 channels).
    network = diffcli.load("old-course", device="cpu").loaded.network
    assert tuple(network.up1[0].weight.shape) == (16, 16, 4, 4)
    out = tmp_path / "s.png"
    result = run_cli(["sample", "3", "-m", "old-course", "--steps", "2", "--seed", "0", "-o", str(out)])
    assert result.code == 0, result.stderr
    image = png_array(out)
    assert image.shape[:2] == (28, 28) and image.std() > 0  # one drawn 28x28 digit, not a blank canvas

    config = home / "models" / "old-course" / "config.json"
    data = json.loads(config.read_text())
    data["architecture"]["widen_in"] = "sideways"
    config.write_text(json.dumps(data))
    result = run_cli(["sample", "3", "-m", "old-course", "--steps", "2", "-o", str(out)])
    assert result.code != 0
    assert (
        "architecture.widen_in must be one of 'resample', 'convblock'" in result.stderr
        and "Traceback" not in result.stderr
    )

    data["architecture"]["widen_in"] = "resample"  # valid, but not the layout these weights were trained with
    config.write_text(json.dumps(data))
    result = run_cli(["sample", "3", "-m", "old-course", "--steps", "2", "-o", str(out)])
    assert result.code != 0
    assert "do not fit the architecture in config.json" in result.stderr and "Traceback" not in result.stderr


def test_the_course_preset_trains_step_for_step_as_the_independent_reference(home):
    """`--preset course` and studies/course_reference.py's loop, from the same initial weights on the same
    batches (images, classes, dropped classes, timesteps, noise), reach the same network: the schedule,
    its indexing, the t / T input, the class dropout, the loss and the optimiser agree."""
    from diffcli.data import load_dataset
    from diffcli.models.registry import Registry
    from diffcli.training.recipe import settings_for
    from diffcli.training.trainer import Trainer

    ref = _reference()
    settings = settings_for("course", dict(dataset="glyphs", limit=64, batch_size=16, width=8, seed=0))
    trainer = Trainer(
        settings,
        Registry(home).user_entry("course-replay"),
        load_dataset("glyphs", "train", limit=64, seed=0),
        None,
        torch.device("cpu"),
        view_factory=None,
    )
    net = ref.Net(D=8, K=10)
    net.load_state_dict(dict(zip(net.state_dict(), trainer.network.state_dict().values())))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    drawn: dict = {}
    indices, noise = trainer.draws.indices, trainer.draws.noise
    trainer.draws.indices = lambda *args: drawn.setdefault("idx", indices(*args))
    trainer.draws.noise = lambda *args: drawn.setdefault("draws", noise(*args))

    probe = load_dataset("glyphs", "test", limit=16, seed=0).images.float() / 255
    probe_t, probe_y = torch.arange(16) * 18, torch.arange(16) % 10

    def outputs() -> tuple[torch.Tensor, torch.Tensor]:
        # Both in training mode (batch statistics), where a conv bias that BatchNorm cancels cannot
        # show: Adam turns those biases' ~0 gradients into steps that differ by rounding alone.
        with torch.no_grad():
            ours = trainer.network(probe, probe_t, probe_y)
            theirs = net(probe, (probe_t.float() / ref.T)[:, None], torch.nn.functional.one_hot(probe_y, 10).float())
        return ours, theirs

    before, _ = outputs()
    trainer.network.train()
    net.train()
    for _ in range(4):
        drawn.clear()
        trainer._train_step()
        idx, (t, eps, dropped) = drawn["idx"], drawn["draws"]
        x, y = trainer.images[idx].float() / 255, trainer.labels[idx]
        loss = ref.training_loss(net, x, y, ~dropped, t, eps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ours, theirs = outputs()
    moved = float((ours - before).abs().max())
    differ = float((ours - theirs).abs().max())
    assert moved > 0.05, moved  # the four steps changed the network ...
    assert differ < 1e-3 * moved, (differ, moved)  # ... and both loops changed it the same way
