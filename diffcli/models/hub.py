"""The optional `hub` extra and the Hugging Face Hub: what is installed, where files come from, and the
one-line errors for the failures IF users hit most (missing packages, the gated licence, no network).

Hugging Face's own settings are respected: files are fetched through huggingface_hub / diffusers /
transformers, so HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and HF_TOKEN work as users expect. Nothing here
hard-codes a cache path.

Failing fast offline: before the first Hub download of a run, one metadata request without retries
asks whether the Hub answers at all (`hub_reachable`). When it does not, the rest of the run works from
the local cache only (huggingface_hub's offline switch, as HF_HUB_OFFLINE=1 would), so a file that is not
cached is one line at once instead of huggingface_hub's retries with back-off (about 25 s of "Retrying
in 8s" warnings), and a fully cached model still runs.
"""

from __future__ import annotations

import importlib
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from diffcli.errors import DiffcliError

HUB_EXTRA_HINT = "install with `pip install 'diffcli[hub]'`"
REQUIRED_PACKAGES = ("diffusers", "transformers", "sentencepiece")
LOGIN_HINT = "then log in with `hf auth login` (older huggingface_hub: `huggingface-cli login`) or set HF_TOKEN"
PROBE_TIMEOUT = 10.0  # seconds for the one reachability request (a slow but working network still passes)
# Exception classes, by name, that mean "no answer from the server" in httpx, httpx2 and requests.
NETWORK_ERRORS = frozenset(
    {
        "ConnectError",
        "ConnectTimeout",
        "TimeoutException",
        "NetworkError",
        "TransportError",
        "ProxyError",
        "ConnectionError",
        "Timeout",
        "SSLError",
    }
)
_reachable: dict[str, bool] = {}  # Hub endpoint -> whether it answered, once per process


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None (reads metadata only: imports nothing)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def require_hub_extras(packages: tuple[str, ...] = REQUIRED_PACKAGES, why: str = "text-to-image models") -> None:
    """Import each package once; a one-line DiffcliError naming the missing ones otherwise."""
    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise DiffcliError(f"{why} need {', '.join(packages)} (missing: {', '.join(missing)})", HUB_EXTRA_HINT)


def hub_cache_dir() -> str:
    """Where huggingface_hub keeps downloads (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def model_card(repo_id: str) -> str:
    return f"https://huggingface.co/{repo_id}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def classify_hub_error(exc: BaseException, repo_id: str) -> DiffcliError | None:
    """The one-line error for a failure fetching `repo_id`, or None when it is not a Hub problem.

    Walks the exception chain, since diffusers and transformers re-raise Hub errors as OSError."""
    from huggingface_hub import errors as hub_errors

    def kind(name: str) -> tuple[type, ...]:
        found = getattr(hub_errors, name, None)
        return (found,) if isinstance(found, type) else ()

    texts = []
    for e in _chain(exc):
        texts.append(str(e))
        if isinstance(e, kind("GatedRepoError")):
            return gated_error(repo_id)
        if isinstance(e, kind("RepositoryNotFoundError")):
            return not_found_error(repo_id)
        if _status(e) in (401, 403):
            return gated_error(repo_id)
        if isinstance(e, kind("RevisionNotFoundError")):
            return DiffcliError(f"{repo_id}: the requested revision does not exist on the Hub")
        if isinstance(
            e, kind("LocalEntryNotFoundError") + kind("OfflineModeIsEnabled") + (ConnectionError, TimeoutError)
        ):
            return offline_error(repo_id)
        if isinstance(e, kind("EntryNotFoundError")):
            return DiffcliError(
                f"{repo_id} lacks a file diffcli needs ({str(e).splitlines()[0][:160]})",
                "is it a diffusers pipeline? see its model card",
            )
    text = " ".join(texts).lower()
    if re.search(r"\b(gated|restricted|40[13])\b", text):
        return gated_error(repo_id)
    if (
        "couldn't connect" in text
        or "offline" in text
        or "cannot find the requested files in the" in text
        or "connection" in text
    ):
        return offline_error(repo_id)
    if "not a valid model identifier" in text or "repository not found" in text:
        return not_found_error(repo_id)
    return None


def not_found_error(repo_id: str) -> DiffcliError:
    return DiffcliError(
        f"{repo_id} was not found on the Hugging Face Hub, or it is private or gated",
        f"check the id at {model_card(repo_id)}; {LOGIN_HINT}",
    )


def gated_error(repo_id: str) -> DiffcliError:
    return DiffcliError(
        f"{repo_id} is gated: its licence must be accepted before downloading",
        f"open {model_card(repo_id)} while logged in and accept it, {LOGIN_HINT}",
    )


def offline_error(repo_id: str) -> DiffcliError:
    return DiffcliError(
        (
            f"{repo_id} is not downloaded yet (not in the Hugging Face cache at {hub_cache_dir()}) "
            "and the Hub cannot be reached"
        ),
        "run once with network access (and HF_HUB_OFFLINE unset), or point HF_HOME at a cache that holds it",
    )


@contextmanager
def hub_errors(repo_id: str | None) -> Iterator[None]:
    """Turn Hub failures while fetching `repo_id` into one-line DiffcliErrors (no-op for local folders)."""
    try:
        yield
    except DiffcliError:
        raise
    except Exception as exc:  # the libraries raise many types; only Hub failures are translated
        mapped = classify_hub_error(exc, repo_id) if repo_id else None
        if mapped is None:
            raise
        raise mapped from None


def is_network_error(exc: BaseException) -> bool:
    """Whether a failure (or anything in its chain) is the network's (refused, DNS, timeout, proxy),
    not an HTTP answer."""
    for e in _chain(exc):
        if isinstance(e, (ConnectionError, TimeoutError, socket.gaierror)):
            return True
        if any(cls.__name__ in NETWORK_ERRORS for cls in type(e).__mro__):
            return True
    return False


def hub_reachable(repo_id: str, filename: str) -> bool:
    """Whether the Hub answers: one metadata request for `filename` of `repo_id`, no retries, at most
    PROBE_TIMEOUT s, once per process. An HTTP error (gated, not found) is an answer: the download that
    follows reports it. False at once when HF_HUB_OFFLINE is set. When the Hub does not answer,
    huggingface_hub is switched to offline mode for the rest of the run, so every later load (diffusers,
    transformers) reads the cache and fails at once for what is not there."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = str(getattr(constants, "ENDPOINT", ""))
    if endpoint not in _reachable:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        try:
            get_hf_file_metadata(hf_hub_url(repo_id, filename), timeout=PROBE_TIMEOUT)
            _reachable[endpoint] = True
        except Exception as exc:  # the libraries raise many types; only a network failure means "unreachable"
            _reachable[endpoint] = not is_network_error(exc)
    if not _reachable[endpoint]:
        constants.HF_HUB_OFFLINE = True  # what HF_HUB_OFFLINE=1 sets; is_offline_mode() reads it on every request
    return _reachable[endpoint]


