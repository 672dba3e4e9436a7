"""experiments/configs/imagenet_val.py shrunk for tests (also a config file for the binary).

The caller sets data_dir (an `experiments.imagenet_stand_in` data dir) and pretrained (a
ResNet18 .pth):

  python -m experiments.benchmark --config=tests/pipeline/tiny_imagenet_val.py \
    --config.data_dir=D --config.pretrained=W.pth --workdir=W
"""

import ml_collections

from experiments.configs import imagenet_val


def get_config() -> ml_collections.ConfigDict:
  """ResNet18 only, 16 px, 8 masks and samples, 32 pixels a step, no sanity check."""
  config = imagenet_val.get_config()
  config.models = "resnet18"  # torchvision's VGG11 weights are 0.5 GB even when random
  config.image_size = 16  # SIDU's 512 masked forwards per image cost little at 16 px
  config.batch_size = 4  # a full batch and a padded one
  config.method_options.rise.num_masks = 8
  config.method_options.lime.num_samples = 8
  config.method_options.lime.num_segments = 8
  config.method_options.sidu.chunk = 64
  config.insertion_deletion.step_pixels = 32
  config.insertion_deletion.blur_size = 5
  config.insertion_deletion.chunk = 32
  config.sanity.methods = ""  # tests/pipeline/benchmark_test.py checks the sanity stage
  config.overlay_images = 2
  return config
