"""The Python reference of PyTorch's "Transfer Learning for Computer Vision" tutorial."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: generated data lives under ROOT / "data"."""
