"""MNIST and Fashion-MNIST from a data dir: a torchvision root (DIR/MNIST/raw, DIR/FashionMNIST/raw) or
a folder holding the four IDX files (plain or .gz, e.g. Debian's /usr/share/datasets/fashion-mnist).
Downloaded with torchvision into the default data folder ($DIFFCLI_DATA) when missing there; into a folder
the user named only when they ask (`download`): a named folder is what they have, so it is only read."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from diffcli.data.idx import find_file, read_split
from diffcli.errors import DiffcliError
from diffcli.io.atomic import first_missing

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TORCHVISION = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "FashionMNIST")}


def locate(name: str, data_dir: Path) -> Path | None:
    """The folder holding all four IDX files: data_dir itself, its raw/ (data_dir is the dataset's
    torchvision folder, e.g. .../MNIST), or the torchvision root's NAME/raw/ or NAME/."""
    folder_name = TORCHVISION[name][0]
    for folder in (data_dir, data_dir / "raw", data_dir / folder_name / "raw", data_dir / folder_name):
        if folder.is_dir() and all(find_file(folder, f) for f in FILES):
            return folder
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes / contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe(reason: object) -> str:
    """An OSError's own words ("Connection refused"), else its text."""
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason).strip() or type(reason).__name__


def failure_reason(exc: BaseException) -> str:
    """Why a download failed, in a few words: the URLError / OSError reason wherever the exception chain
    holds it, else the reason torchvision folded into its message ("Tried URL, got: <urlopen error ...>"),
    else the message's last line, else the exception's type."""
    from urllib.error import URLError

    for e in _chain(exc):
        if isinstance(e, URLError):
            return _describe(e.reason)
        if isinstance(e, OSError) and (e.strerror or str(e)):
            return _describe(e)
    text = str(exc)
    found = re.search(r"<urlopen error (.+?)>", text)
    if found:  # "[Errno -3] Temporary failure in name resolution" -> the words after the number
        return re.sub(r"^\[Errno [^\]]*\]\s*", "", found.group(1)).strip() or found.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().endswith(":")]
    return lines[-1][:160] if lines else type(exc).__name__


def download(name: str, data_dir: Path, notify: Callable[[str], None]) -> None:
    """Fetch the files into data_dir/<Name>/raw with torchvision; a one-line error saying why when that
    fails, leaving no folders (or partial files) behind that the download created."""
    folder_name, class_name = TORCHVISION[name]
    notify(f"{name} not found in {data_dir}; downloading it with torchvision")
    created = first_missing(Path(data_dir) / folder_name / "raw")
    try:
        import torchvision.datasets as tvd

        # Older torchvision prints its progress and failures to stdout, which is for data (--json, PNG bytes).
        with redirect_stdout(sys.stderr):
            getattr(tvd, class_name)(root=str(data_dir), train=True, download=True)
            getattr(tvd, class_name)(root=str(data_dir), train=False, download=True)
    except Exception as exc:  # offline, proxy, disk: any failure ends in the same advice
        if created is not None:  # torchvision made these folders for the files it could not fetch
            shutil.rmtree(created, ignore_errors=True)
        raise DiffcliError(
            f"{name} is not in {data_dir} and downloading it failed ({failure_reason(exc)})",
            f"pass --data-dir to a folder holding {', '.join(f + '(.gz)' for f in FILES)} (or a torchvision root), "
            "or use `--dataset glyphs` (synthetic digits, made offline)",
        ) from None


def load_idx_dataset(
    name: str, split: str, data_dir: Path, notify: Callable[[str], None], *, fetch: bool = False
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Images [N, 1, 28, 28] uint8, labels [N] and the folder they came from. A dataset missing from the
    default data folder is downloaded there; missing from a folder the caller named, only with `fetch`."""
    if Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise DiffcliError(
            f"`data_dir` {data_dir} is a file, not a folder",
            f"pass the folder that holds {name}'s IDX files (or a torchvision root)",
        )
    folder = locate(name, data_dir)
    if folder is None:
        from diffcli.home import data_dir as default_data_dir

        default = default_data_dir()
        if not fetch and Path(data_dir).expanduser().resolve() != default.resolve():
            # A folder the user named holds what they have: look there only, unless they asked for the
            # network; the data folder diffcli manages ($DIFFCLI_DATA) is where a download lands unasked.
            raise DiffcliError(
                f"{name} not found in {data_dir}: it holds neither the four IDX files "
                f"({', '.join(FILES)}, plain or .gz) nor {TORCHVISION[name][0]}/raw/ with them",
                f"pass `data_dir` the folder that holds them (or its parent), add `download` to download {name} "
                f"into {data_dir}, or leave `data_dir` out to download {name} into {default}",
            )
        download(name, data_dir, notify)
        folder = locate(name, data_dir)
        if folder is None:
            raise DiffcliError(f"{name}: the download did not leave the IDX files in {data_dir}")
    images, labels = read_split(folder, "train" if split == "train" else "t10k")
    return images, labels.astype(np.int64), folder
