"""Procedural terrain for legged tasks: a grid of square tiles, rows = difficulty levels (0 at the first row, 1 at the
last), columns = terrain types (`types.py`), inside a flat border. `generate(cfg)` returns the grid's exact height map
(vertices every `resolution` m), each tile's spawn origin (its centre, on the surface) and what the scene builds:
a heightfield per tile plus boxes for the types built from boxes (stair edges stay vertical) and convex meshes for
the slopes. The same config and seed give the same terrain.

World frame: the grid's corner (with its border) is at the origin; x runs along the levels, y along the types. The
terrain is shared by all worlds: it lives once in the model, and per-world copies of the model (randomization) are
limited so as not to copy it thousands of times (`SimCfg.model_copies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .types import TYPES, Part, Tile


@dataclass
class TerrainCfg:
    types: list[str] = field(default_factory=lambda: ["flat", "rough", "slope_up", "slope_down", "stairs_up",
                                                      "stairs_down", "obstacles", "waves"])
    levels: int = 10  # rows: difficulty level / (levels - 1)
    difficulties: list[float] = field(default_factory=list)  # each row's difficulty instead (then levels = their count)
    tile_size: float = 8.0  # m
    border: float = 3.0  # m of flat ground around the grid
    resolution: float = 0.1  # m between height-map vertices (and heightfield samples)
    platform: float = 2.0  # m, the flat square at each tile's centre where worlds spawn
    seed: int = 0
    # where worlds start: levels drawn in [0, max_init_level] (at most the top; a curriculum moves them), type = world index % types,
    # at the tile's centre +- spawn_offset m in x and y
    max_init_level: int = 4
    spawn_offset: float = 0.5
    # parameters at difficulty 0 and 1
    rough_amplitude: tuple[float, float] = (0.01, 0.09)  # m: noise in +-amplitude
    rough_spacing: float = 0.2  # m between noise samples
    slope_angle: tuple[float, float] = (0.0, 25.0)  # degrees
    step_height: tuple[float, float] = (0.05, 0.20)  # m
    step_width: float = 0.30  # m
    obstacle_height: tuple[float, float] = (0.05, 0.20)  # m
    obstacle_size: tuple[float, float] = (0.4, 1.6)  # m, side length range
    obstacle_count: int = 16
    wave_amplitude: tuple[float, float] = (0.02, 0.25)  # m, peak
    wave_length: float = 4.0  # m
    stairs: str = "boxes"  # "boxes" (vertical edges) or "hfield"
    obstacles: str = "boxes"
    # "meshes" (convex solids: one contact per touching geom) or "hfield" (a planar slope of heightfield prisms meets a
    # lying robot with a contact per prism touched: 24 contacts and 2.5x the physics step in a pit, docs/benchmarks.md)
    slopes: str = "meshes"

    def __post_init__(self):
        unknown = [t for t in self.types if t not in TYPES]
        if unknown or not self.types:
            raise ValueError(f"types: unknown terrain type {unknown[0] if unknown else '(none given)'!r} "
                             f"(known: {', '.join(TYPES)})")
        if self.difficulties:
            if not all(0.0 <= d <= 1.0 for d in self.difficulties):
                raise ValueError(f"difficulties: each must be in [0, 1], got {self.difficulties}")
            self.levels = len(self.difficulties)
        if self.levels < 1:
            raise ValueError(f"levels: must be >= 1, got {self.levels}")
        for name in ("tile_size", "resolution"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if abs(self.tile_size / self.resolution - round(self.tile_size / self.resolution)) > 1e-6:
            raise ValueError(f"resolution: {self.resolution} m does not divide tile_size {self.tile_size} m")
        if self.max_init_level < 0:
            raise ValueError(f"max_init_level: must be >= 0, got {self.max_init_level}")
        if not 0 <= self.spawn_offset <= self.platform / 2:
            raise ValueError(f"spawn_offset: must be in [0, platform / 2], got {self.spawn_offset}")
        if not 0 <= self.platform < self.tile_size:
            raise ValueError(f"platform: must be in [0, tile_size), got {self.platform}")
        for name, solid in (("stairs", "boxes"), ("obstacles", "boxes"), ("slopes", "meshes")):
            if getattr(self, name) not in (solid, "hfield"):
                raise ValueError(f"{name}: expected {solid!r} or 'hfield', got {getattr(self, name)!r}")


@dataclass
class Terrain:
    cfg: TerrainCfg
    heights: np.ndarray  # (nx, ny) exact surface height at vertex (i, j) = (i * resolution, j * resolution)
    hfield: np.ndarray  # (levels, types, n, n) what each tile's heightfield holds (below its boxes: their floor)
    boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]]  # world centre, half-sizes
    meshes: list[tuple[tuple[float, float, float], np.ndarray]]  # convex solids: world position, vertices about it
    origins: np.ndarray  # (levels, types, 3) spawn point of each tile: its centre, on the surface

    @property
    def size(self) -> tuple[float, float]:
        """Extent (x, y) in metres."""
        return ((self.heights.shape[0] - 1) * self.cfg.resolution, (self.heights.shape[1] - 1) * self.cfg.resolution)

    def difficulty(self, level: int) -> float:
        return row_difficulty(self.cfg, level)

    def height_at(self, x, y):
        """Bilinear interpolation of the height map at world (x, y) (arrays), clamped to the map."""
        import torch

        xy = torch.stack([torch.as_tensor(np.asarray(x, dtype=float)), torch.as_tensor(np.asarray(y, dtype=float))],
                         dim=-1)
        return self.height_map(xy).numpy()

    @cached_property
    def height_map(self) -> "HeightMap":
        return HeightMap(self.heights, self.cfg.resolution)


class HeightMap:
    """A terrain's exact height map as a batched torch lookup: the height at world (x, y) points (..., 2),
    interpolated bilinearly between the map's vertices and clamped to the map, in the points' dtype. One
    `grid_sample` call on the map stored in float64 (so that indices into a map of thousands of vertices stay
    exact): a height scan's 191,488 points (1024 worlds) take a third of the time of four gathers."""

    def __init__(self, heights: np.ndarray, resolution: float, device="cpu"):
        import torch

        nx, ny = heights.shape
        # grid_sample reads an image (rows = y, columns = x) at points scaled to [-1, 1], the corner vertices at -1, 1
        self.image = torch.tensor(heights.T, dtype=torch.float64, device=device)[None, None]
        self.scale = torch.tensor([2.0 / (resolution * (nx - 1)), 2.0 / (resolution * (ny - 1))],
                                  dtype=torch.float64, device=device)

    def __call__(self, xy):
        import torch
        import torch.nn.functional as F

        points = (xy.to(torch.float64) * self.scale - 1.0).reshape(1, -1, 1, 2)
        out = F.grid_sample(self.image, points, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(xy.shape[:-1]).to(xy.dtype)


def check_tile(terrain: str, difficulty: float, known_also: str = "") -> None:
    """One tile asked for on the command line (`--terrain TYPE --difficulty D`): errors name the flag.
    `known_also` is appended to the list of known types in the message (e.g. ", all")."""
    from ..config import ConfigError

    if terrain not in TYPES:
        raise ConfigError(f"--terrain: unknown terrain type {terrain!r} (known: {', '.join(TYPES)}{known_also})")
    if not 0.0 <= difficulty <= 1.0:
        raise ConfigError(f"--difficulty: must be in [0, 1], got {difficulty}")


def row_difficulty(cfg: TerrainCfg, level: int) -> float:
    return cfg.difficulties[level] if cfg.difficulties else level / max(1, cfg.levels - 1)


def generate(cfg: TerrainCfg) -> Terrain:
    rng = np.random.default_rng(cfg.seed)
    tile = Tile(cfg.tile_size, cfg.resolution, cfg.platform, cfg)
    n, per_tile = tile.n, tile.n - 1  # vertices of a tile; tiles share their edge vertices
    border = int(round(cfg.border / cfg.resolution))
    nx, ny = 2 * border + cfg.levels * per_tile + 1, 2 * border + len(cfg.types) * per_tile + 1
    heights, hfield = np.zeros((nx, ny)), np.zeros((cfg.levels, len(cfg.types), n, n))
    boxes: list = []
    meshes: list = []
    origins = np.zeros((cfg.levels, len(cfg.types), 3))
    for level in range(cfg.levels):
        for col, name in enumerate(cfg.types):
            part: Part = TYPES[name](row_difficulty(cfg, level), tile, rng)
            i, j = border + level * per_tile, border + col * per_tile
            heights[i:i + n, j:j + n] = part.heights
            hfield[level, col] = part.hfield
            cx, cy = (i + per_tile / 2) * cfg.resolution, (j + per_tile / 2) * cfg.resolution
            boxes += [((cx + c[0], cy + c[1], c[2]), half) for c, half in part.boxes]
            meshes += [((cx, cy, 0.0), vertices) for vertices in part.meshes]
            origins[level, col] = (cx, cy, part.heights[per_tile // 2, per_tile // 2])
    return Terrain(cfg, heights, hfield, boxes, meshes, origins)


def draw(terrain: Terrain, path, dpi: int = 100):
    """A height-coloured top view of the grid, each tile labelled with its type and level, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = terrain.cfg
    sx, sy = terrain.size
    fig, ax = plt.subplots(figsize=(max(4.0, sy / 8), max(4.0, sx / 8)))
    image = ax.imshow(terrain.heights, origin="lower", extent=(0, sy, 0, sx), cmap="terrain")
    for level in range(cfg.levels):
        for col, name in enumerate(cfg.types):
            x, y, _ = terrain.origins[level, col]
            ax.text(y, x, f"{name}\n{terrain.difficulty(level):.2f}", ha="center", va="center", fontsize=5)
    ax.set_xlabel("y (m): terrain types")
    ax.set_ylabel("x (m): difficulty levels")
    fig.colorbar(image, ax=ax, label="height (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
