"""The default benchmark config with tiny data and few methods, its batch sizes kept.

The batch sizes are the default config's (training 16, evaluation 100,
explanation 5): none is a multiple of 3 or 8, so a run on 3 or 8 devices pads
every batch (benchmark_devices_test.py).

  python -m experiments.benchmark --config=tests/pipeline/device_count_benchmark.py --workdir=W
"""

import ml_collections

from experiments.configs import benchmark


def get_config() -> ml_collections.ConfigDict:
  """ResNet18 for 2 steps on 32 synthetic 32 px images; 6 images explained by GradCAM and the
  random control, scored by the default metrics."""
  config = benchmark.get_config()
  config.synthetic.update({"image_size": 32, "num_train": 32, "num_test": 20, "num_classes": 4})
  config.image_size = 32
  config.models = "resnet18"
  config.run_overrides = ml_collections.ConfigDict()
  config.train.num_epochs = 1
  config.num_images = 6
  config.methods = "gradcam,random"
  config.controls = "random"
  config.method_options = ml_collections.ConfigDict()
  config.insertion_deletion.step_pixels = 256
  config.insertion_deletion.chunk = 16
  config.sanity.num_images = 2
  config.sanity.methods = "gradcam"
  config.overlay_images = 2
  return config
