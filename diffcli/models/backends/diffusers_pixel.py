"""Pixel-space diffusers pipelines (DeepFloyd IF stages I and II) as registry models, run by diffcli's own engine.

Only the pipelines' networks are used: the stage-I UNet becomes `net(x_t, t, cond)` for `generate` /
`run_reverse` (so `sample`, `denoise`, SDEdit, inpainting, `anagram` and `hybrid` take the same path as
the small models), its text encoder turns prompts into embeddings, and each scheduler config becomes
the engine's NoiseSchedule and OutputSpec. IF's UNets return 6 channels, noise and a learned-range
variance value; the DDPM step uses that variance, as the course does.

Stage II (`upscale`, 64 -> 256 px) is the same reverse loop and the same guidance terms
(diffusers_upscale.py); loading the pipeline's parts is diffusers_loading.py.

Memory, in order of a run:
1. prompts: embeddings come from the on-disk cache; only new prompts load the tokenizer and text encoder
   (fp16 on CUDA), which are freed again before a UNet loads;
2. each UNet loads on first use (fp16 on CUDA, fp32 elsewhere) and is placed by `--offload`; the one
   not running is moved off the GPU (or offloaded by its hook) before the other runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from diffcli import console
from diffcli.diffusion.guidance import Term
from diffcli.diffusion.samplers import StepCallback
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError
from diffcli.models import pipeline_config as pc
from diffcli.models.backends import memory
from diffcli.models.backends.base import LoadedModel, Prompt
from diffcli.models.backends.diffusers_loading import (
    from_pretrained,
    load_tokenizer,
    output_spec,
    quiet_libraries,
    short,
)
from diffcli.models.backends.diffusers_upscale import (
    UPSCALE,
    StageTwo,
    UpscaleSettings,
    read_stage_two,
    run_stage_two,
    upscale_settings,
)
from diffcli.models.config import ModelConfig
from diffcli.models.hub import Source, require_hub_extras
from diffcli.models.prompt_cache import CachedPrompt, PromptCache
from diffcli.models.registry import ModelEntry, Registry

PROMPT_CACHE = "prompt-embeddings"


@dataclass
class _PlacedUNet:
    """A UNet placed on the device by --offload, and whether it has been moved off the GPU since."""

    module: torch.nn.Module
    mode: str
    hook: Any = None
    parked: bool = False


class DiffusersModel(LoadedModel):
    """A registered diffusers text-to-image pipeline (kind "diffusers"), exposed as a LoadedModel.

    offload: auto, none, model or sequential (see backends/memory.py); upscale: the caller will call
    `upscale`, so a missing upscaler is an error now rather than after sampling.
    """

    def __init__(
        self,
        entry: ModelEntry,
        config: ModelConfig,
        device: torch.device,
        offload: str = "auto",
        upscale: bool = False,
        **_ignored: Any,
    ) -> None:
        require_hub_extras(why=f"model {entry.name!r} ({config.architecture.get('type', 'a diffusers pipeline')})")
        quiet_libraries()
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
        self.prompt_cache = PromptCache(
            Registry().cache_dir / PROMPT_CACHE / entry.name, self.source.describe(), self.max_tokens
        )
        self._embeddings: dict[str, CachedPrompt] = {}
        self._batches: dict[tuple[str, ...], torch.Tensor] = {}
        self._warned: set[str] = set()
        self._unets: dict[str, _PlacedUNet] = {}  # "stage I" / "stage II", loaded on first use
        self._active: str | None = None  # the stage whose UNet may be on the GPU now
        self._stage_two: StageTwo | None = None
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
        fresh, _notes = pc.build_config(
            self.name,
            arch["source"],
            arch.get("upscaler"),
            scheduler,
            unet,
            index.get("_class_name", "IFPipeline"),
            resolved=True,
        )
        changed = False
        for key in ("architecture", "image", "schedule", "prediction"):
            if getattr(self.config, key) != getattr(fresh, key):
                setattr(self.config, key, getattr(fresh, key))
                changed = True
        if changed and not self.entry.builtin:
            from diffcli.errors import DiffcliError
            from diffcli.models.registry import Registry

            def correct(config) -> None:
                for key in ("architecture", "image", "schedule", "prediction"):
                    setattr(config, key, getattr(fresh, key))

            try:  # under the model's lock, as every write of a model
                Registry(self.entry.path.parent.parent).update_config(self.name, correct, "correcting its config")
            except DiffcliError:
                pass  # a read-only or busy registry still runs with the values read now
        self.schedule = NoiseSchedule.from_config(self.config.schedule)
        self.spec = output_spec(self.config.prediction, self.config.architecture["output"])
        return index

    # ----- prompts -------------------------------------------------------------------------------
    def resolve_prompt(self, text: str) -> Prompt:
        """Free text; the empty prompt is the unconditional one."""
        return Prompt(text)

    def condition(self, prompts: Sequence[Prompt | None]) -> torch.Tensor:
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
                    console.warn(f"could not cache the embedding of {short(text)!r}: {getattr(exc, 'message', exc)}")
        for text in texts:
            entry = self._embeddings[text]
            if entry.truncated and text not in self._warned:
                self._warned.add(text)
                read = f"the text encoder reads only the first {self.max_tokens}, so the rest was cut"
                console.warn(f"prompt {short(text)!r} is {entry.tokens} tokens; {read}")

    def _preprocess(self, text: str) -> str:
        """IF's caption preprocessing without bs4/ftfy: lower case, stripped (IFPipeline, clean_caption off)."""
        return text.lower().strip() if self.config.conditioning.get("preprocess", "lowercase") == "lowercase" else text

    def _encode(self, texts: list[str]) -> dict[str, CachedPrompt]:
        """Run the tokenizer and text encoder once over `texts`, then free the encoder."""
        count = sum(1 for t in texts if t)
        what = f"{count} new prompt(s)" if count else "the empty prompt"
        console.info(f"encoding {what} with the text encoder of {self.source.describe()} (cached for next time)")
        tokenizer = load_tokenizer(self._index, self.source)
        processed = [self._preprocess(t) for t in texts]
        batch = tokenizer(
            processed,
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        lengths = [len(ids) for ids in tokenizer(processed, add_special_tokens=True).input_ids]
        self._park_unets()
        encoder, mode = self._load_text_encoder()
        try:
            with torch.no_grad(), memory.oom_guard("encoding the prompts", mode):
                hidden = encoder(
                    input_ids=batch.input_ids.to(self.device), attention_mask=batch.attention_mask.to(self.device)
                )[0]
            hidden = hidden.float().cpu()
        finally:
            del encoder
            memory.release()
        return {t: CachedPrompt(hidden[i], lengths[i], lengths[i] > self.max_tokens) for i, t in enumerate(texts)}

    def _load_text_encoder(self) -> tuple[torch.nn.Module, str]:
        import transformers

        name = (self._index.get("text_encoder") or [None, None])[1]
        cls = getattr(transformers, name, None) if name else None
        cls = cls or transformers.T5EncoderModel
        encoder = from_pretrained(cls, self.source, "text_encoder", "text encoder", self.dtype, transformers_api=True)
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
            out = unet(
                x.to(self.device, self.dtype),
                t.to(self.device),
                encoder_hidden_states=cond.to(self.device, self.dtype),
                return_dict=False,
            )[0]
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
                out = unet(
                    x.to(self.device, self.dtype),
                    t.to(self.device),
                    encoder_hidden_states=cond.to(self.device, self.dtype),
                    class_labels=labels,
                    return_dict=False,
                )[0]
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
        unet = from_pretrained(cls or diffusers.UNet2DConditionModel, source, "unet", what, self.dtype)
        unet.eval().requires_grad_(False)
        mode = memory.choose_offload(self.offload, self.device, memory.module_bytes(unet), others)
        if self.device.type == "cuda" and mode != "none":
            console.notice(
                f"running the {what} with --offload {mode}"
                + (" (chosen from free GPU memory)" if self.offload == "auto" else "")
            )
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
    def upscale_settings(self, illusion_guidance: float | None = None) -> UpscaleSettings:
        """Stage II's steps, CFG scale and noise level (`diffusers_upscale.upscale_settings`); for an
        illusion pass its stage-I CFG scale."""
        return upscale_settings(illusion_guidance)

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
        settings: UpscaleSettings | None = None,
        callback: StepCallback | None = None,
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
        self._require_upscaler()
        if images.shape[0] != len(seeds):
            raise ValueError(f"{images.shape[0]} images but {len(seeds)} seeds")
        settings = settings or UPSCALE
        net = self._stage_two_net(settings.noise_level)
        stage = self._stage_two_config()
        return run_stage_two(net, stage, images, terms, seeds, settings, self.device, self.channels, callback)

    def _stage_two_config(self) -> StageTwo:
        """The upscaler's configs (small JSON files), read once."""
        if self._stage_two is None:
            assert self.upscaler_source is not None
            self._stage_two = read_stage_two(self.upscaler_source, f"model {self.name!r} (upscaler)", self.size)
        return self._stage_two

    def _require_upscaler(self) -> None:
        if self.upscaler_source is None:
            hub_id = self.config.architecture.get("source", {}).get("hub", "DeepFloyd/IF-I-XL-v1.0")
            raise DiffcliError(
                f"model {self.name!r} has no upscaler registered, so --upscale cannot run stage II",
                (
                    f"register one: `diffcli models add {self.name} --hub {hub_id} "
                    "--upscaler DeepFloyd/IF-II-L-v1.0 --force`"
                ),
            )

    def _upscaler_bytes_estimate(self) -> int:
        known = pc.KNOWN_REPOS.get((self.upscaler_source.repo_id if self.upscaler_source else None) or "")
        return int(known.parameters * 2) if known else 0
