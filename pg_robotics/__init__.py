"""pg_robotics: from simulation to a real robot. Importing this package does not import torch."""

__version__ = "0.1.0"
