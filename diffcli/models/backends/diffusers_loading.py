"""Loading the parts of a diffusers pipeline for the IF backend (diffusers_pixel.py): weights through
`from_pretrained` (safetensors only, the fp16 variant on CUDA, one-line errors for Hub and memory
failures), the tokenizer, a mapped scheduler's output block as the engine's OutputSpec, and the
libraries' logging kept off stderr."""

from __future__ import annotations

from typing import Any

import torch

from diffcli import console
from diffcli.diffusion.samplers import OutputSpec
from diffcli.errors import DiffcliError
from diffcli.models.backends import memory
from diffcli.models.hub import Source, classify_hub_error, hub_errors, package_version


def from_pretrained(
    cls: Any,
    source: Source,
    subfolder: str | None,
    what: str,
    dtype: torch.dtype,
    transformers_api: bool = False,
    **extra: Any,
) -> Any:
    """cls.from_pretrained from the folder or the Hub cache, safetensors only, fp16 weights on CUDA
    (the `fp16` variant when the repo has one), with one-line errors for Hub and memory failures."""
    kwargs: dict[str, Any] = dict(extra, use_safetensors=True)
    if subfolder:
        kwargs["subfolder"] = subfolder
    kwargs[dtype_keyword(transformers_api)] = dtype
    variants: list[str | None] = [None]
    if dtype == torch.float16 and source.has_variant(subfolder or "unet", "fp16") is not False:
        variants = ["fp16", None]
    last: Exception | None = None
    for variant in variants:
        try:
            with memory.oom_guard(f"loading the {what}", None):
                return cls.from_pretrained(source.ref, variant=variant, **kwargs)
        except DiffcliError:
            raise
        except Exception as exc:  # the libraries raise OSError, ValueError, ... for the same failures
            last = exc
            if variant is not None and variant in str(exc):
                continue  # no fp16 files: load the full-precision ones and cast
            break
    assert last is not None
    mapped = classify_hub_error(last, source.repo_id) if source.repo_id else None
    if mapped is not None:
        raise mapped from None
    if "safetensors" in str(last).lower():
        raise DiffcliError(
            f"{source.describe()} has no safetensors weights for its {what}",
            "diffcli never loads pickle (.bin) weights; convert them with diffusers' save_pretrained",
        ) from last
    raise DiffcliError(
        f"could not load the {what} of {source.describe()} ({first_line(last)})", "rerun with --debug for details"
    ) from last


def load_tokenizer(index: dict[str, Any], source: Source) -> Any:
    """The pipeline's tokenizer (the class its model_index names, else AutoTokenizer), with one-line
    errors for a missing sentencepiece / protobuf and any other failure."""
    import transformers

    name = (index.get("tokenizer") or [None, None])[1]
    cls = getattr(transformers, name, None) if name else None
    cls = cls or transformers.AutoTokenizer
    try:
        with hub_errors(source.repo_id):
            return cls.from_pretrained(source.ref, subfolder="tokenizer")
    except DiffcliError:
        raise
    except Exception as exc:
        text = str(exc)
        if any(word in text for word in ("protobuf", "tiktoken", "sentencepiece", "SentencePiece")):
            raise DiffcliError(
                f"could not read the tokenizer of {source.describe()}: "
                "transformers needs sentencepiece and protobuf to convert its spiece.model",
                "install with `pip install sentencepiece protobuf` (both come with `pip install 'diffcli[hub]'`)",
            ) from exc
        raise DiffcliError(
            f"could not read the tokenizer of {source.describe()} ({first_line(exc)})", "rerun with --debug for details"
        ) from exc


def output_spec(prediction: str, output: dict[str, Any]) -> OutputSpec:
    """The engine's OutputSpec from a mapped scheduler's `output` block (pipeline_config.map_scheduler)."""
    return OutputSpec(
        prediction=prediction,
        learned_variance=bool(output["learned_variance"]),
        clip=tuple(output["clip"]) if output.get("clip") else None,
        dynamic_threshold=output.get("dynamic_threshold"),
        threshold_max=float(output.get("threshold_max", 1.0)),
    )


def quiet_libraries() -> None:
    """diffcli reports errors itself: keep diffusers' and transformers' warnings off stderr, and with -q
    their progress bars too (which also hides download bars, so only then)."""
    if console.settings.debug:
        return
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
        if console.settings.quiet:
            diffusers.utils.logging.disable_progress_bar()
            transformers.utils.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass


def dtype_keyword(transformers_api: bool) -> str:
    """`dtype` where the library takes it (transformers >= 5; diffusers once it deprecated torch_dtype),
    else `torch_dtype`."""
    if transformers_api:
        return "dtype" if _major(package_version("transformers")) >= 5 else "torch_dtype"
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _major(version: str | None) -> int:
    try:
        return int((version or "0").split(".")[0])
    except ValueError:
        return 0


def first_line(exc: BaseException) -> str:
    """An exception's first line, at most 200 characters, for a one-line error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def short(text: str, limit: int = 60) -> str:
    """A prompt shortened for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
