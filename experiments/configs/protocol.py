r"""The "false sense of explainability" protocol (ACML 2024) on the built-in synthetic shapes.

Every method explains three classes of each image (label modes): the ground
truth, the predicted and the least likely class (a method whose maps barely
change between the predicted and the least likely class does not explain the
decision). It also explains perturbed copies of the images, for the class
explained on the clean image, and every metric scores those maps on the
perturbed images: rotations by 45, 135, 225 and 315 degrees, a shrink to 0.75
in a black frame (resize0.75), the central 80 % crop (crop0.8), and FGSM
adversarial images at eps = 0.03 (pixel units). report/summary.md shows, per
model and label mode, the map robustness (Spearman and SSIM of the map of the
perturbed image against the perturbed map, on the pixels inside the image),
the change of every metric and how often the prediction flips;
report/diagnostics.json lists each image's most and least likely classes.

  python -m experiments.benchmark --config=experiments/configs/protocol.py \
    --workdir=workdir/protocol

It trains the default benchmark's ResNet18 (experiments/configs/benchmark.py;
its VGG11-BN would about triple the time: add it with
--config.models=resnet18,vgg11_bn) and explains 8 images with small RISE and
LIME budgets and no SIDU (512 channels, 513 forwards an image, times 24 label
modes and perturbations): once the model is trained, about 3 minutes on a
2-core CPU (measured: explain 98 s, evaluate 67 s, the other stages 16 s).
Add SIDU with --config.methods=gradcam,rise,sidu,lime,fake_cam,random.

The ImageNet version (the study's settings: torchvision's ImageNet ResNet18
and VGG11 retrained on imagenette, RISE 500 masks with 7 x 7 cells and
p = 0.1, LIME 50 segments and 1000 samples, insertion and deletion with 1792
pixels a step and a 5 x 5, sigma 5 insertion blur, docs/metrics.md#insertion_deletion) is
experiments/configs/protocol_imagenette.py:

  python -m experiments.benchmark --config=experiments/configs/protocol_imagenette.py \
    --workdir=workdir/protocol_imagenette
"""

import ml_collections

from experiments.configs import benchmark

LABEL_MODES = "ground_truth,predicted,least_likely"
PERTURBATIONS = "rotate45,rotate135,rotate225,rotate315,resize0.75,crop0.8,fgsm0.03"


def get_config() -> ml_collections.ConfigDict:
  """The protocol on the synthetic benchmark (fields as in experiments/configs/benchmark.py)."""
  config = benchmark.get_config()
  config.models = "resnet18"  # --config.models=resnet18,vgg11_bn: about 3 times longer
  config.label_modes = LABEL_MODES
  config.perturbations = PERTURBATIONS
  config.num_images = 8
  config.batch_size = 8
  config.methods = "gradcam,rise,lime,fake_cam,random"
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 128, "cell": 7, "p": 0.5, "chunk": 32},
      "lime": {"num_samples": 64, "num_segments": 25, "chunk": 32},
  })
  config.insertion_deletion.step_pixels = 432  # 12 steps at 72 x 72
  config.sanity.methods = "gradcam,random"
  config.overlay_images = 4
  return config
