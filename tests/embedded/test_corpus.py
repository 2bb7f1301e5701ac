"""The generator's training corpus: deterministic per seed, captions that name what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from synthbridge.embedded import corpus as corpus_lib
from synthbridge.errors import UserError


def test_corpus_is_deterministic_per_seed_and_order_free():
    a = corpus_lib.render_corpus(3, 60)
    b = corpus_lib.render_corpus(3, 60, workers=2)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert a.images.shape == (60, 32, 32, 3) and a.images.dtype == np.uint8
    # Item i is a function of (seed, i) alone: rendering it by itself gives the same image and caption.
    item = corpus_lib.corpus_item(3, 41)
    assert np.array_equal(item.image, a.images[41]) and item.caption == a.captions[41]
    c = corpus_lib.render_corpus(4, 60)
    assert c.captions != a.captions and not np.array_equal(c.images, a.images)


def test_captions_name_what_is_drawn():
    data = corpus_lib.render_corpus(0, 400)
    counts = corpus_lib.counts(data)
    assert set(counts["content"]) == {"digit", "letter", "symbol", "shape"}
    assert set(counts["caption_kind"]) == {"empty", "class", "full"}
    assert 0.03 < counts["caption_kind"]["empty"] / len(data) < 0.2  # room for classifier-free guidance
    assert 0.35 < counts["content"]["digit"] / len(data) < 0.65
    for caption, text, kind, image in zip(data.captions, data.texts, data.caption_kinds, data.images):
        assert image.std() > 5, "every image shows something"
        if kind == "empty":
            assert caption == ""
            continue
        assert corpus_lib.class_phrase(text) in caption
        if text in "0123456789":
            assert f"the digit {text}" in caption
            # no other digit is named
            assert not any(f"digit {d}" in caption for d in "0123456789" if d != text)
        if kind == "class":
            assert "," not in caption
    assert corpus_lib.uncovered_words(data.captions) == []
    assert corpus_lib.digit_prompt(7) == "a photo of the digit 7"


def test_unknown_content_is_a_user_error():
    with pytest.raises(UserError, match="unknown corpus content 'digits'"):
        corpus_lib.corpus_item(0, 0, content="digits")
