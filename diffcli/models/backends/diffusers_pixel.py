"""Pixel-space diffusers pipelines (DeepFloyd IF stage I) as registry models, run by diffcli's own engine.

Only the pipeline's networks are used: its UNet becomes `net(x_t, t, cond)` for `generate` / `run_reverse`
(so `sample`, `denoise`, SDEdit, inpainting, `anagram` and `hybrid` take the same path as the small
models), its text encoder turns prompts into embeddings, and its scheduler config becomes the engine's
NoiseSchedule and OutputSpec. IF's UNet returns 6 channels, noise and a learned-range variance value;
the DDPM step uses that variance, as the course does.

Memory, in order of a run:
1. prompts: embeddings come from the on-disk cache; only new prompts load the tokenizer and text encoder
   (fp16 on CUDA), which are freed again before the UNet loads;
2. the UNet loads on first use (fp16 on CUDA, fp32 elsewhere) and is placed by `--offload`;
3. `upscale` moves stage I off the GPU and runs stage II (IFSuperResolutionPipeline) on the result.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from diffcli import console
from diffcli.diffusion.samplers import OutputSpec
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_write_text
from diffcli.models import pipeline_config as pc
from diffcli.models.backends import memory
from diffcli.models.backends.base import LoadedModel, Prompt
from diffcli.models.config import ModelConfig
from diffcli.models.hub import Source, classify_hub_error, hub_errors, package_version, require_hub_extras
from diffcli.models.prompt_cache import CachedPrompt, PromptCache
from diffcli.models.registry import ModelEntry, Registry

PROMPT_CACHE = "prompt-embeddings"
UPSCALER_NOISE_LEVEL = 250  # IFSuperResolutionPipeline's default, as in the IF examples


class DiffusersModel(LoadedModel):
    """A registered diffusers text-to-image pipeline (kind "diffusers"), exposed as a LoadedModel.

    offload: auto, none, model or sequential (see backends/memory.py); upscale: the caller will call
    `upscale`, so a missing upscaler is an error now rather than after sampling.
    """

    def __init__(self, entry: ModelEntry, config: ModelConfig, device: torch.device, offload: str = "auto", upscale: bool = False, **_ignored: Any) -> None:
        require_hub_extras(why=f"model {entry.name!r} ({config.architecture.get('type', 'a diffusers pipeline')})")
        _quiet_libraries()
        self.entry, self.config, self.device = entry, config, device
        self.offload = memory.check_offload(offload)
        self.dtype = torch.float16 if device.type == "cuda" else torch.float32
        label = f"model {entry.name!r}"
        arch = config.architecture
        self.source = Source(arch.get("source") or {}, label)
        self.upscaler_source = Source(arch["upscaler"], f"{label} (upscaler)") if arch.get("upscaler") else None
        self.wants_upscale = upscale
        if upscale:
            self._require_upscaler()
        self._index = self._resolve_pipeline()
        self.max_tokens = int(self.config.conditioning.get("max_tokens", pc.MAX_TOKENS))
        self.prompt_cache = PromptCache(Registry().cache_dir / PROMPT_CACHE / entry.name, self.source.describe(), self.max_tokens)
        self._embeddings: dict[str, CachedPrompt] = {}
        self._batches: dict[tuple[str, ...], torch.Tensor] = {}
        self._warned: set[str] = set()
        self._unet: Optional[torch.nn.Module] = None
        self._unet_hook: Any = None
        self._unet_mode: Optional[str] = None
        self._unet_parked = False
        self._upscaler: Any = None
        self.encoder_loads = 0  # how often the text encoder was loaded (the cache should keep this at 0)

    # ----- the pipeline's JSON: schedule, output spec, size -----------------------------------------
    def _resolve_pipeline(self) -> dict[str, Any]:
        """Read model_index / scheduler / unet configs (small files: fetching them surfaces licence and
        network errors before any weights move) and refresh config.json if they disagree with it."""
        where = self.source.describe()
        index = pc.read_json(self.source.file(pc.MODEL_INDEX), f"model {self.name!r}")
        pc.check_pixel_space(index, where)
        scheduler = pc.read_json(self.source.file(pc.SCHEDULER_CONFIG), f"model {self.name!r}")
        unet = pc.read_json(self.source.file(pc.UNET_CONFIG), f"model {self.name!r}")
        pc.check_unet(unet, where)
        arch = self.config.architecture
        fresh, _notes = pc.build_config(self.name, arch["source"], arch.get("upscaler"), scheduler, unet, index.get("_class_name", "IFPipeline"), resolved=True)
        changed = False
        for key in ("architecture", "image", "schedule", "prediction"):
            if getattr(self.config, key) != getattr(fresh, key):
                setattr(self.config, key, getattr(fresh, key))
                changed = True
        if changed and not self.entry.builtin:
            try:
                atomic_write_text(self.entry.config_path, self.config.to_json())
            except OSError:
                pass  # a read-only registry still runs with the values read now
        self.schedule = NoiseSchedule.from_config(self.config.schedule)
        out = self.config.architecture["output"]
        self.spec = OutputSpec(
            prediction=self.config.prediction,
            learned_variance=bool(out["learned_variance"]),
            clip=tuple(out["clip"]) if out.get("clip") else None,
            dynamic_threshold=out.get("dynamic_threshold"),
            threshold_max=float(out.get("threshold_max", 1.0)),
        )
        return index

    # ----- prompts -------------------------------------------------------------------------------
    def resolve_prompt(self, text: str) -> Prompt:
        """Free text; the empty prompt is the unconditional one."""
        return Prompt(text)

    def condition(self, prompts: Sequence[Optional[Prompt]]) -> torch.Tensor:
        """Text embeddings [B, L, D] for one prompt per row (None rows: the empty prompt).

        Identical prompts share one encoding, and identical requests return the same tensor, so guidance
        evaluates them once."""
        texts = tuple("" if p is None else p.text for p in prompts)
        if texts not in self._batches:
            self._ensure_embeddings(list(dict.fromkeys(texts)))
            rows = [self._embeddings[t].embedding for t in texts]
            self._batches[texts] = torch.stack(rows).to(self.device, self.dtype)
        return self._batches[texts]

    def null_condition(self, batch: int) -> torch.Tensor:
        """The empty prompt's embedding for every row (the unconditional estimate of CFG)."""
        return self.condition([None] * batch)

    def _ensure_embeddings(self, texts: list[str]) -> None:
        """Memory, then the disk cache, then ONE text-encoder run for everything still missing."""
        for text in texts:
            if text not in self._embeddings:
                hit = self.prompt_cache.load(text)
                if hit is not None:
                    self._embeddings[text] = hit
        todo = [t for t in texts if t not in self._embeddings]
        if todo and "" not in self._embeddings and "" not in todo:
            hit = self.prompt_cache.load("")
            if hit is None:
                todo.append("")  # CFG will want the empty prompt: encode it in the same run
            else:
                self._embeddings[""] = hit
        if todo:
            for text, entry in self._encode(todo).items():
                self._embeddings[text] = entry
                try:
                    self.prompt_cache.save(text, entry)
                except (DiffcliError, OSError) as exc:
                    console.warn(f"could not cache the embedding of {_short(text)!r}: {getattr(exc, 'message', exc)}")
        for text in texts:
            entry = self._embeddings[text]
            if entry.truncated and text not in self._warned:
                self._warned.add(text)
                console.warn(f"prompt {_short(text)!r} is {entry.tokens} tokens; the text encoder reads only the first {self.max_tokens}, so the rest was cut")

    def _preprocess(self, text: str) -> str:
        """IF's caption preprocessing without bs4/ftfy: lower case, stripped (IFPipeline, clean_caption off)."""
        return text.lower().strip() if self.config.conditioning.get("preprocess", "lowercase") == "lowercase" else text

    def _encode(self, texts: list[str]) -> dict[str, CachedPrompt]:
        """Run the tokenizer and text encoder once over `texts`, then free the encoder."""
        count = sum(1 for t in texts if t)
        what = f"{count} new prompt(s)" if count else "the empty prompt"
        console.info(f"encoding {what} with the text encoder of {self.source.describe()} (cached for next time)")
        tokenizer = self._load_tokenizer()
        processed = [self._preprocess(t) for t in texts]
        batch = tokenizer(processed, padding="max_length", max_length=self.max_tokens, truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        lengths = [len(ids) for ids in tokenizer(processed, add_special_tokens=True).input_ids]
        self._park_unet()
        encoder, mode = self._load_text_encoder()
        try:
            with torch.no_grad(), memory.oom_guard("encoding the prompts", mode):
                hidden = encoder(input_ids=batch.input_ids.to(self.device), attention_mask=batch.attention_mask.to(self.device))[0]
            hidden = hidden.float().cpu()
        finally:
            del encoder
            memory.release()
        return {t: CachedPrompt(hidden[i], lengths[i], lengths[i] > self.max_tokens) for i, t in enumerate(texts)}

    def _load_tokenizer(self) -> Any:
        import transformers

        name = (self._index.get("tokenizer") or [None, None])[1]
        cls = getattr(transformers, name, None) if name else None
        cls = cls or transformers.AutoTokenizer
        try:
            with hub_errors(self.source.repo_id):
                return cls.from_pretrained(self.source.ref, subfolder="tokenizer")
        except DiffcliError:
            raise
        except Exception as exc:
            text = str(exc)
            if any(word in text for word in ("protobuf", "tiktoken", "sentencepiece", "SentencePiece")):
                raise DiffcliError(
                    f"could not read the tokenizer of {self.source.describe()}: transformers needs sentencepiece and protobuf to convert its spiece.model",
                    "install with `pip install sentencepiece protobuf` (both come with `pip install 'diffcli[hub]'`)",
                ) from exc
            raise DiffcliError(f"could not read the tokenizer of {self.source.describe()} ({_first_line(exc)})", "rerun with --debug for details") from exc

    def _load_text_encoder(self) -> tuple[torch.nn.Module, str]:
        import transformers

        name = (self._index.get("text_encoder") or [None, None])[1]
        cls = getattr(transformers, name, None) if name else None
        encoder = self._from_pretrained(cls or transformers.T5EncoderModel, self.source, "text_encoder", "text encoder", transformers_api=True)
        encoder.eval().requires_grad_(False)
        self.encoder_loads += 1
        mode = memory.choose_offload(self.offload, self.device, memory.module_bytes(encoder))
        # The encoder runs once and is freed: "model" offload is the same as holding it on the GPU.
        memory.place(encoder, self.device, "none" if mode == "model" else mode, "the text encoder")
        return encoder, mode

    # ----- the network ------------------------------------------------------------------------------
    def net(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """IF's UNet at (x_t, t, text embeddings): [B, 6, H, W] (noise, then the variance values), float32."""
        unet = self._load_unet()
        if cond is None:
            cond = self.null_condition(x.shape[0])
        with torch.no_grad(), memory.oom_guard("while sampling", self._unet_mode):
            out = unet(x.to(self.device, self.dtype), t.to(self.device), encoder_hidden_states=cond.to(self.device, self.dtype), return_dict=False)[0]
        return out.float()

    def _load_unet(self) -> torch.nn.Module:
        if self._unet is not None:
            if self._unet_parked:
                with memory.oom_guard("moving the UNet back to the GPU", self._unet_mode):
                    self._unet.to(self.device)
                self._unet_parked = False
            return self._unet
        import diffusers

        name = (self._index.get("unet") or [None, None])[1]
        cls = getattr(diffusers, name, None) if name else None
        unet = self._from_pretrained(cls or diffusers.UNet2DConditionModel, self.source, "unet", "UNet")
        unet.eval().requires_grad_(False)
        others = self._upscaler_bytes_estimate() if self.wants_upscale else 0
        mode = memory.choose_offload(self.offload, self.device, memory.module_bytes(unet), others)
        if self.device.type == "cuda" and mode != "none":
            console.notice(f"running the UNet with --offload {mode}" + (" (chosen from free GPU memory)" if self.offload == "auto" else ""))
        self._unet_hook = memory.place(unet, self.device, mode, "the UNet")
        self._unet, self._unet_mode = unet, mode
        return unet

    def _park_unet(self) -> None:
        """Free the GPU of the stage-I UNet before another large component runs."""
        if self._unet is None or self.device.type != "cuda":
            return
        if self._unet_mode == "none" and not self._unet_parked:
            self._unet.to("cpu")
            self._unet_parked = True
        elif self._unet_mode == "model" and self._unet_hook is not None:
            self._unet_hook.offload()
        memory.release()

    # ----- stage II ---------------------------------------------------------------------------------
    def upscale(self, images: torch.Tensor, prompts: Sequence[Optional[Prompt]], seeds: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Stage II (IFSuperResolutionPipeline): [B, 3, 64, 64] in [-1, 1] -> [B, 3, 256, 256] in [-1, 1],
        guided by the same prompt embeddings (from the cache: no second text-encoder run)."""
        self._require_upscaler()
        if images.shape[0] != len(prompts):
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        cond = self.condition(prompts)
        null = self.null_condition(len(prompts))
        self._park_unet()
        pipe, mode = self._load_upscaler()
        seeds = list(seeds) if seeds is not None else list(range(len(prompts)))
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        with torch.no_grad(), memory.oom_guard("while upscaling", mode):
            result = pipe(
                image=images.to(self.device, self.dtype), prompt_embeds=cond, negative_prompt_embeds=null,
                generator=generators, noise_level=UPSCALER_NOISE_LEVEL, output_type="pt",
            ).images
        return result.float().to(self.device)

    def _require_upscaler(self) -> None:
        if self.upscaler_source is None:
            raise DiffcliError(
                f"model {self.name!r} has no upscaler registered, so --upscale cannot run stage II",
                f"register one: `diffcli models add {self.name} --hub {self.config.architecture.get('source', {}).get('hub', 'DeepFloyd/IF-I-XL-v1.0')} --upscaler DeepFloyd/IF-II-L-v1.0 --force`",
            )

    def _upscaler_bytes_estimate(self) -> int:
        known = pc.KNOWN_REPOS.get((self.upscaler_source.repo_id if self.upscaler_source else None) or "")
        return int(known.parameters * 2) if known else 0

    def _load_upscaler(self) -> tuple[Any, str]:
        if self._upscaler is not None:
            return self._upscaler
        import diffusers

        assert self.upscaler_source is not None
        pipe = self._from_pretrained(
            diffusers.IFSuperResolutionPipeline, self.upscaler_source, None, "upscaler",
            text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        mode = memory.choose_offload(self.offload, self.device, memory.module_bytes(pipe.unet))
        if self.device.type != "cuda" or mode == "none":
            with memory.oom_guard("loading the upscaler", mode):
                pipe.to(self.device)
        elif mode == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.enable_sequential_cpu_offload(device=self.device)
        self._upscaler = (pipe, mode)
        return self._upscaler

    # ----- loading weights --------------------------------------------------------------------------
    def _from_pretrained(self, cls: Any, source: Source, subfolder: Optional[str], what: str, transformers_api: bool = False, **extra: Any) -> Any:
        """cls.from_pretrained from the folder or the Hub cache, safetensors only, fp16 weights on CUDA
        (the `fp16` variant when the repo has one), with one-line errors for Hub and memory failures."""
        kwargs: dict[str, Any] = dict(extra, use_safetensors=True)
        if subfolder:
            kwargs["subfolder"] = subfolder
        kwargs[_dtype_keyword(transformers_api)] = self.dtype
        variants: list[Optional[str]] = [None]
        if self.dtype == torch.float16 and source.has_variant(subfolder or "unet", "fp16") is not False:
            variants = ["fp16", None]
        last: Optional[Exception] = None
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
            raise DiffcliError(f"{source.describe()} has no safetensors weights for its {what}", "diffcli never loads pickle (.bin) weights; convert them with diffusers' save_pretrained") from last
        raise DiffcliError(f"could not load the {what} of {source.describe()} ({_first_line(last)})", "rerun with --debug for details") from last


def _quiet_libraries() -> None:
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


def _dtype_keyword(transformers_api: bool) -> str:
    """`dtype` where the library takes it (transformers >= 5; diffusers once it deprecated torch_dtype), else `torch_dtype`."""
    if transformers_api:
        return "dtype" if _major(package_version("transformers")) >= 5 else "torch_dtype"
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _major(version: Optional[str]) -> int:
    try:
        return int((version or "0").split(".")[0])
    except ValueError:
        return 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
