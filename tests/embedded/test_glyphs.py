"""Behaviour of the procedural glyph renderer (synthbridge.embedded.glyphs)."""

from __future__ import annotations

import dataclasses
import json
import string

import numpy as np
import pytest

from synthbridge.embedded import glyphs as G
from synthbridge.embedded.glyphs import compose, fonts, strokes
from synthbridge.errors import UserError


def _arr(img) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def test_render_is_deterministic_for_a_seed_and_varies_across_seeds():
    for text, hand in (("7", False), ("g", True), ("shape:star", False), ("§", False)):
        style = G.random_style(np.random.default_rng(3), hand_prob=float(hand))
        a = G.render(text, style, 32, np.random.default_rng(11))
        b = G.render(text, style, 32, np.random.default_rng(11))
        assert a.tobytes() == b.tobytes(), text
    # No rng: still a pure function of (text, style).
    style = G.random_style(np.random.default_rng(4))
    assert G.render("A", style).tobytes() == G.render("A", style).tobytes()
    # Different seeds give different styles and images.
    imgs = {G.render("5", G.random_style(np.random.default_rng(s)), 32, np.random.default_rng(s)).tobytes()
            for s in range(8)}
    assert len(imgs) == 8
    # The same style with a different rng changes the random details (pen jitter, textures).
    hand = G.hand_digit_style(np.random.default_rng(0))
    assert G.render("3", hand, 32, np.random.default_rng(1)).tobytes() != \
        G.render("3", hand, 32, np.random.default_rng(2)).tobytes()


@pytest.mark.parametrize("size", [8, 28, 32, 64])
def test_output_is_rgb_of_requested_size(size):
    rng = np.random.default_rng(size)
    for hand_prob in (0.0, 1.0):
        img = G.render("Q", G.random_style(rng, hand_prob=hand_prob), size, rng)
        assert img.mode == "RGB" and img.size == (size, size)
    assert G.source_image(0, rng, size=size).size == (size, size)


def test_source_classes_have_no_digits_and_all_render():
    assert len(G.SOURCE_CLASSES) >= 70
    assert len(set(G.SOURCE_CLASSES)) == len(G.SOURCE_CLASSES)
    assert not any(ch in string.digits for cls in G.SOURCE_CLASSES for ch in cls)
    assert set(string.ascii_letters) <= set(G.SOURCE_CLASSES)
    assert {f"shape:{s}" for s in G.SHAPES} <= set(G.SOURCE_CLASSES)
    rng = np.random.default_rng(0)
    for i in range(len(G.SOURCE_CLASSES)):
        a = _arr(G.source_image(i, rng))
        assert a.max() - a.min() > 40, G.SOURCE_CLASSES[i]
    with pytest.raises(UserError):
        G.source_image(len(G.SOURCE_CLASSES), rng)


def test_baseline_digits_are_bright_glyphs_on_black():
    rng = np.random.default_rng(1)
    for i in range(30):
        style = G.baseline_digit_style(rng)
        assert not style.hand and style.background == "plain" and style.fg == (255, 255, 255)
        a = _arr(G.render(str(i % 10), style, 28, rng))
        assert _border(a).mean() < 30
        assert a.max() > 200
        assert np.allclose(a[..., 0], a[..., 1]) and np.allclose(a[..., 1], a[..., 2])  # grey


def test_source_images_are_not_white_on_black():
    rng = np.random.default_rng(2)
    dark_plain = 0
    for i in range(50):
        style = G.source_style(rng)
        assert not style.hand
        assert not (style.background == "plain" and max(style.bg) < 60)
        a = _arr(G.render(G.SOURCE_CLASSES[i % len(G.SOURCE_CLASSES)], style, 32, rng))
        border = _border(a)
        if border.mean() < 30 and border.std() < 10:
            dark_plain += 1
    assert dark_plain <= 2
    # And they are colourful: most images have clearly different RGB channels somewhere.
    colourful = sum(
        np.abs(np.diff(_arr(G.source_image(i, rng)), axis=2)).max() > 60 for i in range(20)
    )
    assert colourful >= 15


def test_hand_images_are_strokes_that_differ_from_the_font():
    rng = np.random.default_rng(3)
    for ch in "0123456789Ag&":
        hand = G.hand_digit_style(rng)
        a = _arr(G.render(ch, hand, 32, rng))
        ink = (a[..., 0] > 128).mean()
        assert 0.02 < ink < 0.6, ch  # a pen line, neither empty nor a blob
        font_style = dataclasses.replace(hand, hand=False, font="DejaVuSans.ttf", elastic=0.0)
        b = _arr(G.render(ch, font_style, 32, rng))
        assert np.abs(a - b).mean() > 8, ch
    # Hand-drawn shapes are outlines: less ink than the filled shape.
    hand = G.hand_digit_style(rng)
    filled = dataclasses.replace(hand, hand=False, font="DejaVuSans.ttf", elastic=0.0)
    assert G.glyph_alpha("shape:square", hand, 32, rng).sum() < \
        0.8 * G.glyph_alpha("shape:square", filled, 32, rng).sum()


