"""Text-to-image models whose weights are not downloaded fail in one line at once when the Hugging Face
Hub cannot be reached (no retries with back-off), and cached files are still used."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from helpers import run_cli


def test_hub_model_fails_at_once_when_the_hub_cannot_be_reached(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Hub refuses every connection (a mock transport under huggingface_hub's own client): one line,
    no retries, no library warnings, in well under a second of work."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    for package in ("diffusers", "transformers", "sentencepiece"):  # imported now, so the timing below is diffcli's
        pytest.importorskip(package)
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    if not hasattr(huggingface_hub, "set_client_factory") or not hasattr(_http, "hf_request_event_hook"):
        pytest.skip("needs huggingface_hub >= 1.0 (httpx client factory)")
    from diffcli.models import hub

    httpx = _http.httpx2 if hasattr(_http, "httpx2") else _http.httpx
    requests: list[str] = []

    def refuse(request):
        requests.append(str(request.url))
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    huggingface_hub.set_client_factory(
        lambda: httpx.Client(
            transport=httpx.MockTransport(refuse), event_hooks={"request": [_http.hf_request_event_hook]}
        )
    )
    sleeps: list[float] = []
    monkeypatch.setattr(_http.time, "sleep", sleeps.append)  # a retry would sleep: record it instead
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # restored after the test (the run switches it on)
    monkeypatch.setattr(hub, "_reachable", {})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    try:
        assert run_cli(["models", "add", "if", "--hub", "DeepFloyd/IF-I-XL-v1.0"]).code == 0
        started = time.perf_counter()
        r = run_cli(["sample", "-m", "if", "--prompt", "a dog", "--device", "cpu", "-o", "x.png"])
        seconds = time.perf_counter() - started
    finally:
        huggingface_hub.set_client_factory(_http.default_client_factory)
    assert r.code == 1 and "Traceback" not in r.stderr
    assert (
        r.stderr.count("\n") == 1
        and "DeepFloyd/IF-I-XL-v1.0 is not downloaded yet" in r.stderr
        and "cannot be reached" in r.stderr
    )
    file_requests = [
        url for url in requests if "/resolve/" in url
    ]  # huggingface_hub may also ask for its own telemetry lists
    assert sleeps == [] and len(file_requests) == 1 and "Retrying" not in r.stderr
    assert seconds < 5, seconds  # before: ~25 s of back-off
    assert constants.HF_HUB_OFFLINE  # the rest of the run reads the cache only

    # a file in the cache is still used when the Hub cannot be reached
    monkeypatch.setattr(hub, "_reachable", {})
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    cached = tmp_path / "model_index.json"
    cached.write_text("{}")
    monkeypatch.setattr(hub.Source, "cached_file", lambda self, relative: cached)
    assert hub.Source({"hub": "DeepFloyd/IF-I-XL-v1.0"}, "x").file("model_index.json") == cached


def test_network_errors_are_told_from_http_answers() -> None:
    from diffcli.models.hub import is_network_error

    class ConnectTimeout(Exception):  # httpx's name: matched by class name, whatever the package
        pass

    assert is_network_error(ConnectionRefusedError(111, "refused")) and is_network_error(socket.gaierror(-3, "dns"))
    assert is_network_error(ConnectTimeout("slow"))
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as inner:
            raise OSError("could not fetch") from inner
    except OSError as outer:
        assert is_network_error(outer)
    assert not is_network_error(ValueError("404 Client Error: Not Found"))
