"""Methods: the ways of fitting synthetic images to the real data that a grid compares, as registry entries.

A method says what a synthetic set learns from the real training images before it is drawn:

    plain         nothing: the dataset's prompt templates                                  (the study's baseline)
    dsi           one token for the whole dataset's style (`invert`)                        (the study)
    ti_class      one token per class, in place of the class name (`invert --per-class`)    (DA-Fusion)
    lora          a LoRA adapter of the generator, dataset-wise (`lora`)                    (DataDream, Real-Fake)
    lora_class    one LoRA adapter per class (`lora --per-class`)                            (DataDream, class-wise)
    img2img       each image starts from a noised real image of its class (`--init-images`) (Real Guidance)
    img2img_dsi   the same, with the dataset's style token in the prompt
    dafusion      per-class tokens + image-to-image from the real shots at a strength each image draws from
                  {0.25, 0.5, 0.75, 1.0}; used by replacing real images on the fly (`replace` arms) (DA-Fusion)
    diffaug       per-class tokens + image-to-image from a real image of the class at the grid's strength (Diff-Aug)
    diffmix       per-class tokens + image-to-image from a real image of another class toward the image's class at a
                  strength per image from {0.5, 0.7, 0.9}, labelled softly (1 - s^g, s^g), g the grid's
                  `img2img.label_gamma` (0.5) (Diff-Mix)
    diffii        per-class tokens + two real images of the class inverted to noise (DDIM inversion), spherically
                  interpolated and denoised with the class's prompt (Diff-II)
    diffusemix    each real shot edited by the grid's instruction-editing model (`editor`), half real and half edit,
                  blended with a fractal image; the real image's label (DiffuseMix)
    gif           each real shot's CLIP image embedding perturbed (kept when its class's shots recognise it) and
                  decoded by the grid's image-variation model (`image_variation`) (GIF)

The leakage rule: what a method learns from real images comes from the training images of the cells that use
it -- a few-shot cell's own shots (the subset its seed draws), the whole train split for a full-data cell --
never from the test split. So a learned set is made once per (dataset, shots, seed of the real subset) and
reused by every cell with that subset (`experiments.sets`).
"""

from __future__ import annotations

from dataclasses import dataclass

from synthbridge.registry import Registry


@dataclass(frozen=True)
class Method:
    label: str  # name in the report
    inversion: str | None = None  # "dataset": one style token (DSI); "class": one token per class
    lora: str | None = None  # "dataset": one adapter; "class": one adapter per class
    img2img: bool = False  # start each image from a noised real training image of its class
    strengths: tuple[float, ...] | None = None  # image-to-image at these strengths, one drawn per image (None: the
    # grid's `img2img` strength)
    drawn_by: str | None = None  # the grid key of the generator its sets are drawn by, when not `generator`:
    # "editor" (an instruction-editing model: DiffuseMix) or "image_variation" (an image-variation model: GIF)
    start: str = "real"  # what an image-to-image set starts from (generate's --init-images): "real", its class's
    # real images; "other", another class's, soft-labelled (Diff-Mix); "pairs", two of its class's, inverted (Diff-II)
    suffix: str = ""  # the set folder's suffix (synthetic/<dataset><suffix>...)

    @property
    def learns_from_real(self) -> bool:
        """Whether the set depends on the real training images (and so on a few-shot cell's shots)."""
        return bool(self.inversion or self.lora or self.img2img)


METHODS: Registry[Method] = Registry("method")
for _name, _method in {
    "plain": Method("plain prompts"),
    "dsi": Method("dataset style inversion", inversion="dataset", suffix="-dsi"),
    "ti_class": Method("per-class tokens", inversion="class", suffix="-ticlass"),
    "lora": Method("LoRA", lora="dataset", suffix="-lora"),
    "lora_class": Method("class-wise LoRA", lora="class", suffix="-loraclass"),
    "img2img": Method("image-to-image", img2img=True, suffix="-img2img"),
    "img2img_dsi": Method("image-to-image + DSI", inversion="dataset", img2img=True, suffix="-img2img-dsi"),
    "dafusion": Method("DA-Fusion", inversion="class", img2img=True, strengths=(0.25, 0.5, 0.75, 1.0),
                       suffix="-dafusion"),
    "diffaug": Method("Diff-Aug", inversion="class", img2img=True, suffix="-diffaug"),
    "diffmix": Method("Diff-Mix", inversion="class", img2img=True, strengths=(0.5, 0.7, 0.9), start="other",
                      suffix="-diffmix"),
    "diffii": Method("Diff-II", inversion="class", img2img=True, start="pairs", suffix="-diffii"),
    "diffusemix": Method("DiffuseMix", img2img=True, drawn_by="editor", suffix="-diffusemix"),
    "gif": Method("GIF", img2img=True, drawn_by="image_variation", suffix="-gif"),
}.items():
    METHODS.register(_name)(_method)
