"""The captioned training corpus of the embedded text-to-image generator: procedural, seeded, no real data.

In: a seed and an index (or a count). Out: `CorpusItem`s -- a 32x32 RGB uint8 image drawn by
`synthbridge.embedded.glyphs` and its English caption -- or, for many items at once, a `Corpus` of stacked
arrays. Item `i` of seed `s` is a pure function of `(s, i)`, so the corpus can be rendered in any
order, in parallel, or again later, bit-identically.

The corpus is deliberately much wider than the target (MNIST-like white-on-black handwritten digits),
as Stable Diffusion's data is wider than any one fine-grained dataset:

* content (`CONTENT_MIX`): digits, letters, symbols and shapes;
* style (`STYLE_MIX`): handwriting-like pen strokes and font glyphs, white on plain black, grey,
  and colourful on textured backgrounds;
* captions: "a photo of the digit 7, handwritten, thin pen, white on a plain black background"
  (class phrase + `glyphs.describe(style)`), class-only captions ("a photo of the digit 7"), and
  ~10% empty captions so the model also learns the unconditional score for classifier-free guidance.

Like alt-text on the web, a caption is more likely to omit the style when the style is the usual one
for the content (`CLASS_ONLY_PROB`): an unremarkable handwritten digit is "a photo of the digit 7".
That is what makes the bare prompt "a photo of the digit {d}" (used by `synthbridge generate` for
mnist5k) give plain handwritten digits, while style words still steer the generator anywhere else.
Nothing from the real datasets (mnist5k, digits) is used; every image comes from `glyphs.render`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import regex

from synthbridge.embedded import glyphs
from synthbridge.errors import UserError
from synthbridge.io import progress as progress_bar
from synthbridge.seeding import derive_seed

# --- what the corpus is made of ----------------------------------------------------------------------------------

# Share of each kind of content (sums to 1).
CONTENT_MIX: dict[str, float] = {"digit": 0.50, "letter": 0.28, "symbol": 0.10, "shape": 0.12}

# Share of each style family per kind of content (each row sums to 1):
#   hand_plain: handwriting-like pen, white on plain black, centred (MNIST-like framing)
#   font_plain: a font glyph, white on plain black, centred (the plain "render" baseline's look)
#   grey:       any font or pen style, greys only (white-on-dark or dark-on-light), any background
#   colour:     any font or pen style, any colours and background textures
STYLE_MIX: dict[str, dict[str, float]] = {
    "digit": {"hand_plain": 0.35, "font_plain": 0.15, "grey": 0.15, "colour": 0.35},
    "letter": {"hand_plain": 0.15, "font_plain": 0.10, "grey": 0.20, "colour": 0.55},
    "symbol": {"hand_plain": 0.10, "font_plain": 0.15, "grey": 0.20, "colour": 0.55},
    "shape": {"hand_plain": 0.10, "font_plain": 0.15, "grey": 0.20, "colour": 0.55},
}

_STYLE_MAKERS: dict[str, Callable[[np.random.Generator], glyphs.GlyphStyle]] = {
    "hand_plain": glyphs.hand_digit_style,
    "font_plain": glyphs.baseline_digit_style,
    "grey": lambda rng: glyphs.random_style(rng, hand_prob=0.4, colourful=False),
    "colour": lambda rng: glyphs.random_style(rng, hand_prob=0.4, colourful=True),
}

# Captions. An empty caption teaches the unconditional score (classifier-free guidance needs ~10%).
EMPTY_CAPTION_PROB = 0.10
# Probability that a (non-empty) caption names only the class, per style family: high for the usual
# look of a handwritten digit, low for everything a caption would normally describe.
CLASS_ONLY_PROB: dict[str, float] = {"hand_plain": 0.6, "font_plain": 0.3, "grey": 0.05, "colour": 0.05}
# Caption openings; "a photo of" dominates because it is the prompt `synthbridge generate` uses.
TEMPLATES: dict[str, float] = {"a photo of {}": 0.7, "a picture of {}": 0.1, "an image of {}": 0.1, "{}": 0.1}

# What can be drawn, per kind of content (a text understood by `glyphs.render`).
CLASSES: dict[str, tuple[str, ...]] = {
    "digit": tuple(glyphs.DIGITS),
    "letter": tuple(glyphs.LETTERS),
    "symbol": glyphs.SYMBOLS,
    "shape": tuple(f"shape:{name}" for name in glyphs.SHAPES),
}

IMAGE_SIZE = 32  # the embedded world's image size


@dataclass(frozen=True)
class CorpusItem:
    """One training example of the generator."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    caption: str  # "" for the unconditional share
    text: str  # what is drawn: "7", "g", "§", "shape:star"
    content: str  # "digit" | "letter" | "symbol" | "shape"
    style: str  # style family, a key of STYLE_MIX[content]
    caption_kind: str  # "empty" | "class" | "full"


