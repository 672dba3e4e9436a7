"""The protocol config with the mask search (experiments/configs/protocol_mask_search.py, the
protocol of experiments/configs/protocol.py plus mask_search) small enough for tests; also a
config file for the binary.

  python -m experiments.benchmark --config=tests/pipeline/tiny_protocol.py --workdir=W
"""

import ml_collections

from experiments.configs import protocol_mask_search

MASK_SEARCH_STEPS = 12


def get_config() -> ml_collections.ConfigDict:
  """32 px, 32 training images, one epoch of ResNet18, 3 images in batches of 2, RISE, the mask
  search (12 steps, the paper's other settings) and the random control, three label modes and
  three perturbations, no sanity check."""
  config = protocol_mask_search.get_config()
  config.synthetic.update({"image_size": 32, "num_train": 32, "num_test": 16, "num_classes": 4})
  config.image_size = 32
  config.models = "resnet18"
  config.train.num_epochs = 1
  config.train.batch_size = 16
  config.train.eval_batch_size = 16
  config.run_overrides = ml_collections.ConfigDict()
  config.num_images = 3
  config.batch_size = 2  # two batches, the second one padded
  config.perturbations = "rotate45,resize0.75,fgsm0.1"
  config.diagnostics_top_k = 2  # of 4 classes
  config.methods = "rise,mask_search,random"
  config.controls = "random"
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 8, "chunk": 8},
      "mask_search": {**protocol_mask_search.PAPER_SETTINGS, "num_steps": MASK_SEARCH_STEPS}})
  config.insertion_deletion.step_pixels = 256
  config.insertion_deletion.chunk = 16
  config.sanity.methods = ""  # tests/pipeline/benchmark_test.py covers the sanity stage
  config.overlay_images = 2
  return config
