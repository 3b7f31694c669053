"""Pixel-space diffusers pipelines (DeepFloyd IF stages I and II) as registry models, run by diffcli's own engine.

Only the pipelines' networks are used: the stage-I UNet becomes `net(x_t, t, cond)` for `generate` /
`run_reverse` (so `sample`, `denoise`, SDEdit, inpainting, `anagram` and `hybrid` take the same path as
the small models), its text encoder turns prompts into embeddings, and each scheduler config becomes
the engine's NoiseSchedule and OutputSpec. IF's UNets return 6 channels, noise and a learned-range
variance value; the DDPM step uses that variance, as the course does.

Stage II (`upscale`, 64 -> 256 px) is the same reverse loop and the same guidance terms: the caller
builds them with `generation.prompt_terms` or `illusions.anagram_request` / `hybrid_request` (the
low-pass scaled by `upscale_factor`), and the upsampled, noised stage-I image rides along as the
guidance `context`, so anagram views transform it too, as in the visual-anagrams reference.

Memory, in order of a run:
1. prompts: embeddings come from the on-disk cache; only new prompts load the tokenizer and text encoder
   (fp16 on CUDA), which are freed again before a UNet loads;
2. each UNet loads on first use (fp16 on CUDA, fp32 elsewhere) and is placed by `--offload`; the one
   not running is moved off the GPU (or offloaded by its hook) before the other runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from diffcli import console
from diffcli.diffusion.guidance import GuidedModel, Term
from diffcli.diffusion.samplers import DDPMSampler, NoiseSource, OutputSpec, StepCallback, run_reverse
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
IMAGE_NOISING_SCHEDULER_CONFIG = "image_noising_scheduler/scheduler_config.json"


@dataclass(frozen=True)
class UpscaleSettings:
    """How stage II runs: DDPM steps (spaced as the upscaler's scheduler config says), the CFG scale of
    its guidance terms, and the timestep the upsampled stage-I image is noised to before it conditions
    the UNet (also fed to the UNet as its class label)."""

    steps: int
    guidance: float
    noise_level: int


# IFSuperResolutionPipeline's defaults.
UPSCALE = UpscaleSettings(steps=50, guidance=4.0, noise_level=250)
# The visual-anagrams reference upsamples its illusions with stage I's CFG scale and noise level 50
# (a less noisy stage-I image keeps the illusion that stage II must not lose).
ILLUSION_NOISE_LEVEL = 50


@dataclass
class _PlacedUNet:
    """A UNet placed on the device by --offload, and whether it has been moved off the GPU since."""

    module: torch.nn.Module
    mode: str
    hook: Any = None
    parked: bool = False


@dataclass(frozen=True)
class _StageTwo:
    """The upscaler's configs read as the engine's objects."""

    schedule: NoiseSchedule
    spec: OutputSpec
    noising: NoiseSchedule
    size: int
    spacing: str
    steps_offset: int
    unet_class: Optional[str]


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
        self._unets: dict[str, _PlacedUNet] = {}  # "stage I" / "stage II", loaded on first use
        self._active: Optional[str] = None  # the stage whose UNet may be on the GPU now
        self._stage_two: Optional[_StageTwo] = None
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
        self.spec = _output_spec(self.config.prediction, self.config.architecture["output"])
        return index

    # ----- prompts -------------------------------------------------------------------------------
    def resolve_prompt(self, text: str) -> Prompt:
        """Free text; the empty prompt is the unconditional one."""
        return Prompt(text)

    def condition(self, prompts: Sequence[Optional[Prompt]]) -> torch.Tensor:
        """Text embeddings [B, L, D] for one prompt per row (None rows: the empty prompt).

        Identical prompts share one encoding, and identical requests return the same tensor (guidance
        would also find them equal by value, but this skips the comparison and the copy)."""
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
        self._park_unets()
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

    # ----- the networks ------------------------------------------------------------------------------
    def net(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """IF's UNet at (x_t, t, text embeddings): [B, 6, H, W] (noise, then the variance values), float32."""
        unet = self._ready_unet("stage I")
        if cond is None:
            cond = self.null_condition(x.shape[0])
        with torch.no_grad(), memory.oom_guard("while sampling", self._unets["stage I"].mode):
            out = unet(x.to(self.device, self.dtype), t.to(self.device), encoder_hidden_states=cond.to(self.device, self.dtype), return_dict=False)[0]
        return out.float()

    def _stage_two_net(self, noise_level: int):
        """Stage II's denoiser for the guidance module: (x [B, 6, H, W] = x_t and the noised upsampled
        image, t, text embeddings) -> [B, 6, H, W], with the noise level as the UNet's class label."""

        def net(x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
            unet = self._ready_unet("stage II")
            if cond is None:
                cond = self.null_condition(x.shape[0])
            labels = torch.full((x.shape[0],), noise_level, device=self.device, dtype=torch.long)
            with torch.no_grad(), memory.oom_guard("while upscaling", self._unets["stage II"].mode):
                out = unet(x.to(self.device, self.dtype), t.to(self.device), encoder_hidden_states=cond.to(self.device, self.dtype), class_labels=labels, return_dict=False)[0]
            return out.float()

        return net

    def _ready_unet(self, stage: str) -> torch.nn.Module:
        """The UNet of `stage` ("stage I" or "stage II") on the device, the other one off the GPU."""
        if self._active != stage:
            self._park_unets()
            self._active = stage
        placed = self._unets.get(stage)
        if placed is None:
            placed = self._unets[stage] = self._place_unet(stage)
        if placed.parked:
            with memory.oom_guard(f"moving the {stage} UNet back to the GPU", placed.mode):
                placed.module.to(self.device)
            placed.parked = False
        return placed.module

    def _place_unet(self, stage: str) -> _PlacedUNet:
        import diffusers

        if stage == "stage I":
            source, name = self.source, (self._index.get("unet") or [None, None])[1]
            others = self._upscaler_bytes_estimate() if self.wants_upscale else 0
        else:
            assert self.upscaler_source is not None
            source, name, others = self.upscaler_source, self._stage_two_config().unet_class, 0
        cls = getattr(diffusers, name, None) if name else None
        what = "UNet" if stage == "stage I" else "upscaler UNet"
        unet = self._from_pretrained(cls or diffusers.UNet2DConditionModel, source, "unet", what)
        unet.eval().requires_grad_(False)
        mode = memory.choose_offload(self.offload, self.device, memory.module_bytes(unet), others)
        if self.device.type == "cuda" and mode != "none":
            console.notice(f"running the {what} with --offload {mode}" + (" (chosen from free GPU memory)" if self.offload == "auto" else ""))
        hook = memory.place(unet, self.device, mode, f"the {what}")
        return _PlacedUNet(unet, mode, hook)

    def _park(self, placed: _PlacedUNet) -> None:
        """Free the GPU of a UNet before another large component runs."""
        if self.device.type != "cuda":
            return
        if placed.mode == "none" and not placed.parked:
            placed.module.to("cpu")
            placed.parked = True
        elif placed.mode == "model" and placed.hook is not None:
            placed.hook.offload()
        memory.release()

    def _park_unets(self) -> None:
        for placed in self._unets.values():
            self._park(placed)
        self._active = None

    # ----- stage II ---------------------------------------------------------------------------------
    def upscale_settings(self, illusion_guidance: Optional[float] = None) -> UpscaleSettings:
        """Stage II's steps, CFG scale and noise level: IFSuperResolutionPipeline's defaults (50, 4.0,
        250); for an illusion (pass its stage-I CFG scale) that scale and noise level 50, as the
        visual-anagrams reference upsamples its illusions."""
        if illusion_guidance is None:
            return UPSCALE
        return UpscaleSettings(UPSCALE.steps, float(illusion_guidance), ILLUSION_NOISE_LEVEL)

    @property
    def upscale_factor(self) -> float:
        """Stage II's image size over stage I's (4 for IF: 64 -> 256): the hybrid low-pass scales by it."""
        self._require_upscaler()
        return self._stage_two_config().size / self.size

    def upscale(
        self,
        images: torch.Tensor,
        terms: Sequence[Term],
        seeds: Sequence[int],
        settings: Optional[UpscaleSettings] = None,
        callback: Optional[StepCallback] = None,
    ) -> torch.Tensor:
        """Stage II: [B, 3, 64, 64] in [-1, 1] -> [B, 3, 256, 256] in [-1, 1], through `run_reverse`.

        terms: guidance terms built for this batch with stage II's CFG scale (`prompt_terms`,
        `anagram_request`, `hybrid_request` with the low-pass scaled by `upscale_factor`); prompts come
        from the embedding cache, so the text encoder does not run again.
        seeds: one per image; image i draws its noise from seed i alone (the start, the noise of the
        upsampled image, each DDPM step: IFSuperResolutionPipeline's order), so it is the same image
        upscaled alone or in a batch.
        The upsampled stage-I image, noised to `settings.noise_level` with the upscaler's
        image_noising_scheduler, is concatenated to x_t as the guidance context (views see it too).
        """
        import torch.nn.functional as F

        self._require_upscaler()
        if images.shape[0] != len(seeds):
            raise ValueError(f"{images.shape[0]} images but {len(seeds)} seeds")
        settings = settings or UPSCALE
        stage = self._stage_two_config()
        timesteps = _spaced_timesteps(stage.schedule, settings.steps, stage.spacing, stage.steps_offset)
        noise = NoiseSource(seeds, self.device)
        x = noise.randn((self.channels, stage.size, stage.size))
        upsampled = F.interpolate(images.to(self.device, torch.float32), (stage.size, stage.size), mode="bilinear", align_corners=True)
        context = stage.noising.q_sample(upsampled, settings.noise_level, noise.randn_like(upsampled))
        guided = GuidedModel(self._stage_two_net(settings.noise_level), terms, learned_variance=stage.spec.learned_variance, context=context)
        return run_reverse(guided, x, timesteps, stage.schedule, stage.spec, DDPMSampler(), noise, callback)

    def _stage_two_config(self) -> _StageTwo:
        """The upscaler's scheduler, image-noising scheduler and UNet configs (small JSON files)."""
        if self._stage_two is None:
            assert self.upscaler_source is not None
            label = f"model {self.name!r} (upscaler)"
            source = self.upscaler_source
            index = pc.read_json(source.file(pc.MODEL_INDEX), label)
            scheduler = pc.read_json(source.file(pc.SCHEDULER_CONFIG), label)
            noising = pc.read_json(source.file(IMAGE_NOISING_SCHEDULER_CONFIG), label)
            unet = pc.read_json(source.file(pc.UNET_CONFIG), label)
            pc.check_unet(unet, source.describe(), upscaler=True)
            where = f"{source.describe()}/{pc.SCHEDULER_CONFIG}"
            mapping = pc.map_scheduler(scheduler, where)
            spacing = scheduler.get("timestep_spacing", "leading")
            if spacing not in SPACINGS:
                raise DiffcliError(f"{where}: timestep_spacing is {spacing!r}, which diffcli's engine cannot reproduce", f"diffcli knows {', '.join(SPACINGS)}")
            self._stage_two = _StageTwo(
                schedule=NoiseSchedule.from_config(mapping.schedule),
                spec=_output_spec(mapping.prediction, mapping.output),
                noising=NoiseSchedule.from_config(pc.map_scheduler(noising, f"{source.describe()}/{IMAGE_NOISING_SCHEDULER_CONFIG}").schedule),
                size=int(unet.get("sample_size") or 4 * self.size),
                spacing=spacing,
                steps_offset=int(scheduler.get("steps_offset", 0)),
                unet_class=(index.get("unet") or [None, None])[1],
            )
        return self._stage_two

    def _require_upscaler(self) -> None:
        if self.upscaler_source is None:
            raise DiffcliError(
                f"model {self.name!r} has no upscaler registered, so --upscale cannot run stage II",
                f"register one: `diffcli models add {self.name} --hub {self.config.architecture.get('source', {}).get('hub', 'DeepFloyd/IF-I-XL-v1.0')} --upscaler DeepFloyd/IF-II-L-v1.0 --force`",
            )

    def _upscaler_bytes_estimate(self) -> int:
        known = pc.KNOWN_REPOS.get((self.upscaler_source.repo_id if self.upscaler_source else None) or "")
        return int(known.parameters * 2) if known else 0

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


SPACINGS = ("leading", "trailing", "linspace")


def _output_spec(prediction: str, output: dict[str, Any]) -> OutputSpec:
    """The engine's OutputSpec from a mapped scheduler's `output` block (pipeline_config.map_scheduler)."""
    return OutputSpec(
        prediction=prediction,
        learned_variance=bool(output["learned_variance"]),
        clip=tuple(output["clip"]) if output.get("clip") else None,
        dynamic_threshold=output.get("dynamic_threshold"),
        threshold_max=float(output.get("threshold_max", 1.0)),
    )


def _spaced_timesteps(schedule: NoiseSchedule, steps: int, spacing: str, offset: int = 0) -> list[int]:
    """The `steps` timesteps diffusers' DDPMScheduler.set_timesteps picks for a timestep_spacing
    ("leading" when a config sets none: 50 of 1000 are 980, 960, ..., 0)."""
    train_steps = schedule.timesteps
    if not 1 <= steps <= train_steps:
        raise ValueError(f"steps must be between 1 and {train_steps}, got {steps}")
    if spacing == "leading":
        ratio = train_steps // steps
        return [i * ratio + offset for i in range(steps - 1, -1, -1)]
    if spacing == "trailing":
        return schedule.strided_timesteps(steps)
    return [int(v) for v in np.linspace(0, train_steps - 1, steps).round()[::-1]]


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
