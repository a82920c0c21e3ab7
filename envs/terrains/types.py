"""Terrain types: each builds one square tile at a difficulty d in [0, 1].

A type is ``fn(d, tile, rng) -> Part``: `tile` gives the tile's vertex grid in tile-local coordinates (u, v in
[-size/2, size/2], the tile's centre at 0, where worlds spawn), `rng` a seeded numpy generator. The part holds the
exact surface height at every vertex (`heights`), what the heightfield itself holds there (`hfield`: the same, or the
floor the boxes and meshes stand on), the boxes (centre and half-sizes, tile-local) for types built from boxes and
the convex meshes (vertices, tile-local) for types built from them (the slopes: MuJoCo meets a convex solid with one
contact per touching geom, where a planar stretch of heightfield gives one per prism touched). Every type is
flat on a square `platform` at the centre and meets its neighbours at height 0 on the tile's edge. Heights are in metres; the parameters at d = 0 and d = 1 come from `TerrainCfg`.

Pyramids are named for what a robot leaving the centre does: `slope_up` / `stairs_up` are pits it climbs out of,
`slope_down` / `stairs_down` raised pyramids it walks down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Tile:
    size: float  # m, square
    resolution: float  # m between vertices
    platform: float  # m, side of the flat square at the centre
    cfg: object  # TerrainCfg: each type's parameter ranges

    @property
    def n(self) -> int:
        return int(round(self.size / self.resolution)) + 1

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of every vertex, (n, n), indexed [i along u (x), j along v (y)]."""
        axis = np.linspace(-self.size / 2, self.size / 2, self.n)
        return np.meshgrid(axis, axis, indexing="ij")

    def ring(self) -> np.ndarray:
        """Chebyshev distance of every vertex from the centre, max(|u|, |v|)."""
        u, v = self.grid()
        return np.maximum(np.abs(u), np.abs(v))


@dataclass
class Part:
    heights: np.ndarray  # (n, n) exact surface height
    hfield: np.ndarray  # (n, n) what the heightfield holds
    boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]] = field(default_factory=list)
    meshes: list[np.ndarray] = field(default_factory=list)  # convex solids, each its vertices (k, 3)


def lerp(lo_hi: tuple[float, float], d: float) -> float:
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * d


def _field(heights: np.ndarray) -> Part:
    return Part(heights, heights.copy())


