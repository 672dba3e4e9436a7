r"""Benchmark config: ResNet18 and VGG11 from scratch on the built-in synthetic shapes.

  python -m experiments.benchmark --config=experiments/configs/benchmark.py --workdir=workdir/benchmark

Sized for a 2-core CPU (the whole run in about 10 minutes, BENCHMARKS.md): 72 px
images of 5 shape classes (XLA:CPU runs ResNet18 4x slower at 40-64 px), 1500
training images, 24 test images explained by every method and scored by every
metric. The VGG is VGG11 with BatchNorm (vgg11_bn) whose two hidden classifier
layers are 256 wide instead of 4096: torchvision's 130 M classifier parameters
would take most of the budget, and plain VGG11 (no BatchNorm) stayed at chance
accuracy for 2-4 epochs from scratch with AdamW (1e-3 to 1e-4) and SGD (0.02),
and VGG11-BN did with AdamW at 1e-3 and SGD at 0.02.
The transfer configs (benchmark_imagenette.py) use plain VGG11, as torchvision
ships it. Overrides, e.g. more images and RISE masks:

  python -m experiments.benchmark --config=experiments/configs/benchmark.py \
    --workdir=workdir/big --config.num_images=200 --config.method_options.rise.num_masks=2000

Restarting a command with the same --workdir resumes the run; finished stages are
skipped. experiments/configs/benchmark_imagenette.py is the ImageNet-weights study.
"""

import ml_collections

from experiments.configs import train as train_config


def get_config() -> ml_collections.ConfigDict:
  """The default benchmark config (fields checked by salijax.pipeline.validate_config)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Data: shared by training, explanation and evaluation.
  config.dataset = "synthetic"
  config.data_dir = ""  # "" = the salijax.data default
  config.synthetic = ml_collections.ConfigDict(
      {"image_size": 72, "num_train": 1500, "num_test": 300, "seed": 0, "num_classes": 5})
  config.train_split = "train"
  config.eval_split = "test"
  config.image_size = 72
  config.crop_fraction = 1.0  # the whole image (the object may be anywhere)

  # Training: one run per (model, mode); `train` is experiments/configs/train.py's
  # config (its data fields are replaced by the ones above), `run_overrides` are
  # applied on top, first those keyed by model, then by "<model>_<mode>".
  config.models = "resnet18,vgg11_bn"
  config.modes = "scratch"  # comma list of "scratch", "feature_extraction", "finetune"
  # The weights the transfer modes start from: "none" | "torchvision" | a .pth path.
  config.pretrained = "none"
  config.train = train_config.get_config()
  config.train.batch_size = 16
  config.train.num_epochs = 6
  config.train.progress_bar = False  # the benchmark shows its own progress bars
  config.run_overrides = ml_collections.ConfigDict({
      # At 1e-3 AdamW's steps on classifier.0 (25088 inputs) kill its ReLUs, and so does
      # SGD at 0.02 (loss 1.87 -> 15.8 -> ln 5 on one batch); AdamW at 1e-4 fits it.
      "vgg11_bn": {"classifier_width": 256, "num_epochs": 3, "learning_rate": 1e-4},
  })

  # Explanation: every method explains the same `num_images` test images (a
  # seeded sample of the split), `batch_size` at a time.
  config.num_images = 24
  config.batch_size = 8
  config.label_mode = "ground_truth"  # the class explained and scored: "ground_truth" | "predicted"
  config.methods = "gradcam,rise,sidu,lime,fake_cam,random"  # any salijax.methods.names()
  config.controls = "fake_cam,random"  # reported as controls, never "best"
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 256, "cell": 7, "p": 0.5, "chunk": 32},
      "lime": {"num_samples": 200, "num_segments": 25, "chunk": 25},
      "sidu": {"chunk": 64},
  })

  # Evaluation.
  config.insertion_deletion = ml_collections.ConfigDict({
      "step_pixels": 144, "insertion_substrate": "blur", "deletion_substrate": "zero",
      "substrate_space": "pixel", "chunk": 64})
  # 15 px at 224 px (METHODS.md), scaled to 72 px; 15 px would cover most of a 72 px image.
  config.pointing_tolerance = 5.0
  # The parameter-randomisation sanity check (cascading) on the first images.
  config.sanity = ml_collections.ConfigDict({
      "num_images": 4, "methods": "gradcam,random", "mode": "cascading"})

  # Report.
  config.overlay_images = 6
  config.colormap = "jet"
  return config