class Source:
    """Where a pipeline's files are: a local folder or a Hub repo id (downloaded on first use)."""

    def __init__(self, block: dict[str, Any], label: str) -> None:
        self.repo_id: str | None = block.get("hub")
        self.path: Path | None = Path(block["path"]) if block.get("path") else None
        self.label = label
        if not self.repo_id and not self.path:
            raise DiffcliError(
                f"{label}: config.json names no source (architecture.source needs 'hub' or 'path')",
                "register it again with `diffcli models add`",
            )
        if self.path is not None and not self.path.is_dir():
            raise DiffcliError(
                f"{label}: the pipeline folder {self.path} is gone",
                "register it again with `diffcli models add NAME --path DIR --force`",
            )

    @property
    def ref(self) -> str:
        """What from_pretrained takes: the repo id or the folder."""
        return self.repo_id or str(self.path)

    def describe(self) -> str:
        return self.repo_id or str(self.path)

    def file(self, relative: str) -> Path:
        """A small file of the pipeline (JSON configs): from the folder, or fetched through the Hub cache."""
        if self.path is not None:
            return self.path / relative
        from huggingface_hub import hf_hub_download

        assert self.repo_id is not None
        if not hub_reachable(self.repo_id, relative):  # from the cache, or one line now (no retries)
            cached = self.cached_file(relative)
            if cached is None:
                raise offline_error(self.repo_id)
            return cached
        with hub_errors(self.repo_id):
            return Path(hf_hub_download(self.repo_id, relative))

    def cached_file(self, relative: str) -> Path | None:
        """A file already on disk (never downloads): the folder's, or the Hub cache's copy if any."""
        if self.path is not None:
            candidate = self.path / relative
            return candidate if candidate.is_file() else None
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(self.repo_id, relative)
        except Exception:  # an unusual cache layout is not an error at registration time
            return None
        return Path(found) if isinstance(found, str) else None

    def has_variant(self, subfolder: str, variant: str) -> bool | None:
        """Whether a local folder holds `variant` weights (e.g. fp16) in `subfolder`; None for Hub repos."""
        if self.path is None:
            return None
        folder = self.path / subfolder
        return folder.is_dir() and any(f".{variant}." in p.name or f".{variant}-" in p.name for p in folder.iterdir())
