"""Build the embedded text-to-image generator: a tiny Stable Diffusion trained here, on the glyph corpus.

In: a `GeneratorBuildConfig` (seed, sizes, steps) and an output folder. Out: a standard diffusers
folder that plain `StableDiffusionPipeline.from_pretrained(folder)` loads, with no extra arguments:

    GENERATOR_DIR/
      model_index.json   StableDiffusionPipeline; safety_checker/feature_extractor null, requires_safety_checker false
      unet/              UNet2DConditionModel on 8x8x4 latents (cross-attention on the text encoder)
      vae/               AutoencoderKL 32x32x3 <-> 8x8x4, scaling_factor = 1/std of the corpus latents
      text_encoder/      a tiny CLIPTextModel, trained jointly with the UNet (nothing pretrained exists)
      tokenizer/         a CLIP BPE tokenizer (vocab.json, merges.txt) whose vocabulary covers the captions
      scheduler/         the sampler used by default (DPM-Solver++), configured from the training DDPM
      synthbridge.json   generation defaults (guidance, steps, scheduler, size) and the build record

Everything is drawn from `seed` through `derive_seed`, so `synthbridge build-generator` rebuilds the
same weights on the same machine. The corpus is procedural (`embedded.corpus`): no real data.
As in Stable Diffusion, training runs in two phases: the VAE first, then the denoiser on its latents
(epsilon prediction under a DDPM noise schedule); unlike SD the text encoder is trained with the UNet.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthbridge.diffusion.pipeline import make_scheduler
from synthbridge.embedded import corpus as corpus_lib
from synthbridge.embedded.assets import GENERATOR_DIR
from synthbridge.errors import UserError
from synthbridge.io import environment, make_readable, read_json, write_json
from synthbridge.io import progress as progress_bar
from synthbridge.seeding import derive_seed

RECORD_FILE = "synthbridge.json"  # generation defaults + build record, next to model_index.json
SAMPLERS = ("dpm++", "ddim")  # what the saved scheduler/ folder holds (both are configured from the training DDPM)


@dataclass(frozen=True)
class GeneratorBuildConfig:
    """Every hyperparameter of the build; the resolved config is written to synthbridge.json."""

    seed: int = 0  # everything (corpus, initialisation, batches, noise) derives from it
    # --- corpus
    corpus_size: int = 48_000  # images rendered once (about 5 ms each) and reused across epochs
    image_size: int = 32  # the embedded world's size; multiple of 8
    render_workers: int = 2  # processes that render the corpus (the result does not depend on it)
    # --- tokenizer and text encoder
    max_length: int = 64  # tokens per prompt (the longest corpus caption is ~45 tokens)
    text_width: int = 64  # CLIP hidden size = the UNet's cross_attention_dim
    text_layers: int = 3
    text_heads: int = 4
    # --- VAE (trained first, alone)
    vae_channels: tuple[int, ...] = (32, 64, 64)  # one block per entry; 3 blocks: 32x32 -> 8x8 latents
    # GroupNorm groups: 4+ channels per group. With one channel per group (or 16 channels at the top
    # level) the decoder's last norm wipes each image's mean per channel and colours come out grey.
    vae_norm_groups: int = 8
    latent_channels: int = 4
    vae_steps: int = 1200
    vae_batch_size: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-3  # KL per latent element vs L1 per pixel: keeps latents near N(0, 1) without blurring
    # --- UNet + text encoder (trained together on the VAE's latents)
    unet_channels: tuple[int, ...] = (48, 96)  # both levels with cross-attention (8x8 and 4x4)
    unet_layers_per_block: int = 1
    unet_heads: int = 4
    unet_norm_groups: int = 8  # 4-8 channels per group at the first level (as the VAE, see vae_norm_groups)
    unet_steps: int = 5000
    unet_batch_size: int = 64
    unet_lr: float = 1e-3
    warmup_steps: int = 100
    snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al. 2023): faster convergence; 0 turns it off
    ema_decay: float = 0.999  # EMA of the UNet and text encoder weights (what is saved)
    # --- diffusion and sampling defaults (recorded in synthbridge.json; `generate` reads them)
    train_timesteps: int = 1000
    sampler: str = "dpm++"  # the scheduler saved in scheduler/: "dpm++" (DPM-Solver++ 2M) or "ddim"
    guidance_scale: float = 4.0
    inference_steps: int = 25
    # --- environment (not hyperparameters)
    # torch CPU threads; None keeps torch's default. On a shared machine also export OMP_WAIT_POLICY=PASSIVE
    # before starting Python: spinning OpenMP threads that share cores with other jobs made steps 10-30x slower.
    threads: int | None = None

    def check(self) -> None:
        for name in ("corpus_size", "vae_steps", "unet_steps", "vae_batch_size", "unet_batch_size", "max_length",
                     "text_width", "text_layers", "text_heads", "inference_steps", "train_timesteps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise UserError(f"{name} must be a whole number > 0, got {getattr(self, name)!r}")
        if self.image_size % 8 or self.image_size <= 0:
            raise UserError(f"image_size must be a positive multiple of 8, got {self.image_size}")
        if self.sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if not self.guidance_scale >= 1:
            raise UserError(f"guidance_scale must be >= 1, got {self.guidance_scale}")

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.vae_channels) - 1)

    @classmethod
    def quick(cls, seed: int = 0) -> GeneratorBuildConfig:
        """A seconds-long build with the same architecture (for tests): few images and steps."""
        return cls(seed=seed, corpus_size=96, render_workers=1, vae_steps=4, vae_batch_size=8, unet_steps=4,
                   unet_batch_size=8, warmup_steps=1, inference_steps=2, threads=1)

    def to_dict(self) -> dict:
        return asdict(self)


# --- 1. tokenizer -------------------------------------------------------------------------------------------------

def build_tokenizer(words: Sequence[str], model_max_length: int):
    """A CLIP BPE tokenizer in which each of `words` is one token ("word</w>").

    Like CLIP's, it is byte-level: every byte has a token alone and word-final ("x</w>"), so any
    text tokenizes (and textual inversion can add new tokens). The merges are learned by the
    `tokenizers` BPE trainer on the word list, run until every word is a single token.
    """
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # CLIP's printable stand-ins of the 256 bytes
    bpe = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = BpeTrainer(vocab_size=1_000_000, min_frequency=1, show_progress=False, initial_alphabet=alphabet,
                         end_of_word_suffix="</w>")
    bpe.train_from_iterator(list(words), trainer)
    merges = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]  # in rank order
    # CLIP's id layout: bytes, word-final bytes, merged tokens, then the two special tokens.
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    # transformers 5 ignores vocab_file=/merges_file= here: the vocabulary must be passed as objects.
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    single = {w: tokenizer.tokenize(w) for w in words}
    if broken := [w for w, pieces in single.items() if len(pieces) != 1]:
        raise RuntimeError(f"tokenizer splits corpus words {broken[:5]}: {[single[w] for w in broken[:5]]}")
    return tokenizer


def save_tokenizer(tokenizer, folder: Path) -> None:
    """save_pretrained plus CLIP's classic vocab.json/merges.txt, so slow and fast loaders both read it."""
    tokenizer.save_pretrained(folder)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    write_json(folder / "vocab.json", model["vocab"])
    merges = ["#version: 0.2"] + [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    (folder / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")


def tokenize(tokenizer, captions: Sequence[str]) -> torch.Tensor:
    """Token ids exactly as StableDiffusionPipeline.encode_prompt makes them: padded to max length."""
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


# --- 2. models ----------------------------------------------------------------------------------------------------

def make_vae(cfg: GeneratorBuildConfig):
    from diffusers import AutoencoderKL

    torch.manual_seed(derive_seed(cfg.seed, "init", "vae"))
    blocks = len(cfg.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=cfg.latent_channels,
                         block_out_channels=cfg.vae_channels, layers_per_block=1,
                         down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
                         norm_num_groups=cfg.vae_norm_groups, sample_size=cfg.image_size)


def make_text_encoder(cfg: GeneratorBuildConfig, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(derive_seed(cfg.seed, "init", "text_encoder"))
    # One embedding row per tokenizer entry, as in real SD: textual inversion resizes exactly this table.
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=cfg.text_width, intermediate_size=4 * cfg.text_width,
                            num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads,
                            max_position_embeddings=cfg.max_length, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return CLIPTextModel(config)


def make_unet(cfg: GeneratorBuildConfig):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(derive_seed(cfg.seed, "init", "unet"))
    levels = len(cfg.unet_channels)
    return UNet2DConditionModel(
        sample_size=cfg.latent_size, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        block_out_channels=cfg.unet_channels, layers_per_block=cfg.unet_layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * levels, up_block_types=("CrossAttnUpBlock2D",) * levels,
        cross_attention_dim=cfg.text_width, attention_head_dim=cfg.unet_heads,  # diffusers: number of heads
        norm_num_groups=cfg.unet_norm_groups)


def make_train_scheduler(cfg: GeneratorBuildConfig):
    """SD 1.x's noise schedule; clip_sample=False because latents are not bounded to [-1, 1]."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", prediction_type="epsilon", clip_sample=False,
                         steps_offset=1, timestep_spacing="leading")


# --- 3. training --------------------------------------------------------------------------------------------------

def _batches(count: int, batch_size: int, steps: int, seed: int, name: str) -> Iterator[np.ndarray]:
    """Index batches over epochs of seeded permutations: every image once per epoch."""
    order: np.ndarray = np.empty(0, dtype=np.int64)
    epoch = 0
    for _ in range(steps):
        while len(order) < batch_size:
            perm = np.random.default_rng(derive_seed(seed, name, "epoch", epoch)).permutation(count)
            order, epoch = np.concatenate([order, perm]), epoch + 1
        yield order[:batch_size]
        order = order[batch_size:]


def _to_pixels(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1], the VAE's range."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _smoothed(history: list[float], window: int = 50) -> float:
    return float(np.mean(history[-window:]))


def train_vae(vae, images: np.ndarray, cfg: GeneratorBuildConfig, progress: bool = True) -> dict:
    """Reconstruction (L1) + a small KL to N(0, 1), AdamW with cosine decay; returns the loss record."""
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=min(cfg.warmup_steps, cfg.vae_steps // 10),
                             num_training_steps=cfg.vae_steps)
    noise = torch.Generator().manual_seed(derive_seed(cfg.seed, "vae", "posterior"))
    vae.train()
    l1_history, kl_history, curve = [], [], []
    bar = progress_bar(_batches(len(images), cfg.vae_batch_size, cfg.vae_steps, cfg.seed, "vae"), total=cfg.vae_steps,
                       desc="train vae", unit="step", enabled=progress)
    for step, index in enumerate(bar):
        x = _to_pixels(images[index])
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=noise)).sample
        l1 = F.l1_loss(reconstruction, x)
        kl = posterior.kl().mean() / posterior.mean[0].numel()  # per latent element
        loss = l1 + cfg.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        l1_history.append(l1.item())
        kl_history.append(kl.item())
        bar.set_postfix(l1=f"{_smoothed(l1_history):.4f}", kl=f"{_smoothed(kl_history):.2f}")
        if (step + 1) % max(1, cfg.vae_steps // 20) == 0 or step + 1 == cfg.vae_steps:
            curve.append({"step": step + 1, "l1": round(_smoothed(l1_history), 5), "kl": round(_smoothed(kl_history), 4)})
    vae.eval()
    return {"final_l1": curve[-1]["l1"], "final_kl": curve[-1]["kl"], "curve": curve}


@torch.no_grad()
def encode_corpus(vae, images: np.ndarray, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every corpus image (the UNet draws a fresh latent from them each step)."""
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        posterior = vae.encode(_to_pixels(images[start:start + batch_size])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def latent_scale(means: torch.Tensor, stds: torch.Tensor, seed: int) -> float:
    """1 / std of sampled latents (SD's scaling_factor): the diffusion sees unit-variance latents."""
    noise = torch.randn(means.shape, generator=torch.Generator().manual_seed(derive_seed(seed, "latent-scale")))
    return float(1.0 / (means + stds * noise).std())


def train_denoiser(unet, text_encoder, token_ids: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, scale: float,
                   cfg: GeneratorBuildConfig, progress: bool = True) -> dict:
    """Epsilon-prediction on noised latents (DDPM), text encoder trained jointly; EMA weights end up in the models."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel, compute_snr

    scheduler = make_train_scheduler(cfg)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-2)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=min(cfg.warmup_steps, cfg.unet_steps // 10),
                             num_training_steps=cfg.unet_steps)
    # EMA warm-up: the average starts short and lengthens, so even a short build gets usable weights.
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    noise_source = torch.Generator().manual_seed(derive_seed(cfg.seed, "unet", "noise"))
    unet.train()
    text_encoder.train()
    history, curve = [], []
    bar = progress_bar(_batches(len(token_ids), cfg.unet_batch_size, cfg.unet_steps, cfg.seed, "unet"),
                       total=cfg.unet_steps, desc="train unet", unit="step", enabled=progress)
    for step, index in enumerate(bar):
        index = torch.from_numpy(index)
        # 1. a fresh latent of each image (posterior sample), its noise level and noise
        eps_latent = torch.randn(means[index].shape, generator=noise_source)
        latents = (means[index] + stds[index] * eps_latent) * scale
        noise = torch.randn(latents.shape, generator=noise_source)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(index),), generator=noise_source)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        # 2. predict the noise from the caption (no attention mask: the pipeline passes none either)
        hidden = text_encoder(token_ids[index])[0]
        prediction = unet(noisy, timesteps, hidden).sample
        # 3. Min-SNR weighted MSE: easy, low-noise steps do not dominate the gradient
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        if cfg.snr_gamma > 0:
            snr = compute_snr(scheduler, timesteps)
            per_sample = per_sample * torch.clamp(snr, max=cfg.snr_gamma) / snr
        loss = per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        ema.step(params)
        history.append(loss.item())
        bar.set_postfix(loss=f"{_smoothed(history):.4f}", lr=f"{schedule.get_last_lr()[0]:.1e}")
        if (step + 1) % max(1, cfg.unet_steps // 20) == 0 or step + 1 == cfg.unet_steps:
            curve.append({"step": step + 1, "loss": round(_smoothed(history), 5)})
    ema.copy_to(params)
    unet.eval()
    text_encoder.eval()
    return {"final_loss": curve[-1]["loss"], "curve": curve}


# --- 4. the build -------------------------------------------------------------------------------------------------

def generation_defaults(cfg: GeneratorBuildConfig) -> dict:
    """What `synthbridge generate` uses unless told otherwise (synthbridge.json["defaults"])."""
    return {"guidance_scale": cfg.guidance_scale, "num_inference_steps": cfg.inference_steps,
            "scheduler": "DPMSolverMultistepScheduler" if cfg.sampler == "dpm++" else "DDIMScheduler",
            "height": cfg.image_size, "width": cfg.image_size, "prompt": "a photo of {phrase}",
            "digit_prompt": corpus_lib.DIGIT_PROMPT_TEMPLATE}


def read_defaults(generator: str | os.PathLike = GENERATOR_DIR) -> dict:
    """The generation defaults recorded by the build, or {} for a folder built elsewhere."""
    path = Path(generator) / RECORD_FILE
    return read_json(path).get("defaults", {}) if path.is_file() else {}


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{str(out)!r} is a file; choose a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{str(out)!r} already holds a generator; pass --overwrite to replace it or choose another --out")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(cfg: GeneratorBuildConfig, out: str | os.PathLike = GENERATOR_DIR, *, overwrite: bool = False,
          progress: bool = True, fidelity_per_class: int = 0) -> dict:
    """Train every component, save the pipeline folder atomically at `out`; returns the build record."""
    from diffusers import StableDiffusionPipeline

    cfg.check()
    out = Path(out)
    _check_out(out, overwrite)  # fail before any work
    began = time.perf_counter()
    seconds: dict[str, float] = {}
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written into a hidden sibling folder, moved onto `out` only when complete.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        # 1. corpus: procedural captioned images, rendered once
        clock = time.perf_counter()
        data = corpus_lib.render_corpus(cfg.seed, cfg.corpus_size, cfg.image_size, workers=cfg.render_workers,
                                        progress=progress)
        seconds["corpus"] = time.perf_counter() - clock

        # 2. tokenizer over the caption vocabulary
        tokenizer = build_tokenizer(corpus_lib.caption_words(), cfg.max_length)
        token_ids = tokenize(tokenizer, data.captions)

        # 3. VAE: learn to compress 32x32x3 to 8x8x4, then measure the latent scale
        clock = time.perf_counter()
        vae = make_vae(cfg)
        vae_record = train_vae(vae, data.images, cfg, progress)
        means, stds = encode_corpus(vae, data.images)
        scale = latent_scale(means, stds, cfg.seed)
        vae.register_to_config(scaling_factor=scale)
        seconds["vae"] = time.perf_counter() - clock

        # 4. UNet + text encoder on the latents
        clock = time.perf_counter()
        text_encoder, unet = make_text_encoder(cfg, tokenizer), make_unet(cfg)
        unet_record = train_denoiser(unet, text_encoder, token_ids, means, stds, scale, cfg, progress)
        seconds["unet"] = time.perf_counter() - clock
        del means, stds

        # 5. save as a standard SD folder: no safety checker, and say so in model_index.json
        scheduler = make_scheduler(cfg.sampler, make_train_scheduler(cfg).config)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        pipe.save_pretrained(work, safe_serialization=True)
        save_tokenizer(tokenizer, work / "tokenizer")

        # 6. check: plain from_pretrained loads the folder and draws a 32x32 image
        clock = time.perf_counter()
        check_generator(work, seed=cfg.seed)
        seconds["check"] = time.perf_counter() - clock
        seconds["total_build"] = time.perf_counter() - began

        # 7. the record, then the folder moves into place
        env = environment()
        record = {
            "defaults": generation_defaults(cfg),
            "build": {
                "command": "synthbridge build-generator", "argv": env["command"], "config": cfg.to_dict(),
                "corpus": {**corpus_lib.composition(), "rendered": corpus_lib.counts(data)},
                "tokenizer": {"vocab_size": len(tokenizer), "caption_words": len(corpus_lib.caption_words()),
                              "model_max_length": tokenizer.model_max_length},
                "vae": {**vae_record, "scaling_factor": scale, "parameters": _count(vae)},
                "unet": {**unet_record, "parameters": _count(unet)},
                "text_encoder": {"parameters": _count(text_encoder)},
                "seconds": {k: round(v, 1) for k, v in seconds.items()},
                "folder_bytes": None, "environment": env,
            },
            "fidelity": None,
        }
        write_json(work / RECORD_FILE, record)
        record["build"]["folder_bytes"] = _folder_bytes(work)
        write_json(work / RECORD_FILE, record)
        make_readable(work)  # mkdtemp made it 0700 and safetensors writes 0600 files
        _move_into_place(work, out, overwrite)
    finally:
        torch.set_num_threads(threads_before)
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    if fidelity_per_class:
        from synthbridge.embedded.fidelity import FidelityConfig, measure_fidelity

        measure_fidelity(out, FidelityConfig(per_class=fidelity_per_class, seed=cfg.seed), record=True, progress=progress)
        record = read_json(out / RECORD_FILE)
    return record


def _count(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _move_into_place(work: Path, out: Path, overwrite: bool) -> None:
    """Rename `work` onto `out`; an existing `out` (with overwrite) is moved aside first and removed after."""
    _check_out(out, overwrite)  # another process may have written `out` meanwhile
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@torch.no_grad()
def check_generator(folder: str | os.PathLike, seed: int = 0, steps: int = 2) -> np.ndarray:
    """Load `folder` with plain StableDiffusionPipeline.from_pretrained and draw one image (H, W, 3 floats)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    image = pipe(corpus_lib.digit_prompt(7), num_inference_steps=steps, height=size, width=size, output_type="np",
                 generator=torch.Generator().manual_seed(seed)).images[0]
    if image.shape != (size, size, 3) or not np.isfinite(image).all():
        raise RuntimeError(f"the built generator drew an image of shape {image.shape} (finite: {np.isfinite(image).all()})")
    return image
