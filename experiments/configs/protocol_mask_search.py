r"""The synthetic protocol (experiments/configs/protocol.py) with the mask search.

Thakur & Fischmeister's mask search (docs/methods.md#mask_search) with the
paper's settings, an 8 x 8 grid, 30 % of the cells on at first, N = 5000
steps, scaling rate 0.02 and threshold 0.96, explains the same 8 images,
classes and perturbations as the protocol's methods (Grad-CAM, RISE, LIME and
the controls), and every metric scores its maps. report/resnet18_scratch_mask_search.png draws its
objective per step (the target probability of the masked image, each image
and the mean) beside every method's cost per image.

  python -m experiments.benchmark --config=experiments/configs/protocol_mask_search.py \
    --workdir=workdir/protocol_mask_search

The search is sequential: 5000 forwards of the batch per map, for each of the
3 classes and 8 image versions, 120 000 forwards of 8 images in all. One step
of ResNet18 on 8 images at 72 px took 0.1 s on a busy 2-core CPU: hours
there, much less on a GPU. Fewer steps for a
first look (the other options keep the paper's settings):

  python -m experiments.benchmark --config=experiments/configs/protocol_mask_search.py \
    --workdir=workdir/protocol_mask_search_500 --config.method_options.mask_search.num_steps=500
"""

import ml_collections

from experiments.configs import protocol

# Thakur & Fischmeister (ICPR 2020): the salijax defaults, written out.
PAPER_SETTINGS = {"grid": 8, "initial_fraction": 0.3, "num_steps": 5000, "rate": 0.02,
                  "threshold": 0.96}


def get_config() -> ml_collections.ConfigDict:
  """The protocol config with mask_search among the methods (fields as in
  experiments/configs/benchmark.py)."""
  config = protocol.get_config()
  config.methods = "gradcam,rise,lime,mask_search,fake_cam,random"
  config.method_options.mask_search = ml_collections.ConfigDict(PAPER_SETTINGS)
  return config
