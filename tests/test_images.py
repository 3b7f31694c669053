"""Image input validation and conversion, figures, and PNG output."""

import numpy as np
import pytest
from helpers import write_image
from PIL import Image

from diffcli.errors import DiffcliError
from diffcli.io import images, output_paths, png
from diffcli.io.figures import figure, grid


def test_reads_rgb_and_grey_and_converts_channels(tmp_path):
    rgb = images.load_image(str(write_image(tmp_path / "a.png", (10, 6))))
    assert rgb.shape == (3, 6, 10) and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1
    grey = images.load_image(str(write_image(tmp_path / "b.png", mode="L")), channels=3)
    assert grey.shape[0] == 3 and np.array_equal(grey[0], grey[2])
    assert images.load_image(str(tmp_path / "a.png"), channels=1).shape == (1, 6, 10)


def test_16bit_palette_and_rgba_convert_instead_of_failing(tmp_path):
    deep = images.load_image(str(write_image(tmp_path / "deep.png", mode="I;16")))
    assert deep.shape[0] == 1 and deep.max() <= 1 and len(np.unique(deep)) > 256  # precision kept
    assert images.load_image(str(write_image(tmp_path / "p.png", mode="P"))).shape[0] == 3
    notes = []
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    flat = images.load_image(str(tmp_path / "t.png"), notify=notes.append)
    assert np.allclose(flat, 1.0) and "transparency" in notes[0]


def test_resize_is_announced(tmp_path):
    notes = []
    out = images.load_image(str(write_image(tmp_path / "wide.png", (40, 20))), size=16, notify=notes.append)
    assert out.shape == (3, 16, 16) and "40x20 to 16x16 (centre crop)" in notes[0]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: (p / "text.png").write_text("hello") and p / "text.png", "not an image"),
        (lambda p: p, "folder"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(DiffcliError, match=message):
        images.load_image(str(make(tmp_path)))


def test_truncated_png(tmp_path):
    data = (write_image(tmp_path / "ok.png", (64, 64))).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DiffcliError, match="truncated or corrupt"):
        images.load_image(str(tmp_path / "cut.png"))


def test_huge_images_are_refused_before_decoding(tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", (100, 100))
    monkeypatch.setattr(images, "MAX_PIXELS", 5000)
    with pytest.raises(DiffcliError, match="megapixels"):
        images.load_image(str(tmp_path / "big.png"))


def test_png_metadata_round_trips(tmp_path):
    target = output_paths.OutputTarget(tmp_path / "x.png")
    png.write_png(np.zeros((1, 4, 4), np.float32), target, {"seed": 5, "model": "m"})
    assert images.read_metadata(tmp_path / "x.png") == {"seed": 5, "model": "m"}


def test_write_is_atomic_when_the_folder_is_missing(tmp_path):
    with pytest.raises(DiffcliError, match="does not exist"):
        png.write_png(np.zeros((1, 2, 2), np.float32), output_paths.OutputTarget(tmp_path / "nope" / "x.png"))


def test_labelled_figure_and_grid_shapes():
    tiles = [np.full((1, 8, 8), v, np.float32) for v in (0.0, 0.5, 1.0)]
    strip = figure([tiles], col_labels=["a", "b", "c"])
    assert strip.shape[0] == 1 and strip.shape[2] > 3 * 96  # upscaled for readable labels
    g = grid(tiles * 3, columns=3)
    assert g.shape == (1, 2 + 3 * 10, 2 + 3 * 10)
    with pytest.raises(ValueError):
        figure([[np.zeros((1, 4, 4)), np.zeros((1, 5, 5))]])


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        png.write_png(np.zeros((1, 2, 2), np.float32), output_paths.OutputTarget(tmp_path / "new.png"))
        assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o644
        (tmp_path / "kept.png").write_bytes(b"")
        os.chmod(tmp_path / "kept.png", 0o640)
        png.write_png(np.zeros((1, 2, 2), np.float32), output_paths.OutputTarget(tmp_path / "kept.png"))
        assert stat.S_IMODE((tmp_path / "kept.png").stat().st_mode) == 0o640
    finally:
        os.umask(old)
