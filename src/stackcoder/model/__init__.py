"""The StarCoder2 model: config and sizes, the architecture, Hugging Face checkpoints, generation."""

from stackcoder.model.config import SIZES, Starcoder2Config, get_size
from stackcoder.model.model import Starcoder2

__all__ = ["SIZES", "Starcoder2", "Starcoder2Config", "get_size"]
