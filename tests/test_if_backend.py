"""The text-to-image backend (kind "diffusers") on tiny DeepFloyd-IF-shaped components built here.

A session fixture writes a local IFPipeline folder (a small UNet2DConditionModel with 6 output channels
and text cross-attention, a tiny T5 encoder, a sentencepiece tokenizer trained on a few sentences, IF-I's
scheduler config) and a tiny IF-II upscaler; tests register it through `diffcli models add --path` and run
it through the same engine as the small models. No network: Hub failures are simulated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

import torch  # noqa: E402
from helpers import png_array, run_cli  # noqa: E402

from diffcli.errors import DiffcliError, UsageError  # noqa: E402

SIZE = 16
SENTENCES = [
    "an oil painting of an old man",
    "an oil painting of people around a campfire",
    "a photo of a dog",
    "a rocket ship",
    "a high quality photo",
    "a lithograph of waterfalls",
    "a pencil sketch of a man",
    "a photo of the amalfi coast",
    "a photo of a hipster barista",
    "a man wearing a hat",
]
OLD_MAN, CAMPFIRE = SENTENCES[0], SENTENCES[1]
IF_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_schedule="squaredcos_cap_v2",
    variance_type="learned_range",
    thresholding=True,
    dynamic_thresholding_ratio=0.95,
    sample_max_value=1.5,
    clip_sample=True,
    clip_sample_range=1.0,
    prediction_type="epsilon",
)
UNET = dict(
    layers_per_block=1,
    block_out_channels=(8, 16),
    down_block_types=("DownBlock2D", "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=16,
    attention_head_dim=4,
    norm_num_groups=4,
    encoder_hid_dim=16,
    encoder_hid_dim_type="text_proj",
    addition_embed_type="text",
    addition_embed_type_num_heads=2,
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    resnet_time_scale_shift="scale_shift",
    act_fn="gelu",
)


def _tokenizer(folder: Path):
    """A T5 tokenizer from a sentencepiece model trained here (vocab read with sentencepiece itself, so
    transformers needs no protobuf to convert it)."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 10) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spiece"),
        vocab_size=60,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=77)


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory) -> tuple[Path, Path]:
    """(stage-I IFPipeline folder, stage-II IFSuperResolutionPipeline folder), built once per session."""
    from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    root = tmp_path_factory.mktemp("tiny-if")
    tokenizer = _tokenizer(root)
    torch.manual_seed(0)
    encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
        )
    )
    unet = UNet2DConditionModel(sample_size=SIZE, in_channels=3, out_channels=6, **UNET)
    stage1 = root / "IF-I-tiny"
    IFPipeline(
        tokenizer=tokenizer,
        text_encoder=encoder,
        unet=unet,
        scheduler=DDPMScheduler(**IF_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        requires_safety_checker=False,
    ).save_pretrained(stage1)
    up_unet = UNet2DConditionModel(
        sample_size=2 * SIZE, in_channels=6, out_channels=6, class_embed_type="timestep", **UNET
    )
    stage2 = root / "IF-II-tiny"
    IFSuperResolutionPipeline(
        tokenizer=None,
        text_encoder=None,
        unet=up_unet,
        scheduler=DDPMScheduler(**{**IF_SCHEDULER, "sample_max_value": 1.0}),
        image_noising_scheduler=DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"),
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        requires_safety_checker=False,
    ).save_pretrained(stage2)
    return stage1, stage2


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks on a shared 2-core machine: one thread is several times faster than contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(home, pipelines) -> str:
    r = run_cli(["models", "add", "tiny-if", "--path", str(pipelines[0]), "--upscaler", str(pipelines[1])])
    assert r.code == 0, r.stderr
    return "tiny-if"


@pytest.fixture
def model(tiny):
    from diffcli.models.backends import load_model

    return load_model(tiny, device="cpu")


def _settings(model):
    from diffcli.generation import default_settings

    return default_settings(model, None, None)


def _count_calls(model, monkeypatch) -> list[int]:
    """Spy on net: the batch size of every UNet call."""
    rows: list[int] = []
    real = model.net

    def spy(x, t, cond):
        rows.append(x.shape[0])
        assert cond.shape[0] == x.shape[0]
        return real(x, t, cond)

    monkeypatch.setattr(model, "net", spy)
    return rows


# ----- registration -------------------------------------------------------------------------------
def test_add_registers_config_only_and_list_shows_it(tiny, home, pipelines):
    rows = run_cli(["models", "list", "--json"]).json()
    row = next(r for r in rows if r["name"] == tiny)
    assert row["kind"] == "diffusers" and row["conditioning"] == "text" and row["image"]["size"] == SIZE
    assert sorted(p.name for p in (home / "models" / tiny).iterdir()) == ["config.json"]
    config = json.loads((home / "models" / tiny / "config.json").read_text())
    assert config["schedule"] == {"kind": "cosine", "timesteps": 1000}
    assert config["architecture"]["output"] == {
        "learned_variance": True,
        "clip": None,
        "dynamic_threshold": 0.95,
        "threshold_max": 1.5,
    }
    assert config["sampling"] == {"sampler": "ddpm", "stride": 30, "guidance": 7.0}
    assert config["architecture"]["source"] == {"path": str(pipelines[0].resolve())}
    assert "diffusers/text" in run_cli(["models", "list"]).stdout
    assert run_cli(["models", "show", tiny]).code == 0
    assert run_cli(["models", "rm", tiny, "--yes"]).code == 0
    assert (pipelines[0] / "model_index.json").is_file()  # the pipeline folder is untouched


def test_add_errors(home, pipelines, tmp_path):
    import shutil

    def fails(*args: str) -> str:
        r = run_cli(["models", "add", "x", *args])
        assert r.code != 0 and r.stderr.count("\n") == 1, r.stderr
        return r.stderr

    assert "no such folder" in fails("--path", str(tmp_path / "nope"))
    assert "model_index.json" in fails("--path", str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(pipelines[0], broken)
    shutil.rmtree(broken / "tokenizer")
    assert "no tokenizer/ folder" in fails("--path", str(broken))
    latent = tmp_path / "latent"
    shutil.copytree(pipelines[0], latent)
    index = json.loads((latent / "model_index.json").read_text())
    (latent / "model_index.json").write_text(
        json.dumps({**index, "_class_name": "StableDiffusionPipeline", "vae": ["diffusers", "AutoencoderKL"]})
    )
    assert "latent-space" in fails("--path", str(latent))
    assert "stage-II" in fails("--path", str(pipelines[1]))
    assert "exactly one of --hub" in fails()
    assert "exactly one of --hub" in fails("--hub", "a/b", "--path", str(pipelines[0]))
    assert "not a Hugging Face repo id" in fails("--hub", "not a repo")
    assert "upscaler" in fails("--hub", "DeepFloyd/IF-II-L-v1.0")
    assert run_cli(["models", "add", "x", "--path", str(pipelines[0])]).code == 0
    assert "already exists" in fails("--path", str(pipelines[0]))


def _hub_calls_forbidden(monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("registration must not download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)


def test_add_hub_records_the_id_without_downloading(home, monkeypatch):
    _hub_calls_forbidden(monkeypatch)
    r = run_cli(["models", "add", "if", "--hub", "DeepFloyd/IF-I-XL-v1.0", "--upscaler", "DeepFloyd/IF-II-L-v1.0"])
    assert r.code == 0, r.stderr
    config = json.loads((home / "models" / "if" / "config.json").read_text())
    assert config["architecture"]["source"] == {"hub": "DeepFloyd/IF-I-XL-v1.0"}
    assert config["architecture"]["upscaler"] == {"hub": "DeepFloyd/IF-II-L-v1.0"}
    assert config["architecture"]["resolved"] is False and config["image"]["size"] == 64
    assert config["schedule"]["kind"] == "cosine" and config["sampling"]["stride"] == 30


def _fake_response(status: int):
    import importlib

    httpx = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")
    return httpx.Response(
        status,
        request=httpx.Request("GET", "https://huggingface.co/DeepFloyd/IF-I-XL-v1.0/resolve/main/model_index.json"),
    )


def test_gated_licence_and_offline_errors_say_what_to_do(home, monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors

    from diffcli.models import hub
    from diffcli.models.backends import load_model

    _hub_calls_forbidden(monkeypatch)
    monkeypatch.setattr(hub, "hub_reachable", lambda repo_id, filename: True)  # the Hub answers (no request made)
    assert run_cli(["models", "add", "if", "--hub", "DeepFloyd/IF-I-XL-v1.0"]).code == 0

    def gated(*args, **kwargs):
        raise errors.GatedRepoError(
            "403 Client Error: access to model DeepFloyd/IF-I-XL-v1.0 is restricted", response=_fake_response(403)
        )

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(DiffcliError) as info:
        load_model("if", device="cpu")
    line = info.value.one_line()
    assert "gated" in line and "https://huggingface.co/DeepFloyd/IF-I-XL-v1.0" in line and "hf auth login" in line

    def offline(*args, **kwargs):
        raise errors.LocalEntryNotFoundError(
            "Cannot find the requested files in the disk cache and outgoing traffic has been disabled."
        )

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DiffcliError, match="not downloaded yet"):
        load_model("if", device="cpu")
    r = run_cli(["sample", "-m", "if", "--prompt", "a dog", "--device", "cpu", "-o", "x.png"])
    assert r.code == 1 and "not downloaded yet" in r.stderr and "Traceback" not in r.stderr


def test_missing_extra_names_the_install_command(tiny, monkeypatch):
    from diffcli.models.backends import load_model

    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import sentencepiece now fails
    with pytest.raises(DiffcliError) as info:
        load_model(tiny, device="cpu")
    assert "sentencepiece" in info.value.message and "pip install 'diffcli[hub]'" in info.value.one_line()


# ----- the adapter: schedule, spec, and agreement with diffusers' own IFPipeline -------------------
def test_schedule_and_spec_come_from_the_scheduler_config(model):
    from diffusers import DDPMScheduler

    theirs = DDPMScheduler(**IF_SCHEDULER)
    assert torch.allclose(torch.as_tensor(model.schedule.alphas_cumprod), theirs.alphas_cumprod.double(), atol=1e-6)
    assert (
        model.spec.learned_variance
        and model.spec.dynamic_threshold == 0.95
        and model.spec.threshold_max == 1.5
        and model.spec.clip is None
    )
    assert (model.channels, model.size, model.cond_type) == (3, SIZE, "text")


def test_unmappable_scheduler_settings_are_refused():
    from diffcli.models.pipeline_config import map_scheduler

    with pytest.raises(DiffcliError, match="scaled_linear"):
        map_scheduler({"beta_schedule": "scaled_linear"})
    with pytest.raises(DiffcliError, match="learned"):
        map_scheduler({"variance_type": "learned"})
    linear = map_scheduler(
        {
            "beta_schedule": "linear",
            "beta_start": 0.001,
            "beta_end": 0.01,
            "clip_sample": True,
            "clip_sample_range": 2.0,
        }
    )
    assert (
        linear.schedule["beta_start"] == 0.001
        and linear.output["clip"] == [-2.0, 2.0]
        and not linear.output["learned_variance"]
    )


def test_matches_diffusers_ifpipeline_step_for_step(model, pipelines):
    """Same seed, same strided timesteps (990 -> 0 by 30), CFG 7, learned variance, dynamic thresholding:
    our engine and diffusers' IFPipeline give the same image."""
    from diffusers import IFPipeline

    from diffcli.generation import generate, plan_timesteps, prompt_terms

    settings = _settings(model)
    assert plan_timesteps(model.schedule, settings) == list(range(990, -1, -30))
    prompt = model.resolve_prompt(OLD_MAN)
    ours = generate(model, prompt_terms(model, [prompt], 7.0), [3], settings)
    pipe = IFPipeline.from_pretrained(
        pipelines[0], safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = pipe.encode_prompt(OLD_MAN, True, clean_caption=False)
    assert torch.equal(embeds, model.condition([prompt])) and torch.equal(negative, model.null_condition(1))
    theirs = pipe(
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        timesteps=list(range(990, -1, -30)),
        guidance_scale=7.0,
        generator=torch.Generator().manual_seed(3),
        output_type="pt",
    ).images
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


# ----- sampling through the engine ---------------------------------------------------------------
def test_text_sampling_shapes_and_determinism(model):
    from diffcli.generation import generate, prompt_terms

    prompts = [model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE)]
    a = generate(model, prompt_terms(model, prompts, 7.0), [5, 6], _settings(model))
    b = generate(model, prompt_terms(model, prompts, 7.0), [5, 6], _settings(model))
    alone = generate(model, prompt_terms(model, prompts[1:], 7.0), [6], _settings(model))
    assert a.shape == (2, 3, SIZE, SIZE) and a.dtype == torch.float32 and bool(torch.isfinite(a).all())
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
    torch.testing.assert_close(a[1:], alone, atol=1e-5, rtol=0)  # seed i is sample i whatever the batch
    assert float(a.abs().max()) <= 1.0 + 1e-6


def test_the_learned_variance_drives_the_ddpm_step(model, monkeypatch):
    from diffcli.diffusion import samplers
    from diffcli.generation import generate, prompt_terms

    seen = []
    real = samplers.ddpm_step

    def spy(schedule, x_t, t, s, pred, noise):
        seen.append(None if pred.variance_value is None else tuple(pred.variance_value.shape))
        return real(schedule, x_t, t, s, pred, noise)

    monkeypatch.setattr(samplers, "ddpm_step", spy)
    terms = prompt_terms(model, [model.resolve_prompt(OLD_MAN)], 7.0)
    with_variance = generate(model, terms, [0], _settings(model))
    assert seen and all(shape == (1, 3, SIZE, SIZE) for shape in seen)
    real_net = model.net

    def no_variance(x, t, cond):
        out = real_net(x, t, cond)
        return torch.cat([out[:, :3], torch.zeros_like(out[:, 3:])], 1)

    monkeypatch.setattr(model, "net", no_variance)
    without = generate(model, terms, [0], _settings(model))
    assert not torch.allclose(with_variance, without)


def test_cfg_is_one_unet_call_per_step_with_2b_rows(model, monkeypatch):
    from diffcli.generation import generate, plan_timesteps, prompt_terms

    rows = _count_calls(model, monkeypatch)
    prompts = [model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE), model.resolve_prompt(OLD_MAN)]
    generate(model, prompt_terms(model, prompts, 7.0), [0, 1, 2], _settings(model))
    assert rows == [6] * len(plan_timesteps(model.schedule, _settings(model)))
    rows.clear()
    generate(model, prompt_terms(model, prompts[:1], 1.0), [0], _settings(model))
    assert set(rows) == {1}  # guidance 1: the conditional estimate alone


def test_anagram_and_hybrid_terms(model, monkeypatch):
    from diffcli.diffusion.views import get_view
    from diffcli.generation import generate
    from diffcli.generation.illusions import anagram_request, hybrid_request

    a, b = model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE)
    rows = _count_calls(model, monkeypatch)
    anagram = generate(model, anagram_request(model, [a], [b], 7.0, get_view("flip")), [0], _settings(model))
    assert anagram.shape == (1, 3, SIZE, SIZE) and set(rows) == {4}  # (A, null) as is + (B, null) flipped
    rows.clear()
    hybrid = generate(model, hybrid_request(model, [a], [b], 7.0, 9, 1.0), [0], _settings(model))
    assert hybrid.shape == (1, 3, SIZE, SIZE) and set(rows) == {3}  # FAR, NEAR and one shared null
    assert bool(torch.isfinite(anagram).all() and torch.isfinite(hybrid).all())


def test_sdedit_and_inpainting(model):
    from diffcli.generation import SamplerSettings, generate, plan_timesteps, prompt_terms

    terms = prompt_terms(model, [model.resolve_prompt(OLD_MAN)], 7.0)
    init = torch.linspace(-1, 1, SIZE)[None, None, None, :].repeat(1, 3, SIZE, 1)
    settings = SamplerSettings("ddpm", stride=30)
    assert plan_timesteps(model.schedule, settings, 990 - 30 * 10)[:2] == [690, 660]  # the course's i_start = 10
    edited = generate(model, terms, [0], settings, init=init, start=690)
    assert edited.shape == init.shape and not torch.equal(edited, init)
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., : SIZE // 2] = 1  # generate the left half, keep the right
    painted = generate(model, terms, [0], settings, init=init, mask=mask, start=990)
    assert torch.equal(painted[..., SIZE // 2 :], init[..., SIZE // 2 :])
    assert not torch.allclose(painted[..., : SIZE // 2], init[..., : SIZE // 2])


# ----- prompts ----------------------------------------------------------------------------------
def test_prompt_embeddings_are_cached_on_disk(tiny, home, monkeypatch):
    import transformers

    from diffcli.models.backends import load_model

    first = load_model(tiny, device="cpu")
    cond = first.condition([first.resolve_prompt(OLD_MAN)] * 2)
    assert cond.shape[0] == 2 and torch.equal(cond[0], cond[1]) and first.encoder_loads == 1
    first.null_condition(2)  # the empty prompt was encoded in the same run
    assert first.encoder_loads == 1
    assert len(list((home / "cache" / "prompt-embeddings" / tiny).glob("*.safetensors"))) == 2

    def forbidden(*args, **kwargs):
        raise AssertionError("the text encoder or tokenizer was loaded on a cache hit")

    monkeypatch.setattr(transformers.T5EncoderModel, "from_pretrained", forbidden)
    monkeypatch.setattr(transformers.T5Tokenizer, "from_pretrained", forbidden)
    second = load_model(tiny, device="cpu")
    again = second.condition([second.resolve_prompt(OLD_MAN)] * 2)
    assert second.encoder_loads == 0 and torch.equal(again, cond)
    assert second.null_condition(2) is second.null_condition(2)  # one tensor: guidance evaluates it once


def test_long_prompt_warns_that_it_was_cut(model, tiny, capsys):
    from diffcli.models.backends import load_model

    long = " ".join(SENTENCES)
    model.condition([model.resolve_prompt(long)])
    err = capsys.readouterr().err
    assert "warning" in err and "77" in err and "cut" in err
    load_model(tiny, device="cpu").condition([model.resolve_prompt(long)])  # cache hit: still warned
    assert "cut" in capsys.readouterr().err
    model.condition([model.resolve_prompt("a photo of a dog")])
    assert "cut" not in capsys.readouterr().err


# ----- stage II and memory -------------------------------------------------------------------------
def _stage_one_images(batch: int) -> torch.Tensor:
    """Fixed 'stage-I results' in [-1, 1]: a gradient and a checkerboard, so views and filters show."""
    ramp = torch.linspace(-1, 1, SIZE)
    board = (torch.arange(SIZE)[:, None] // 4 + torch.arange(SIZE)[None, :] // 4) % 2 * 1.6 - 0.8
    base = torch.stack([ramp[None, :].expand(SIZE, SIZE), board, ramp[:, None].expand(SIZE, SIZE)])
    return torch.stack([base * (1 - 0.3 * i) for i in range(batch)])


def test_stage_two_matches_diffusers_ifsuperresolution_step_for_step(model, pipelines):
    """Plain CFG upscaling with IFSuperResolutionPipeline's defaults (50 steps spaced 'leading', CFG 4,
    noise level 250, learned variance, dynamic thresholding): our loop and the pipeline agree at
    every step, given the same seeds."""
    from diffusers import IFSuperResolutionPipeline

    from diffcli.generation import prompt_terms

    prompts = [model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE)]
    images, seeds = _stage_one_images(2), [3, 4]
    settings = model.upscale_settings()
    assert (settings.steps, settings.guidance, settings.noise_level) == (50, 4.0, 250)
    ours_steps: list[torch.Tensor] = []
    ours = model.upscale(
        images,
        prompt_terms(model, prompts, settings.guidance),
        seeds,
        settings,
        callback=lambda i, t, x, x0: ours_steps.append(x.clone()),
    )
    pipe = IFSuperResolutionPipeline.from_pretrained(
        pipelines[1],
        text_encoder=None,
        tokenizer=None,
        safety_checker=None,
        feature_extractor=None,
        watermarker=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    theirs_steps: list[torch.Tensor] = []
    theirs = pipe(
        image=images,
        prompt_embeds=model.condition(prompts),
        negative_prompt_embeds=model.null_condition(2),
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        output_type="pt",
        callback=lambda i, t, x: theirs_steps.append(x.clone()),
    ).images
    assert len(ours_steps) == len(theirs_steps) == 50
    for i, (a, b) in enumerate(zip(ours_steps[1:], theirs_steps)):  # ours: x_t before step i+1; theirs: after step i
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0, msg=f"step {i}")
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    assert ours.shape == (2, 3, 2 * SIZE, 2 * SIZE) and float(ours.abs().max()) <= 1.0 + 1e-6


def test_stage_two_honours_seeds(model):
    from dataclasses import replace

    from diffcli.generation import prompt_terms

    prompt = model.resolve_prompt(OLD_MAN)
    images = _stage_one_images(2)
    settings = replace(model.upscale_settings(), steps=10)

    def up(rows, seeds):
        return model.upscale(
            images[rows], prompt_terms(model, [prompt] * len(seeds), settings.guidance), seeds, settings
        )

    pair = up(slice(0, 2), [7, 8])
    torch.testing.assert_close(up(slice(1, 2), [8]), pair[1:], atol=1e-4, rtol=0)  # seed 8 alone == row 1 of the batch
    assert torch.equal(up(slice(0, 2), [7, 8]), pair)
    assert not torch.allclose(up(slice(0, 2), [9, 8])[0], pair[0])  # another seed, another image


def _spy_stage_two(model, monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every stage-II network call: (its input [rows, 6, H, W], its text embeddings)."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = type(model)._stage_two_net

    def spying(self, noise_level):
        net = real(self, noise_level)

        def spy(x, t, cond):
            calls.append((x.clone(), cond.clone()))
            return net(x, t, cond)

        return spy

    monkeypatch.setattr(type(model), "_stage_two_net", spying)
    return calls


def test_anagram_stage_two_uses_both_prompts_and_views_the_whole_input(model, monkeypatch):
    """The reference's stage II: (A, null) as is and (B, null) through the view, in one call per step,
    with the view applied to [x_t, upsampled image] together, at the illusion's CFG scale and noise level 50."""
    from diffcli.diffusion.views import get_view
    from diffcli.generation.illusions import anagram_request

    a, b = model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE)
    flip = get_view("flip")
    settings = model.upscale_settings(illusion_guidance=7.0)
    assert (settings.guidance, settings.noise_level) == (7.0, 50)
    calls = _spy_stage_two(model, monkeypatch)
    out = model.upscale(_stage_one_images(1), anagram_request(model, [a], [b], settings.guidance, flip), [0], settings)
    assert out.shape == (1, 3, 2 * SIZE, 2 * SIZE) and bool(torch.isfinite(out).all())
    assert len(calls) == 50 and all(x.shape == (4, 6, 2 * SIZE, 2 * SIZE) for x, _ in calls)
    x, cond = calls[0]
    embed_a, embed_b, null = model.condition([a])[0], model.condition([b])[0], model.null_condition(1)[0]
    assert not torch.equal(embed_a, embed_b)
    assert (
        torch.equal(cond[0], embed_a)
        and torch.equal(cond[1], null)
        and torch.equal(cond[2], embed_b)
        and torch.equal(cond[3], null)
    )
    torch.testing.assert_close(x[2:3], flip.apply(x[0:1]))  # x_t AND the upsampled image, flipped
    assert not torch.equal(x[0, 3:], flip.apply(x[0:1])[0, 3:])  # (the upsampled image is not symmetric)


def test_hybrid_stage_two_uses_both_prompts_and_the_scaled_filter(model, monkeypatch):
    from diffcli.diffusion import filters
    from diffcli.generation.illusions import hybrid_request

    far, near = model.resolve_prompt(OLD_MAN), model.resolve_prompt(CAMPFIRE)
    assert model.upscale_factor == 2  # the tiny upscaler: 16 -> 32 px
    kernel, sigma = filters.scale_filter(9, 1.0, model.upscale_factor)
    assert (kernel, sigma) == (19, 2.0)
    settings = model.upscale_settings(illusion_guidance=7.0)
    calls = _spy_stage_two(model, monkeypatch)
    terms = hybrid_request(model, [far], [near], settings.guidance, kernel, sigma)
    out = model.upscale(_stage_one_images(1), terms, [0], settings)
    assert bool(torch.isfinite(out).all()) and len(calls) == 50
    x, cond = calls[0]
    assert x.shape[0] == 3  # FAR, the shared null, NEAR
    assert (
        torch.equal(cond[0], model.condition([far])[0])
        and torch.equal(cond[1], model.null_condition(1)[0])
        and torch.equal(cond[2], model.condition([near])[0])
    )
    low = filters.lowpass(torch.randn(1, 3, 2 * SIZE, 2 * SIZE), kernel, sigma)
    assert torch.equal(terms[0].filter(low), filters.lowpass(low, 19, 2.0))  # the far terms low-pass at 19 / 2


def test_illusions_follow_the_reference_at_both_stages(tiny, model, monkeypatch):
    """Text-to-image anagrams and hybrids: 30 DDPM steps and CFG 10 at stage I, and stage II with the same
    scale and step count at noise level 50 (dangeng/visual_anagrams), unless the user asks otherwise."""
    from diffcli.models.backends.diffusers_pixel import DiffusersModel

    seen = []
    real = DiffusersModel.upscale

    def spy(self, images, terms, seeds, settings=None, callback=None):
        seen.append(settings)
        return real(self, images, terms, seeds, settings, callback)

    monkeypatch.setattr(DiffusersModel, "upscale", spy)
    for args in (["anagram", OLD_MAN, CAMPFIRE], ["hybrid", OLD_MAN, CAMPFIRE]):
        r = run_cli([*args, "-m", tiny, "--device", "cpu", "--seed", "0", "--upscale", "--json", "-o", "x.png"])
        assert r.code == 0, r.stderr
        summary = r.json()
        assert (summary["sampler"], summary["steps"], summary["guidance"]) == ("ddpm", 30, 10.0), summary
        assert (seen[-1].steps, seen[-1].guidance, seen[-1].noise_level) == (30, 10.0, 50)
    r = run_cli(
        [
            "anagram",
            OLD_MAN,
            CAMPFIRE,
            "-m",
            tiny,
            "--device",
            "cpu",
            "--seed",
            "0",
            "--stride",
            "30",
            "-g",
            "7",
            "--json",
            "-o",
            "x.png",
        ]
    )
    assert r.code == 0 and (r.json()["stride"], r.json()["steps"], r.json()["guidance"]) == (
        30,
        None,
        7.0,
    )  # the course's, when asked


def test_upscale_without_an_upscaler_is_a_clear_error(home, pipelines):
    from diffcli.models.backends import load_model

    assert run_cli(["models", "add", "plain", "--path", str(pipelines[0])]).code == 0
    with pytest.raises(DiffcliError, match="no upscaler"):
        load_model("plain", device="cpu", upscale=True)
    plain = load_model("plain", device="cpu")
    with pytest.raises(DiffcliError) as info:
        plain.upscale(torch.zeros(1, 3, SIZE, SIZE), [], [0])
    assert "--upscaler DeepFloyd/IF-II-L-v1.0" in info.value.one_line()


def test_offload_choice_and_out_of_memory_errors(monkeypatch):
    from diffcli.models.backends import memory

    cuda = torch.device("cuda")
    gib = memory.GIB
    monkeypatch.setattr(memory, "free_cuda_memory", lambda device: 20 * gib)
    assert memory.choose_offload("auto", cuda, 9 * gib, 2 * gib) == "none"
    assert memory.choose_offload("auto", cuda, 9 * gib, 12 * gib) == "model"
    assert memory.choose_offload("auto", cuda, 19 * gib) == "sequential"
    assert memory.choose_offload("sequential", torch.device("cpu"), 19 * gib) == "none"
    with pytest.raises(DiffcliError) as too_big:
        memory.choose_offload("none", cuda, 21 * gib)
    assert "`offload` sequential" in too_big.value.one_line()  # the CLI shows it as --offload
    with pytest.raises(UsageError):
        memory.check_offload("half")
    with pytest.raises(DiffcliError) as oom:
        with memory.oom_guard("while sampling", "none"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    assert "ran out of memory" in oom.value.message and "`offload` sequential" in oom.value.one_line()


# ----- commands ----------------------------------------------------------------------------------
def test_doctor_json_and_screen(tiny):
    r = run_cli(["doctor", "--json"])
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["versions"]["torch"] and isinstance(report["devices"]["cuda"], list)
    assert any(m["name"] == tiny and m["kind"] == "diffusers/text" for m in report["registry"]["models"])
    assert report["extras"]["hub"]["diffusers"] and isinstance(report["advice"], list)
    screen = run_cli(["doctor"])
    assert screen.code == 0 and "registry" in screen.stdout and tiny in screen.stdout


def test_cli_sample_anagram_hybrid_sdedit_inpaint_denoise(tiny, tmp_path):
    for command in ("sample", "anagram", "hybrid"):  # a command that cannot even show its help fails here
        shown = run_cli([command, "--help"])
        assert shown.code == 0 and "Usage" in shown.stdout, shown.stderr
    base = ["-m", tiny, "--device", "cpu", "--seed", "1", "-q"]
    one = run_cli(["sample", *base, "--prompt", OLD_MAN, "-o", "-"])
    assert one.code == 0, one.stderr
    assert png_array(one.stdout_bytes).shape == (SIZE, SIZE, 3)
    assert (
        png_array(run_cli(["sample", *base, "--prompt", OLD_MAN, "-o", "-"]).stdout_bytes).tolist()
        == png_array(one.stdout_bytes).tolist()
    )
    for args in (["anagram", OLD_MAN, CAMPFIRE], ["hybrid", OLD_MAN, CAMPFIRE, "--kernel", "9", "--sigma", "1"]):
        for extra in ([], ["--upscale"]):
            r = run_cli([*args, *base, *extra, "-o", str(tmp_path / f"{args[0]}.png")])
            assert r.code == 0, r.stderr
        width = 2 * (2 * SIZE) if args[0] == "anagram" else 2 * SIZE  # the anagram writes image | viewed image
        assert png_array(tmp_path / f"{args[0]}.png").shape[1] >= width
    mask = tmp_path / "mask.png"
    from PIL import Image

    Image.new("L", (64, 64), 0).save(mask)
    for extra in (
        ["--init", "builtin:house", "--start", "690"],
        ["--init", "builtin:house", "--mask", str(mask)],
        ["--upscale"],
    ):
        r = run_cli(["sample", *base, "--prompt", "a photo of a dog", *extra, "-o", str(tmp_path / "x.png")])
        assert r.code == 0, r.stderr
    assert png_array(tmp_path / "x.png").shape == (2 * SIZE, 2 * SIZE, 3)
    r = run_cli(
        [
            "denoise",
            "builtin:house",
            "-m",
            tiny,
            "--device",
            "cpu",
            "-t",
            "500",
            "--stride",
            "30",
            "--seed",
            "0",
            "-o",
            str(tmp_path / "d.png"),
            "--compare",
        ]
    )
    assert r.code == 0, r.stderr
