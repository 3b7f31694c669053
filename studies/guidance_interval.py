"""Classifier-free guidance applied in an interval of timesteps only (Kynkaanniemi et al. 2024, "Applying
guidance in a limited interval improves sample and distribution quality"), measured with `diffcli eval`'s
scoring: per-class accuracy and FID beside its floor (docs/performance.md, "Guidance in an interval").

Inside the interval [LO, HI) (fractions of the model's T) each sample is CFG-guided with scale G, outside
it plainly conditional (scale 1): the sampling option `--guidance-interval LO:HI` (`guidance_interval`
in the library), which this study passes to `diffcli.evaluate` for each row.

    python studies/guidance_interval.py --model mnist --rows 2:0:1,3:0.2:0.7 [-n 50] [--data-dir DIR]

Each row is G:LO:HI; 0:1 is ordinary CFG over the whole reverse process. One line per row.
"""

from __future__ import annotations

import argparse
import sys
import time


def parse_row(text: str) -> tuple[float, float, float]:
    """'G:LO:HI' -> (scale, lo, hi) with 0 <= lo < hi <= 1."""
    try:
        scale, lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise SystemExit(f"guidance-interval study: row {text!r}: write it as G:LO:HI, e.g. 3:0.2:0.7") from None
    if not (scale >= 0 and 0 <= lo < hi <= 1):
        raise SystemExit(f"guidance-interval study: row {text!r}: needs G >= 0 and 0 <= LO < HI <= 1")
    return scale, lo, hi


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--rows", default="2:0:1,1.5:0:1,3:0.2:0.7")
    parser.add_argument("-n", type=int, default=50, help="samples per class")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    rows = [parse_row(r) for r in args.rows.split(",") if r.strip()]

    import diffcli
    from diffcli.errors import DiffcliError

    try:
        measure(args, rows, diffcli)
    except DiffcliError as exc:  # a model, a folder or a count the library refuses: its own one line
        raise SystemExit(f"guidance-interval study: {exc.one_line()}") from None
    return 0


def measure(args, rows, diffcli) -> None:
    """One line per row on stdout."""
    model = diffcli.load(args.model).loaded
    for scale, lo, hi in rows:
        began = time.perf_counter()
        r = diffcli.evaluate(
            model,
            "sample",
            n=args.n,
            progress=False,
            guidance=scale,
            guidance_interval=(lo, hi),
            data_dir=args.data_dir,
        )
        low = (
            ", ".join(f"{c['label']} {100 * c['accuracy']:.0f} %" for c in r["classes"] if c["accuracy"] < 0.95)
            or "none"
        )
        fid = r["fid"]
        print(
            f"{args.model} CFG {scale:g} in [{lo:g}, {hi:g}) of T: {100 * r['accuracy']:.1f} %, "
            f"lowest {100 * r['min_class_accuracy']:.0f} % ({r['worst']}), classes under 95 %: {low}; "
            f"FID {fid['value']:.2f} (floor {fid['floor']:.2f}, {fid['value'] / fid['floor']:.2f}x), "
            f"n = {r['n']} ({time.perf_counter() - began:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
