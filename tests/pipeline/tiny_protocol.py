"""The protocol config (experiments/configs/protocol.py) small enough for tests; also a config
file for the binary.

  python -m experiments.benchmark --config=tests/pipeline/tiny_protocol.py --workdir=W
"""

import ml_collections

from experiments.configs import protocol


def get_config() -> ml_collections.ConfigDict:
  """32 px, 32 training images, one epoch of ResNet18, 3 images in batches of 2, RISE and the
  random control, three label modes and three perturbations, no sanity check."""
  config = protocol.get_config()
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
  config.methods = "rise,random"
  config.controls = "random"
  config.method_options = ml_collections.ConfigDict({"rise": {"num_masks": 8, "chunk": 8}})
  config.insertion_deletion.step_pixels = 256
  config.insertion_deletion.chunk = 16
  config.sanity.methods = ""  # tests/pipeline/benchmark_test.py covers the sanity stage
  config.overlay_images = 2
  return config