@dataclass(frozen=True)
class Corpus:
    """Many items as arrays (what the trainer consumes)."""

    images: np.ndarray  # (N, size, size, 3) uint8
    captions: list[str]
    texts: list[str]
    contents: list[str]
    styles: list[str]
    caption_kinds: list[str]

    def __len__(self) -> int:
        return len(self.captions)


def class_phrase(text: str) -> str:
    """The words a caption uses for what is drawn: 'the digit 7', 'the capital letter A', 'the § symbol', 'a star'."""
    if text.startswith("shape:"):
        return f"a {text[6:]}"
    if text in glyphs.DIGITS:
        return f"the digit {text}"
    if text in glyphs.LETTERS:
        # The CLIP tokenizer lower-cases every prompt, so the case has to be said in words.
        return f"the {'capital' if text.isupper() else 'lowercase'} letter {text}"
    # "the # symbol", not "the symbol #": CLIP's pre-tokenizer would glue "#" to a following comma.
    return f"the {text} symbol"


def digit_prompt(digit: int | str) -> str:
    """The class-only prompt of a digit, as `synthbridge generate` writes it for mnist5k."""
    return f"a photo of {class_phrase(str(digit))}"


DIGIT_PROMPT_TEMPLATE = digit_prompt(0).replace("0", "{d}")  # "a photo of the digit {d}", for records


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    keys = list(shares)
    p = np.asarray([shares[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def corpus_item(seed: int, index: int, size: int = IMAGE_SIZE, content: str | None = None) -> CorpusItem:
    """Item `index` of the corpus of `seed` (with `content` given: an item of that kind only)."""
    if content is not None and content not in CONTENT_MIX:
        raise UserError(f"unknown corpus content {content!r}; choose one of {', '.join(CONTENT_MIX)}")
    # One generator per item, from its coordinates: items are independent of order and of each other.
    rng = np.random.default_rng(derive_seed(seed, "corpus", content or "any", index))
    content = content or _pick(rng, CONTENT_MIX)
    options = CLASSES[content]
    text = options[int(rng.integers(len(options)))]
    family = _pick(rng, STYLE_MIX[content])
    style = _STYLE_MAKERS[family](rng)
    image = np.asarray(glyphs.render(text, style, size, rng), dtype=np.uint8)
    if rng.random() < EMPTY_CAPTION_PROB:
        caption, kind = "", "empty"
    else:
        opening = _pick(rng, TEMPLATES).format(class_phrase(text))
        if rng.random() < CLASS_ONLY_PROB[family]:
            caption, kind = opening, "class"
        else:
            caption, kind = f"{opening}, {glyphs.describe(style)}", "full"
    return CorpusItem(image=image, caption=caption, text=text, content=content, style=family, caption_kind=kind)


def iter_corpus(seed: int, start: int, count: int, size: int = IMAGE_SIZE,
                content: str | None = None) -> Iterator[CorpusItem]:
    """Items `start .. start+count-1` of the corpus of `seed`, in order."""
    for index in range(start, start + count):
        yield corpus_item(seed, index, size, content)


def _render_chunk(args: tuple[int, int, int, int, str | None]) -> list[CorpusItem]:
    seed, start, count, size, content = args
    return list(iter_corpus(seed, start, count, size, content))


def render_corpus(seed: int, count: int, size: int = IMAGE_SIZE, *, content: str | None = None, workers: int = 1,
                  progress: bool = False) -> Corpus:
    """Render items 0..count-1 of the corpus of `seed` into arrays (identical for any `workers`)."""
    if count <= 0:
        raise UserError(f"corpus size must be a whole number > 0, got {count}")
    chunk = 500
    jobs = [(seed, start, min(chunk, count - start), size, content) for start in range(0, count, chunk)]
    bar = progress_bar(total=count, desc="render corpus", unit="img", enabled=progress)
    items: list[CorpusItem] = []
    if workers > 1:
        # fork: the children inherit the already-checked font tables instead of redoing the font check.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for part in pool.imap(_render_chunk, jobs):  # imap keeps the order of the chunks
                items.extend(part)
                bar.update(len(part))
    else:
        for job in jobs:
            part = _render_chunk(job)
            items.extend(part)
            bar.update(len(part))
    bar.close()
    return Corpus(images=np.stack([item.image for item in items]), captions=[item.caption for item in items],
                  texts=[item.text for item in items], contents=[item.content for item in items],
                  styles=[item.style for item in items], caption_kinds=[item.caption_kind for item in items])


def composition() -> dict:
    """The corpus recipe, for the build record."""
    return {"content_mix": CONTENT_MIX, "style_mix": STYLE_MIX, "empty_caption_prob": EMPTY_CAPTION_PROB,
            "class_only_prob": CLASS_ONLY_PROB, "templates": TEMPLATES,
            "classes": {k: len(v) for k, v in CLASSES.items()}, "image_size": IMAGE_SIZE,
            "real_data": "none: every image is drawn by synthbridge.embedded.glyphs.render"}


def counts(corpus: Corpus) -> dict:
    """How many items of each content, style family and caption kind a rendered corpus holds."""
    tally = lambda values: {k: int(v) for k, v in zip(*np.unique(np.asarray(values), return_counts=True))}
    return {"items": len(corpus), "content": tally(corpus.contents), "style": tally(corpus.styles),
            "caption_kind": tally(corpus.caption_kinds)}


# --- the caption vocabulary ---------------------------------------------------------------------------------------

# CLIP's pre-tokenizer pattern: words are runs of letters, single digits, or runs of other non-space characters.
_WORD = regex.compile(r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")


def split_words(caption: str) -> list[str]:
    """A caption cut into the pieces CLIP's pre-tokenizer makes (lower-cased, as the tokenizer does)."""
    return _WORD.findall(caption.lower())


@lru_cache(maxsize=1)
def caption_words() -> tuple[str, ...]:
    """Every word a corpus caption can contain, sorted: the tokenizer gives each one a single token.

    Class phrases and openings are enumerated; style words are collected from `glyphs.describe` over a
    fixed sample of every style family (the descriptions use a small closed vocabulary, which 3,000
    styles per family cover many times over).
    """
    phrases = [template.format(class_phrase(text)) for template in TEMPLATES for texts in CLASSES.values()
               for text in texts]
    rng = np.random.default_rng(derive_seed("caption-words"))
    descriptions = [glyphs.describe(make(rng)) for make in _STYLE_MAKERS.values() for _ in range(3000)]
    words = {word for text in phrases + descriptions for word in split_words(text)}
    return tuple(sorted(words))


def uncovered_words(captions: Sequence[str]) -> list[str]:
    """Words of `captions` that `caption_words()` lacks (should be empty)."""
    known = set(caption_words())
    return sorted({word for caption in captions for word in split_words(caption)} - known)
