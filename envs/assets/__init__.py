"""Robot models (MJCF) shipped with pg_robotics."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError

ASSETS = Path(__file__).resolve().parent


def resolve(name: str) -> Path:
    """A model file: a name in this folder (``go1.xml``) or a path."""
    path = Path(name)
    path = path if path.is_absolute() or path.exists() else ASSETS / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in ASSETS.glob("*.xml")))
        raise ConfigError(f"task.robot.mjcf: no model {name!r} (shipped: {available})")
    return path.resolve()