def flat(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    return _field(np.zeros((tile.n, tile.n)))


def rough(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """Uniform noise in +-amplitude(d), drawn every `rough_spacing` m and interpolated bilinearly between."""
    amplitude = lerp(tile.cfg.rough_amplitude, d)
    step = max(1, int(round(tile.cfg.rough_spacing / tile.resolution)))
    coarse = rng.uniform(-amplitude, amplitude, ((tile.n - 1) // step + 2,) * 2)
    i = np.arange(tile.n) / step
    i0 = np.floor(i).astype(int)
    f = i - i0
    along = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]  # interpolate along u
    heights = along[:, i0] * (1 - f)[None, :] + along[:, i0 + 1] * f[None, :]
    ring = tile.ring()
    heights[(ring <= tile.platform / 2) | (ring >= tile.size / 2)] = 0.0  # flat platform; the edge meets the neighbours
    return _field(heights)


def _pyramid_slope(d: float, tile: Tile, sign: float) -> Part:
    rise = np.tan(np.radians(lerp(tile.cfg.slope_angle, d)))
    heights = sign * rise * (tile.size / 2 - np.maximum(tile.ring(), tile.platform / 2))
    half, p = tile.size / 2, tile.platform / 2
    top = rise * (half - p)  # the platform's height above (below) the edge
    if tile.cfg.slopes != "meshes" or top < 1e-9:
        return _field(heights)
    if sign > 0:  # a raised pyramid is one convex frustum on the level floor
        corners = [(x, y) for x in (-1.0, 1.0) for y in (-1.0, 1.0)]
        frustum = [(x * half, y * half, 0.0) for x, y in corners] + [(x * p, y * p, top) for x, y in corners]
        return Part(heights, np.zeros_like(heights), meshes=[np.array(frustum)])
    # a pit is the highest of its four side planes: the union of four wedges, each the solid under one side's plane
    # over the whole strip between the platform and the edge, on the floor (the platform) at -top
    wedges = []
    for axis in (0, 1):
        for out in (-1.0, 1.0):
            points = []
            for across in (-half, half):
                for along, z in ((p, -top), (half, 0.0), (half, -top)):
                    point = [0.0, 0.0, z]
                    point[axis], point[1 - axis] = out * along, across
                    points.append(point)
            wedges.append(np.array(points))
    return Part(heights, np.full_like(heights, -top), meshes=wedges)


def slope_down(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """A raised pyramid, slope(d) degrees, its top the platform."""
    return _pyramid_slope(d, tile, 1.0)


def slope_up(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """An inverted pyramid (a pit), slope(d) degrees, its floor the platform."""
    return _pyramid_slope(d, tile, -1.0)


def _steps(d: float, tile: Tile) -> tuple[float, float, int]:
    """(step height, step width, number of steps from the edge to the platform)."""
    height, width = lerp(tile.cfg.step_height, d), tile.cfg.step_width
    return height, width, int((tile.size / 2 - tile.platform / 2) // width)


def _stair_heights(d: float, tile: Tile, sign: float) -> np.ndarray:
    height, width, count = _steps(d, tile)
    # step k (k = 1 at the edge) covers distances from the centre in [size/2 - k w, size/2 - (k - 1) w)
    # step k from the edge; a vertex on the edge between two steps belongs to the higher one, as the boxes' closed
    # faces do (inward for a raised pyramid, outward for a pit)
    t = (tile.size / 2 - tile.ring()) / width
    k = np.clip(np.floor(t + 1e-9) + 1 if sign > 0 else np.ceil(t - 1e-9), 1, count)
    # the outermost vertex row lies on the tile's edge, which the neighbours share at height 0
    return np.where(tile.ring() >= tile.size / 2, 0.0, sign * k * height)


def stairs_down(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """Raised pyramid stairs: `count` steps of step_height(d) x step_width up from the edge to the platform."""
    heights = _stair_heights(d, tile, 1.0)
    if tile.cfg.stairs != "boxes":
        return _field(heights)
    height, width, count = _steps(d, tile)
    half = tile.size / 2
    boxes = []
    for k in range(1, count + 1):  # stacked squares, each one step higher and one width smaller
        top = k * height
        boxes.append(((0.0, 0.0, top / 2), (half - (k - 1) * width, half - (k - 1) * width, top / 2)))
    return Part(heights, np.zeros_like(heights), boxes)


def stairs_up(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """Pyramid stairs down into a pit (climbed on the way out): `count` steps of step_height(d) x step_width."""
    heights = _stair_heights(d, tile, -1.0)
    if tile.cfg.stairs != "boxes":
        return _field(heights)
    height, width, count = _steps(d, tile)
    half, floor = tile.size / 2, -count * height
    boxes = []
    for k in range(1, count):  # square frames of four boxes; the innermost step is the pit's floor itself
        top, outer, inner = -k * height, half - (k - 1) * width, half - k * width
        z, hz = (top + floor) / 2, (top - floor) / 2
        mid, hw = (outer + inner) / 2, (outer - inner) / 2
        boxes += [((mid, 0.0, z), (hw, outer, hz)), ((-mid, 0.0, z), (hw, outer, hz)),
                  ((0.0, mid, z), (inner, hw, hz)), ((0.0, -mid, z), (inner, hw, hz))]
    return Part(heights, np.full_like(heights, floor), boxes)


def obstacles(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """Random rectangular blocks, obstacle_height(d) high (each 50-100% of it), off the platform."""
    top = lerp(tile.cfg.obstacle_height, d)
    u, v = tile.grid()
    heights = np.zeros_like(u)
    boxes = []
    lo, hi = tile.cfg.obstacle_size
    while len(boxes) < tile.cfg.obstacle_count:
        sx, sy = rng.uniform(lo, hi, 2) / 2
        cx, cy = rng.uniform(-tile.size / 2 + sx, tile.size / 2 - sx), rng.uniform(-tile.size / 2 + sy,
                                                                                  tile.size / 2 - sy)
        if abs(cx) - sx < tile.platform / 2 and abs(cy) - sy < tile.platform / 2:
            continue  # it would cover the platform
        h = rng.uniform(0.5, 1.0) * top
        inside = (np.abs(u - cx) <= sx) & (np.abs(v - cy) <= sy)
        heights[inside] = np.maximum(heights[inside], h)
        boxes.append(((cx, cy, h / 2), (sx, sy, h / 2)))
    if tile.cfg.obstacles != "boxes":
        return _field(heights)
    return Part(heights, np.zeros_like(heights), boxes)


def waves(d: float, tile: Tile, rng: np.random.Generator) -> Part:
    """Egg-crate waves, amplitude(d) sin(2 pi u / L) sin(2 pi v / L) with L = `wave_length` m (a divisor of the
    tile size: zero at the centre and on the edges)."""
    amplitude, length = lerp(tile.cfg.wave_amplitude, d), tile.cfg.wave_length
    u, v = tile.grid()
    return _field(amplitude * np.sin(2 * np.pi * u / length) * np.sin(2 * np.pi * v / length))


TYPES: dict[str, Callable[[float, Tile, np.random.Generator], Part]] = {
    f.__name__: f for f in (flat, rough, slope_up, slope_down, stairs_up, stairs_down, obstacles, waves)}
