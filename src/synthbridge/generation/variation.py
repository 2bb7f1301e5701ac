"""GIF's images (Zhang et al., NeurIPS 2023, "Expanding small-scale datasets with guided imagination"): a real
image's CLIP image embedding, perturbed with multiplicative and additive noise, decoded by an image-variation
pipeline (diffusers' `StableUnCLIPImg2ImgPipeline`, any local folder, given the embedding as `image_embeds`).

GIF guides its perturbations to keep the image's class. Here the guide is the set's own real images: a perturbed
embedding is kept when it is nearer (cosine) to the mean embedding of its class's real images than to any other
class's; up to `TRIES` perturbations are drawn from the image's seed and the first kept one is used (none kept: the
one with the largest margin), so a resume, a shard or a regeneration draws the same embedding.
"""

from __future__ import annotations

import torch

from synthbridge.seeding import derive_seed

TRIES = 8  # perturbations drawn per image before the one with the best class margin is taken


class Variations:
    """The CLIP image embeddings of a set's real images (each computed once) and each image's perturbation."""

    def __init__(self, pipe, starts, noise: float):
        self.pipe, self.starts, self.noise = pipe, starts, noise
        self._embedded: dict[int, torch.Tensor] = {}
        self._centroids: torch.Tensor | None = None

    @torch.no_grad()
    def embedding(self, train_index: int) -> torch.Tensor:
        """The real image's CLIP image embedding (the pipeline's own image encoder and processor), [D] float32."""
        if train_index not in self._embedded:
            image, _ = self.starts.train.item(train_index)
            pixels = self.pipe.feature_extractor(images=image.convert("RGB"), return_tensors="pt").pixel_values
            encoder = self.pipe.image_encoder
            pixels = pixels.to(encoder.device, next(encoder.parameters()).dtype)
            self._embedded[train_index] = encoder(pixels).image_embeds[0].float().cpu()
        return self._embedded[train_index]

    def centroids(self) -> torch.Tensor:
        """Per class of the set (in its order), the normalised mean of its real images' normalised embeddings."""
        if self._centroids is None:
            means = [torch.stack([_unit(self.embedding(i)) for i in found]).mean(0) for found in self.starts.members.values()]
            self._centroids = torch.stack([_unit(m) for m in means])
        return self._centroids

    def perturbed(self, class_name: str, source: int, seed: int) -> tuple[torch.Tensor, dict]:
        """The embedding image (class_name) is decoded from: e * (1 + a) + b, a and b Gaussian at `noise` (b scaled
        to the embedding's per-dimension size), the first of TRIES draws its class's real images recognise, and
        its record: the noise, which draw was kept, and whether the class guide accepted it."""
        embedding = self.embedding(source)
        scale = float(embedding.norm()) / embedding.numel() ** 0.5
        own = list(self.starts.members).index(class_name)
        best = None
        for attempt in range(TRIES):
            draw = torch.Generator().manual_seed(derive_seed(seed, "variation", attempt))
            alpha = torch.randn(embedding.shape, generator=draw) * self.noise
            beta = torch.randn(embedding.shape, generator=draw) * self.noise * scale
            candidate = embedding * (1 + alpha) + beta
            similarity = self.centroids() @ _unit(candidate)
            others = torch.cat([similarity[:own], similarity[own + 1:]])
            margin = float(similarity[own] - others.max()) if len(others) else 1.0
            if best is None or margin > best[1]:
                best = (candidate, margin, attempt)
            if margin > 0:
                break
        candidate, margin, attempt = best
        return candidate, {"noise": self.noise, "draw": attempt, "class_kept": margin > 0}


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm().clamp_min(1e-12)


__all__ = ["TRIES", "Variations"]
