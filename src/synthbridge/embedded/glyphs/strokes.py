"""Pen paths: glyph skeletons (Zhang-Suen thinning, tracing, smoothing), shape outlines and
handwritten digit forms, all in cap-height units centred on the ink box (`_Skeleton`).

Drawing them with a pen (`_hand_alpha`) is the compositor's job, in `compose`.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from synthbridge.embedded.glyphs.fonts import _cap_px, _draw_text
from synthbridge.embedded.glyphs.shapes import _shape


def _zhang_suen(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a boolean mask (Zhang & Suen 1984), vectorised with numpy.

    Each sub-iteration looks at the 8 neighbours of all pixels at once through shifted views and
    peels off the deletable boundary pixels together, so a 64x64 glyph thins in well under 1 ms.
    """
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            count = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8) for a, b in zip(ring, ring[1:]))
            if step == 0:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            delete = (c == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if delete.any():
                c[delete] = 0  # c is a view: this edits img in place
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _trace(skel: np.ndarray) -> list[tuple[np.ndarray, bool, bool]]:
    """Walk a skeleton into polylines: (points (n, 2) as x, y; start is free end; end is free end).

    Pixels are graph nodes joined to their 8 neighbours, except a diagonal link when the two
    pixels also meet through a shared 4-neighbour (that link would make tiny triangles at every
    corner). Runs of degree-2 pixels between end/junction pixels become polylines; leftover
    cycles ("O", "0") become closed polylines.
    """
    pixels = {(int(y), int(x)) for y, x in zip(*np.nonzero(skel))}
    adj: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for y, x in sorted(pixels):
        nbs = []
        for dy, dx in _NEIGHBOURS:
            q = (y + dy, x + dx)
            if q not in pixels:
                continue
            if dy and dx and ((y + dy, x) in pixels or (y, x + dx) in pixels):
                continue
            nbs.append(q)
        adj[(y, x)] = nbs
    nodes = [p for p in sorted(adj) if len(adj[p]) != 2]
    node_set = set(nodes)
    seen: set[frozenset] = set()
    lines: list[tuple[list[tuple[int, int]], bool, bool]] = []
    for start in nodes:
        if not adj[start]:
            lines.append(([start], True, True))  # a dot ("i", "j", "!")
            continue
        for nb in adj[start]:
            if frozenset((start, nb)) in seen:
                continue
            seen.add(frozenset((start, nb)))
            path, prev, cur = [start, nb], start, nb
            while cur not in node_set:
                nxt = [q for q in adj[cur] if q != prev]
                if not nxt or frozenset((cur, nxt[0])) in seen:
                    break
                seen.add(frozenset((cur, nxt[0])))
                prev, cur = cur, nxt[0]
                path.append(cur)
            lines.append((path, len(adj[start]) == 1, len(adj[cur]) == 1))
    for start in sorted(adj):  # cycles without any end or junction pixel
        for nb in adj[start]:
            if frozenset((start, nb)) in seen:
                continue
            seen.add(frozenset((start, nb)))
            path, prev, cur = [start, nb], start, nb
            while cur != start:
                nxt = [q for q in adj[cur] if q != prev and frozenset((cur, q)) not in seen]
                if not nxt:
                    break
                seen.add(frozenset((cur, nxt[0])))
                prev, cur = cur, nxt[0]
                path.append(cur)
            lines.append((path, False, False))
    return [(np.array([(x, y) for y, x in p], float), a, b) for p, a, b in lines]


def _smooth_polyline(pts: np.ndarray, step: float, closed: bool) -> np.ndarray:
    """Resample at even arc length and average neighbours: removes the pixel staircase."""
    if len(pts) < 2:
        return pts
    if closed:
        pts = np.concatenate([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(round(arc[-1] / step)) + 1)
    s = np.linspace(0, arc[-1], n)
    res = np.stack([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])], axis=1)
    if len(res) >= 5:
        mode = "wrap" if closed else "nearest"
        sm = ndimage.uniform_filter1d(res, size=5, axis=0, mode=mode)
        if not closed:  # keep the stroke's true ends
            sm[0], sm[-1] = res[0], res[-1]
        res = sm
    return res


class _Skeleton(NamedTuple):
    """Pen strokes of a glyph in cap-height units, centred on the glyph's ink box."""

    strokes: tuple[tuple[np.ndarray, bool, bool], ...]  # (points, start free, end free)
    w: float
    h: float


