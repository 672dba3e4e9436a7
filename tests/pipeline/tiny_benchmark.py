"""A benchmark config small enough for tests (also a config file for the binary).

  python -m experiments.benchmark --config=tests/pipeline/tiny_benchmark.py --workdir=W
"""

import ml_collections

from experiments.configs import benchmark


def get_config(models: str = "resnet18,vgg11") -> ml_collections.ConfigDict:
  """The default config shrunk: 32 px, 32 training images, one epoch, 6 explained images.

  The batch sizes are the default config's (training 16, evaluation 100,
  explanation 5), none of them a multiple of 3 or 8 devices.
  """
  config = benchmark.get_config()
  config.synthetic.update({"image_size": 32, "num_train": 32, "num_test": 16, "num_classes": 4})
  config.image_size = 32
  config.models = models
  config.train.num_epochs = 1
  config.run_overrides = ml_collections.ConfigDict(
      {"vgg11": {"classifier_width": 16}} if "vgg11" in models else {})
  config.num_images = 6  # two batches of the default 5, the second one padded
  config.methods = "gradcam,rise,lime,fake_cam,random"
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 8, "chunk": 8},
      "lime": {"num_samples": 8, "num_segments": 8, "chunk": 8}})
  # A random metric beside the default ones: the two-process run must draw what one draws.
  config.metrics = config.metrics + ",faithfulness_correlation"
  config.metric_options.faithfulness_correlation = ml_collections.ConfigDict(
      {"num_runs": 8, "subset_size": 32})
  config.insertion_deletion.step_pixels = 256
  config.insertion_deletion.chunk = 16
  config.sanity.num_images = 3
  config.sanity.methods = "lime,random"
  config.overlay_images = 3
  return config
