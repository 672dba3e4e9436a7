"""The mask search protocol (experiments/configs/protocol_mask_search.py) small enough for
tests; also a config file for the binary.

  python -m experiments.benchmark --config=tests/pipeline/tiny_mask_search.py --workdir=W
"""

import ml_collections

from experiments.configs import protocol_mask_search

NUM_STEPS = 12


def get_config() -> ml_collections.ConfigDict:
  """32 px, 32 training images, one epoch of ResNet18, 3 images in batches of 2, the mask
  search (12 steps), Grad-CAM and the random control, two label modes and one perturbation,
  no sanity check."""
  config = protocol_mask_search.get_config()
  config.synthetic.update({"image_size": 32, "num_train": 32, "num_test": 16, "num_classes": 4})
  config.image_size = 32
  config.train.num_epochs = 1
  config.train.batch_size = 16
  config.train.eval_batch_size = 16
  config.num_images = 3
  config.batch_size = 2  # two batches, the second one padded
  config.label_modes = "ground_truth,predicted"
  config.perturbations = "rotate45"
  config.diagnostics_top_k = 2
  config.methods = "mask_search,gradcam,random"
  config.controls = "random"
  config.method_options.mask_search.num_steps = NUM_STEPS
  config.insertion_deletion.step_pixels = 256
  config.insertion_deletion.chunk = 16
  config.metrics = ""
  config.sanity.methods = ""
  config.overlay_images = 2
  return config
