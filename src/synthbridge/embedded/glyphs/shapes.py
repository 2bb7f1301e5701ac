"""Procedural shapes ("shape:<name>"): polygons with the longest side 1, centred on 0."""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from synthbridge.errors import UserError

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star",
    "cross", "ring", "arrow", "heart", "crescent", "bolt", "trapezoid",
)


def _regular_polygon(n: int, rotation: float = -math.pi / 2, radius: float = 0.5) -> np.ndarray:
    angles = rotation + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _normalise(polys: list[tuple[np.ndarray, bool]]) -> list[tuple[np.ndarray, bool]]:
    """Centre the shape's bounding box on 0 and scale its longest side to 1."""
    pts = np.concatenate([p for p, _ in polys])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, scale = (lo + hi) / 2, float(max(hi - lo))
    return [((p - centre) / scale, hole) for p, hole in polys]


@cache
def _shape(name: str) -> tuple[tuple[np.ndarray, bool], ...]:
    """Polygons (x right, y down, longest side 1) of a shape; a True flag marks a hole."""
    if name == "circle":
        polys = [(_regular_polygon(72), False)]
    elif name == "square":
        polys = [(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float), False)]
    elif name == "triangle":
        polys = [(np.array([[0, -0.5], [0.577, 0.5], [-0.577, 0.5]]), False)]
    elif name == "diamond":
        polys = [(np.array([[0, -0.5], [0.34, 0], [0, 0.5], [-0.34, 0]]), False)]
    elif name == "pentagon":
        polys = [(_regular_polygon(5), False)]
    elif name == "hexagon":
        polys = [(_regular_polygon(6, 0.0), False)]
    elif name == "star":
        outer, inner = _regular_polygon(5), _regular_polygon(5, -math.pi / 2 + math.pi / 5, 0.2)
        polys = [(np.stack([outer, inner], axis=1).reshape(-1, 2), False)]
    elif name == "cross":
        a = 1 / 6  # arm half-width: a thick cross, unlike the thin "+" of a font
        polys = [(np.array([[-a, -.5], [a, -.5], [a, -a], [.5, -a], [.5, a], [a, a], [a, .5],
                            [-a, .5], [-a, a], [-.5, a], [-.5, -a], [-a, -a]]), False)]
    elif name == "ring":
        polys = [(_regular_polygon(72), False), (_regular_polygon(72, radius=0.3), True)]
    elif name == "arrow":
        polys = [(np.array([[-.5, -.11], [.08, -.11], [.08, -.3], [.5, 0], [.08, .3], [.08, .11],
                            [-.5, .11]]), False)]
    elif name == "heart":
        t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        polys = [(np.stack([x, y], axis=1), False)]
    elif name == "crescent":
        # Outer arc of the unit circle on the left, closed by an arc of a circle centred right.
        outer_t = np.linspace(math.radians(60), math.radians(300), 40)
        outer = 0.5 * np.stack([np.cos(outer_t), np.sin(outer_t)], axis=1)
        c = 0.3
        r2 = math.hypot(0.25 - c, 0.5 * math.sin(math.radians(60)))
        a0 = math.atan2(-outer[-1, 1], outer[-1, 0] - c)
        inner_t = np.linspace(-a0, a0, 30) + math.pi
        inner = np.stack([c + r2 * np.cos(inner_t), -r2 * np.sin(inner_t)], axis=1)
        polys = [(np.concatenate([outer, inner[::-1]]), False)]
    elif name == "bolt":
        polys = [(np.array([[.12, -.5], [-.28, .06], [-.02, .06], [-.14, .5], [.3, -.1], [.03, -.1]]), False)]
    elif name == "trapezoid":
        polys = [(np.array([[-.3, -.3], [.3, -.3], [.5, .3], [-.5, .3]]), False)]
    else:
        raise UserError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    return tuple(_normalise(polys))