def test_written_digit_forms_are_centred_pen_paths_used_by_the_hand_style(monkeypatch):
    for digit, forms in strokes._DIGIT_FORMS.items():
        assert len(forms) >= 2, digit  # writers differ: more than one form per digit
        for variant in range(len(forms)):
            skel = strokes._digit_form(digit, variant)
            ink = np.concatenate([pts for pts, _, _ in skel.strokes])
            assert np.allclose((ink.min(axis=0) + ink.max(axis=0)) / 2, 0, atol=0.03), (digit, variant)
            assert 0.95 < skel.h < 1.1 and 0.0 <= skel.w < 0.7, (digit, variant)
    # With every hand digit drawn from a form, the form decides the picture: an open "4" is not a closed one.
    monkeypatch.setattr(compose, "HAND_FORM_PROB", 1.0)  # read by compose._hand_alpha
    style = G.hand_digit_style(np.random.default_rng(0))
    forms = strokes._DIGIT_FORMS["4"]
    drawn = []
    for variant in (0, 1):
        monkeypatch.setitem(strokes._DIGIT_FORMS, "4", (forms[variant],))
        strokes._digit_form.cache_clear()
        drawn.append(_arr(G.render("4", style, 32, np.random.default_rng(1))))
    strokes._digit_form.cache_clear()
    assert np.abs(drawn[0] - drawn[1]).mean() > 8


def test_every_listed_font_draws_every_letter_and_digit():
    fonts = G.list_fonts()
    names = [p.name for p in fonts]
    assert names == sorted(names) and all(p.exists() for p in fonts)
    assert "DejaVuSans.ttf" in names and "STIXGeneral.ttf" in names
    for bad in ("cmex10.ttf", "cmsy10.ttf", "cmmi10.ttf", "LastResortHE-Regular.ttf",
                "DejaVuSansDisplay.ttf", "STIXNonUni.ttf", "STIXSizOneSymReg.ttf"):
        assert bad not in names
    style = G.baseline_digit_style(np.random.default_rng(0))
    for name in names:
        s = dataclasses.replace(style, font=name, rotation=0.0)
        masks = [G.glyph_alpha(ch, s, 32) for ch in string.ascii_letters + string.digits]
        assert all(m.max() > 0.5 for m in masks), name
        assert len({m.round(2).tobytes() for m in masks}) == len(masks), name


def test_font_chooser_only_uses_fonts_that_draw_the_text():
    # TeX fonts map "<" to an inverted exclamation mark: they must not be used for it.
    assert not G.can_draw("cmr10.ttf", "<")
    assert G.can_draw("DejaVuSans.ttf", "<")
    assert G.can_draw("cmr10.ttf", "A")
    assert all(p.name.startswith(("DejaVu", "STIX")) for p in G.fonts_for("×"))
    style = dataclasses.replace(G.baseline_digit_style(np.random.default_rng(0)), font="cmr10.ttf")
    serif = dataclasses.replace(style, font=fonts._resolve_font("<", "cmr10.ttf"))
    assert fonts._font_traits(serif.font).kind == "serif"  # fallback keeps the described look
    assert np.array_equal(G.glyph_alpha("<", style, 32), G.glyph_alpha("<", serif, 32))
    with pytest.raises(UserError):
        G.render("shape:blob", style)


def test_describe_uses_words_and_marks_handwriting():
    rng = np.random.default_rng(5)
    for _ in range(20):
        style = G.random_style(rng, hand_prob=0.5)
        text = G.describe(style)
        assert text == G.describe(style)
        assert ("handwritten" in text) == style.hand
        assert "background" in text and not any(ch.isdigit() for ch in text)
    base = G.describe(G.baseline_digit_style(rng))
    assert "white on a plain black background" in base and "font" in base
    style = dataclasses.replace(G.source_style(rng), fg=(220, 20, 20), bg=(20, 40, 200),
                                background="stripes", outline=True)
    assert "red on a striped blue background" in G.describe(style)
    assert "outlined" in G.describe(style)


def test_glyphs_stay_mostly_inside_the_image():
    rng = np.random.default_rng(6)
    for text in ("W", "g", "@", "shape:arrow", "7"):
        for hand in (False, True):
            style = dataclasses.replace(
                G.baseline_digit_style(rng), size=0.95, rotation=25.0, hand=hand,
                font="" if hand else "DejaVuSerif.ttf", stroke_width=5.0)
            centred = G.glyph_alpha(text, style, 32, np.random.default_rng(0)).sum()
            for dx, dy in ((0.6, 0.6), (-0.6, 0.0), (0.0, -0.6), (-0.6, 0.6)):
                moved = dataclasses.replace(style, dx=dx, dy=dy)
                inside = G.glyph_alpha(text, moved, 32, np.random.default_rng(0)).sum()
                assert inside >= 0.85 * centred, (text, hand, dx, dy)


def test_styles_are_serialisable_and_in_range():
    rng = np.random.default_rng(7)
    for make in (G.baseline_digit_style, G.hand_digit_style, G.source_style, G.random_style):
        for _ in range(10):
            style = make(rng)
            json.dumps(dataclasses.asdict(style))
            assert style.background in G.BACKGROUNDS and style.weight in G.WEIGHTS
            assert 0.4 <= style.size <= 0.95
            assert style.hand == (style.font == "")
            assert 0 <= style.noise <= 0.2


def test_zhang_suen_thins_to_one_pixel_lines():
    mask = np.zeros((30, 40), bool)
    mask[10:18, 5:35] = True  # a thick bar
    mask[5:25, 18:24] = True  # crossed by a thick vertical bar
    skel = strokes._zhang_suen(mask)
    assert skel.any() and (skel <= mask).all()
    blocks = skel[:-1, :-1] & skel[1:, :-1] & skel[:-1, 1:] & skel[1:, 1:]
    assert not blocks.any()  # no 2x2 clumps: one pixel wide
    paths = strokes._skeleton("DejaVuSans.ttf", "i").strokes
    assert len(paths) == 2  # stem and dot survive thinning and spur pruning
