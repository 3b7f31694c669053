"""Draws the built-in sample images (diffcli/io/assets/*.png) with Pillow, so they are reproducible.

Run: make assets (or .venv/bin/python scripts/make_assets.py)
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ASSETS = Path(__file__).resolve().parents[1] / "diffcli" / "io" / "assets"


def house(size: int = 64) -> Image.Image:
    """A small coloured scene: sky gradient, sun, hill, house; enough structure to see noise eat it."""
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    for y in range(size):
        c = int(120 + 100 * y / size)
        draw.line([(0, y), (size, y)], fill=(90, c, 235))
    s = size / 64
    draw.ellipse([46 * s, 6 * s, 58 * s, 18 * s], fill=(255, 214, 60))
    draw.ellipse([-20 * s, 40 * s, 84 * s, 100 * s], fill=(70, 150, 60))
    draw.rectangle([16 * s, 30 * s, 40 * s, 50 * s], fill=(200, 70, 50))
    draw.polygon([(12 * s, 31 * s), (28 * s, 18 * s), (44 * s, 31 * s)], fill=(110, 50, 40))
    draw.rectangle([25 * s, 38 * s, 31 * s, 50 * s], fill=(80, 50, 30))
    draw.rectangle([18 * s, 34 * s, 23 * s, 39 * s], fill=(240, 240, 200))
    draw.rectangle([33 * s, 34 * s, 38 * s, 39 * s], fill=(240, 240, 200))
    return img


def digit(char: str = "7", size: int = 28) -> Image.Image:
    """A white digit on black, MNIST-style (centred, about 20 px tall)."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=int(size * 0.8))
    box = draw.textbbox((0, 0), char, font=font, stroke_width=1)
    x = (size - (box[2] - box[0])) / 2 - box[0]
    y = (size - (box[3] - box[1])) / 2 - box[1]
    draw.text((x, y), char, fill=255, font=font, stroke_width=1, stroke_fill=255)
    return img


if __name__ == "__main__":
    ASSETS.mkdir(parents=True, exist_ok=True)
    house().save(ASSETS / "house.png")
    digit().save(ASSETS / "digit.png")
    print("wrote", *sorted(p.name for p in ASSETS.glob("*.png")))
