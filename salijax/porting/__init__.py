"""Torch-free reading of PyTorch checkpoints and porting of torchvision weights."""

from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_checkpoints import eval_preprocessing, load_weights, pretrained
from salijax.porting.torchvision_to_flax import torchvision_to_flax

__all__ = ["eval_preprocessing", "load_weights", "pretrained", "read_pth", "torchvision_to_flax"]
