"""Writes the tiny checkpoints that pth_reader_test.py reads without torch.

Run by hand, with torch installed, from the repository root:

  python tests/porting/testdata/make_fixtures.py

Writes, next to this script:
  tiny_state_dict.pth         torch.save (zip format)
  tiny_state_dict_legacy.pth  torch.save(..., _use_new_zipfile_serialization=False)
  tiny_state_dict_expected.npz  the same tensors as torch converts them to numpy
    (bfloat16 as its uint16 bit pattern), and `_dtypes`: [name, torch dtype] rows
    in state-dict order.
"""

import pathlib

import numpy as np
import torch


def tiny_state_dict() -> dict[str, torch.Tensor]:
  """A few small tensors of every dtype the reader maps, some of them views."""
  generator = torch.Generator().manual_seed(0)
  base = torch.randn(3, 4, generator=generator)
  return {
    "conv.weight": torch.randn(2, 3, 3, 3, generator=generator),
    "bn.running_var": torch.rand(3, generator=generator, dtype=torch.float64),
    "bn.num_batches_tracked": torch.tensor(7),
    "half": torch.randn(2, 3, generator=generator).half(),
    "bfloat16": torch.randn(4, generator=generator).bfloat16(),
    "int32": torch.arange(-2, 3, dtype=torch.int32),
    "int16": torch.tensor([[-300, 2], [3, 4000]], dtype=torch.int16),
    "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "uint8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
    "uint16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
    "bool": torch.tensor([True, False, True, True, False]),
    "transposed": base.t(),  # Non-contiguous: strides (1, 4).
    "window": base[1:, 1:3],  # Shares base's storage at offset 5.
    "empty": torch.zeros(0, 3),
  }


def main() -> None:
  here = pathlib.Path(__file__).parent
  state_dict = tiny_state_dict()
  torch.save(state_dict, here / "tiny_state_dict.pth")
  torch.save(
    state_dict,
    here / "tiny_state_dict_legacy.pth",
    _use_new_zipfile_serialization=False,
  )
  expected = {
    name: (
      t.view(torch.int16).numpy().view(np.uint16)
      if t.dtype == torch.bfloat16
      else t.numpy()
    )
    for name, t in state_dict.items()
  }
  dtypes = np.array([[name, str(t.dtype)] for name, t in state_dict.items()])
  np.savez_compressed(here / "tiny_state_dict_expected.npz", _dtypes=dtypes, **expected)


if __name__ == "__main__":
  main()
