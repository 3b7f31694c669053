"""Sampling during training never changes the model: previews, sample grids and validation run the
network in eval mode, so the course UNet's BatchNorm statistics are not rewritten by pure-noise batches."""

from pathlib import Path

import pytest
import torch

TINY = dict(dataset="glyphs", limit=64, batch_size=16, width=8, timesteps=20, seed=0)


class PreviewSink:
    """Stands in for the live panel: keeps what the trainer would show."""

    def __init__(self) -> None:
        self.shown: list = []

    def preview(self, rows, caption: str = "") -> None:
        self.shown.append((rows, caption))


def _trainer(preset: str, home: Path):
    from diffcli.data import load_dataset
    from diffcli.models.registry import Registry
    from diffcli.training.recipe import settings_for
    from diffcli.training.trainer import Trainer

    settings = settings_for(preset, dict(TINY, epochs=1))
    train = load_dataset("glyphs", "train", limit=64, seed=0)
    val = load_dataset("glyphs", "test", limit=16, seed=0)
    entry = Registry(home).user_entry(f"inv-{preset}")
    return Trainer(settings, entry, train, val, torch.device("cpu"), view_factory=None)


def _snapshot(trainer) -> dict[str, torch.Tensor]:
    """Every tensor a checkpoint holds for the networks (buffers included), cloned."""
    state = {f"net.{k}": v.detach().clone() for k, v in trainer.network.state_dict().items()}
    if trainer.ema is not None:
        state.update({f"ema.{k}": v.detach().clone() for k, v in trainer.ema.state_dict().items()})
    return state


@pytest.mark.parametrize("preset, norm", [("course", torch.nn.BatchNorm2d), ("default", torch.nn.GroupNorm)])
def test_preview_grid_and_validation_leave_the_state_dict_bit_identical(home, tmp_path, preset, norm):
    trainer = _trainer(preset, home)
    assert any(isinstance(m, norm) for m in trainer.network.modules())
    trainer.network.train()
    for _ in range(2):  # real running statistics, not the initial ones
        trainer._train_step()
    before = _snapshot(trainer)
    if preset == "course":
        assert any(k.endswith("running_mean") for k in before), "the course UNet keeps BatchNorm buffers"

    from diffcli.training.evaluation import show_preview, validation_loss, write_grid

    sink = PreviewSink()
    show_preview(trainer, sink)
    write_grid(trainer, tmp_path / "grid.png")
    validation_loss(trainer)

    after = _snapshot(trainer)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [], f"sampling changed {changed[:5]}"
    assert sink.shown and sink.shown[0][0], "the preview produced frames"
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert trainer.network.training, "training resumes in train mode"
    if trainer.ema is not None:
        assert not trainer.ema.model.training


def test_course_grid_during_training_is_what_the_saved_model_samples(home, tmp_path):
    """The epoch grid shows the model as it is saved (eval mode, running statistics), not a
    train-mode network normalising each batch of noise by its own statistics."""
    from diffcli.models.backends.unet import UNetModel
    from diffcli.training.artifacts import write_sample_grid
    from diffcli.training.evaluation import write_grid
    from diffcli.training.saving import save

    trainer = _trainer("course", home)
    for _ in range(2):
        trainer._train_step()
    write_grid(trainer, tmp_path / "during.png")
    save(trainer, "training")
    saved = UNetModel(trainer.entry, trainer.config, torch.device("cpu"))
    write_sample_grid(saved, trainer.settings, tmp_path / "saved.png", trainer.epoch)
    assert (tmp_path / "during.png").read_bytes() == (tmp_path / "saved.png").read_bytes()