def _length(pts: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 0.0


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:
    """Even-odd ray casting: is `point` inside the closed polygon `poly`?"""
    x, y = float(point[0]), float(point[1])
    xa, ya = poly[:, 0], poly[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    crosses = (ya > y) != (yb > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = xa + (y - ya) * (xb - xa) / (yb - ya)
    return bool(np.count_nonzero(crosses & (x < x_at)) % 2)


@lru_cache(maxsize=4096)
def _skeleton(font: str, text: str) -> _Skeleton:
    """Skeleton strokes of a font glyph, cached per (font, text).

    The glyph is drawn with a 40 px cap height, smoothed and thresholded (fewer spurs), thinned,
    traced, and short spurs (serifs, corner whiskers: < 18% of the cap height, from a free end
    to a junction) are dropped, because a pen does not draw serifs.
    """
    cap = 40.0
    arr = _draw_text(font, text, max(8, int(round(64 * cap / _cap_px(font)))))
    arr = np.pad(arr, 3).astype(np.float32) / 255.0
    mask = ndimage.gaussian_filter(arr, 1.0) > 0.5
    if not mask.any():
        mask = arr > 0.3
    skel = _zhang_suen(mask)
    # Zhang-Suen erases small square blobs completely (a 2x2 block has no "inside"); put the
    # centre of any vanished component back so dots survive.
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    for index in range(1, count + 1):
        part = labels == index
        if not (skel & part).any():
            ys, xs = np.nonzero(part)
            k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
            skel[ys[k], xs[k]] = True
    lines = _trace(skel)
    for _ in range(2):
        spur = 0.18 * cap
        kept = []
        for pts, free_a, free_b in lines:
            if free_a != free_b and _length(pts) < spur and len(lines) > 1:
                continue
            kept.append((pts, free_a, free_b))
        lines = kept
    # A dot or dash inside a loop is a typographic detail (the dotted zero of DejaVu Sans Mono),
    # not something people write; dots outside loops ("i", "j", "!") stay.
    loops = [pts for pts, a, b in lines if not a and not b and len(pts) > 8]
    lines = [
        (pts, a, b) for pts, a, b in lines
        if not (a and b and _length(pts) < 0.2 * cap
                and any(_inside(pts.mean(axis=0), loop) for loop in loops))
    ]
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    strokes = []
    for pts, free_a, free_b in lines:
        closed = not free_a and not free_b and len(pts) > 3 and np.abs(pts[0] - pts[-1]).max() <= 1
        pts = _smooth_polyline(pts, 1.5, closed)
        strokes.append((((pts - [cx, cy]) / cap).astype(np.float32), free_a, free_b))
    return _Skeleton(tuple(strokes), (xs.max() + 1 - xs.min()) / cap, (ys.max() + 1 - ys.min()) / cap)


def _shape_strokes(name: str) -> _Skeleton:
    """A hand-drawn shape is its outline: each polygon boundary becomes one closed stroke."""
    strokes = []
    for poly, _ in _shape(name):
        closed = np.concatenate([poly, poly[:1]])
        strokes.append((_smooth_polyline(closed * 40.0, 1.5, False) / 40.0, False, False))
    pts = np.concatenate([p for p, _ in _shape(name)])
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return _Skeleton(tuple(strokes), float(w), float(h))


# --- Handwritten digit forms -------------------------------------------------------------------------------------
# Font skeletons give typographic forms only (a closed-top "4", a "1" with a foot and a flag). People also
# write digits in forms no font has: an open-top "4", a bare stroke "1", a "7" with a bar, a "9" with a
# straight stem. These are pen paths in the order a hand draws them, written from a description of each
# form (no images): x right, y down, cap height 1, centred. Each entry is a list of strokes; a stroke is a
# list of pieces, ("arc", cx, cy, rx, ry, start_deg, end_deg) (y down: 270 is the top, 90 the bottom) or
# ("line", (x, y), (x, y), ...).

_DIGIT_FORMS: dict[str, tuple[tuple[tuple, ...], ...]] = {
    "0": (
        ((("arc", 0.0, 0.0, 0.27, 0.5, 260, 260 - 370),),),  # counter-clockwise from the top, a little overlap
        ((("arc", 0.0, 0.0, 0.24, 0.5, 280, 280 + 365),),),
    ),
    "1": (
        ((("line", (0.02, -0.5), (-0.02, 0.5)),),),  # one stroke
        ((("line", (-0.16, -0.33), (0.03, -0.5), (0.0, 0.5)),),),  # with a flag
    ),
    "2": (
        ((("arc", 0.0, -0.24, 0.25, 0.26, 195, 375), ("line", (-0.26, 0.5), (0.28, 0.5))),),
        ((("arc", 0.0, -0.25, 0.23, 0.25, 200, 370),
          ("line", (-0.24, 0.46), (-0.12, 0.42), (0.0, 0.5), (0.27, 0.47))),),
    ),
    "3": (
        ((("arc", 0.0, -0.25, 0.23, 0.25, 205, 450), ("arc", 0.0, 0.24, 0.27, 0.26, 270, 520)),),
        ((("line", (-0.22, -0.5), (0.24, -0.5), (-0.02, -0.05)), ("arc", 0.0, 0.2, 0.26, 0.3, 265, 510)),),
    ),
    "4": (
        ((("line", (-0.06, -0.5), (-0.28, 0.12), (0.3, 0.12)),), (("line", (0.16, -0.3), (0.14, 0.5)),)),  # open
        ((("line", (0.14, 0.5), (0.14, -0.5), (-0.28, 0.14), (0.3, 0.14)),),),  # closed, one stroke
        ((("line", (-0.22, -0.5), (-0.24, 0.05), (0.28, 0.05)),), (("line", (0.16, -0.5), (0.16, 0.5)),)),  # square
    ),
    "5": (
        ((("line", (-0.2, -0.5), (-0.23, -0.04)), ("arc", 0.0, 0.2, 0.26, 0.3, 215, 505)),
         (("line", (-0.2, -0.5), (0.25, -0.5)),)),
        ((("line", (0.25, -0.5), (-0.19, -0.5), (-0.22, -0.06)), ("arc", 0.0, 0.21, 0.25, 0.29, 210, 500)),),
    ),
    "6": (
        ((("line", (0.2, -0.5), (0.02, -0.4), (-0.16, -0.18), (-0.25, 0.08), (-0.25, 0.22)),
          ("arc", 0.0, 0.22, 0.25, 0.27, 180, 180 - 355)),),
        ((("line", (0.12, -0.5), (-0.1, -0.2), (-0.24, 0.18)), ("arc", 0.0, 0.25, 0.24, 0.25, 190, 190 - 350)),),
    ),
    "7": (
        ((("line", (-0.27, -0.5), (0.27, -0.5), (-0.06, 0.5)),),),
        ((("line", (-0.27, -0.42), (-0.27, -0.5), (0.27, -0.5), (-0.02, 0.5)),),),
        ((("line", (-0.27, -0.5), (0.27, -0.5), (-0.06, 0.5)),), (("line", (-0.1, 0.0), (0.22, 0.0)),)),  # barred
    ),
    "8": (
        ((("arc", 0.0, -0.26, 0.21, 0.24, 0, -360),), (("arc", 0.0, 0.24, 0.26, 0.26, 270, 270 + 360),)),
        ((("line", (0.2, -0.38)), ("arc", 0.0, -0.26, 0.21, 0.24, -30, -180), ("line", (0.22, 0.2)),
          ("arc", 0.0, 0.24, 0.25, 0.26, 0, 180), ("line", (0.2, -0.38))),),  # one stroke, crossing in the middle
    ),
    "9": (
        ((("arc", 0.0, -0.22, 0.24, 0.27, 0, -360), ("line", (0.24, -0.22), (0.2, 0.5))),),  # straight stem
        ((("arc", 0.0, -0.22, 0.24, 0.27, 0, -360), ("line", (0.24, -0.2), (0.2, 0.2), (0.05, 0.5))),),  # curved
    ),
}


def _form_piece(piece: tuple) -> np.ndarray:
    if piece[0] == "arc":
        _, cx, cy, rx, ry, start, end = piece
        t = np.radians(np.linspace(start, end, max(8, int(abs(end - start) / 5))))
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)
    return np.asarray(piece[1:], dtype=np.float64)


@cache
def _digit_form(text: str, variant: int) -> _Skeleton:
    """Pen strokes of one handwritten form of a digit, in the units of `_skeleton` (cap height, centred)."""
    cap = 40.0
    raw = [np.concatenate([_form_piece(piece) for piece in stroke]) for stroke in _DIGIT_FORMS[text][variant]]
    ink = np.concatenate(raw)
    lo, hi = ink.min(axis=0), ink.max(axis=0)
    strokes = []
    for pts in raw:
        closed = bool(np.abs(pts[0] - pts[-1]).max() < 0.06)
        pts = _smooth_polyline((pts - (lo + hi) / 2) * cap, 1.5, False) / cap
        strokes.append((pts.astype(np.float32), not closed, not closed))
    return _Skeleton(tuple(strokes), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
