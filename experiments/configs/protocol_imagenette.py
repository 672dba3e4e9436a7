r"""The ACML 2024 protocol on imagenette: ImageNet-weight ResNet18 and VGG11, the study's settings.

experiments/configs/benchmark_imagenette.py (torchvision's ImageNet ResNet18
and VGG11 retrained on imagenette by feature extraction and fine-tuning; RISE
500 masks, 7 x 7 cells, p = 0.1; LIME 50 SLIC segments, 1000 samples) with the
protocol of experiments/configs/protocol.py: the ground-truth, predicted and
least likely classes, the rotations by 45, 135, 225 and 315 degrees,
resize0.75, crop0.8 and FGSM at eps = 0.03; and the study's insertion and
deletion: 1792 pixels a step (28 steps at 224 x 224), insertion from a 5 x 5,
sigma 5 blur, deletion to black (docs/metrics.md#insertion_deletion, seed parity). It needs the
internet once, for the weights and the dataset (see benchmark_imagenette.py):

  pip install -e ".[tf]"
  python -m tensorflow_datasets.scripts.download_and_prepare \
    --datasets=imagenette --file_format=array_record
  python -m experiments.benchmark --config=experiments/configs/protocol_imagenette.py \
    --workdir=workdir/protocol_imagenette

Every image is explained 24 times per method and run (3 label modes x 8
image versions): on a GPU, 500 images take hours; the whole validation split
(--config.num_images=0) a day or more.
"""

import ml_collections

from experiments.configs import benchmark_imagenette, protocol


def get_config() -> ml_collections.ConfigDict:
  """The study's protocol config (fields as in experiments/configs/benchmark.py)."""
  config = benchmark_imagenette.get_config()
  config.label_modes = protocol.LABEL_MODES
  config.perturbations = protocol.PERTURBATIONS
  config.num_images = 500
  config.insertion_deletion.step_pixels = 1792
  config.insertion_deletion.blur_size = 5
  config.insertion_deletion.blur_sigma = 5.0
  return config
