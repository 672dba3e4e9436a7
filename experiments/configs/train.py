r"""Training config: ResNet18 from scratch on the built-in synthetic shapes dataset.

  python -m experiments.train --config=experiments/configs/train.py --workdir=workdir/train

Sized for a 2-core CPU: 7 epochs of 2000 80x80 images, 875 AdamW steps. Measured
on a shared 2-core VM (the run got about one core): 4.6 min wall, dataset
generation and compilation included, 88.6 % test accuracy. Overrides, e.g.
fine-tune torchvision's VGG11 (its last two convs and the new head only):

  python -m experiments.train --config=experiments/configs/train.py \
    --workdir=workdir/vgg11 --config.model=vgg11 --config.mode=finetune \
    --config.pretrained=torchvision --config.trainable_layers=features.16,features.18,head

Restarting a command with the same --workdir resumes the run.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """The default training config (fields validated by salijax.train.validate_config)."""
  config = ml_collections.ConfigDict()
  # Model.
  config.model = "resnet18"  # salijax.models.ARCHITECTURES
  config.head = "linear"  # "linear" | "mlp"
  # VGG only: the width of classifier.0 and classifier.3; 0 = torchvision's 4096.
  config.classifier_width = 0
  # VGG only: the dropout rate after classifier.1 and classifier.4 (training only);
  # -1 = torchvision's 0.5.
  config.classifier_dropout = -1.0
  # "scratch" | "feature_extraction" (head only, frozen BatchNorm statistics) |
  # "finetune" (all layers, or those listed in trainable_layers).
  config.mode = "scratch"
  config.pretrained = "none"  # "none" | "torchvision" | path to a torchvision .pth
  config.trainable_layers = ""  # finetune only: torchvision prefixes ("layer4,head"); "" = all
  # Learning-rate factors per torchvision prefix ("classifier.0=0.03,head=0.5"); "" = none.
  config.lr_scales = ""
  # Data.
  config.dataset = "synthetic"
  config.data_dir = ""  # "" = the salijax.data default
  # 80 px: XLA:CPU trains ResNet18 about 4x slower at 40-64 px than at 72-80 px.
  config.synthetic = ml_collections.ConfigDict(
      {"image_size": 80, "num_train": 2000, "num_test": 500, "seed": 0, "num_classes": 10})
  config.train_split = "train"
  config.eval_split = "test"  # also selects the "best" checkpoint
  config.image_size = 80
  # Mild crops: a tight random crop can cut the class object out of the image.
  config.crop_scale = (0.8, 1.0)  # random-resized-crop area range (training)
  config.crop_fraction = 1.0  # evaluation sees the whole image (the object may be anywhere)
  config.batch_size = 16
  config.eval_batch_size = 100
  # Optimisation.
  config.num_epochs = 7
  config.optimizer = "adamw"  # "sgd" | "adamw"
  config.learning_rate = 1e-3  # peak, reached after the warm-up
  config.momentum = 0.9  # SGD only
  config.nesterov = True  # SGD only
  config.weight_decay = 0.05  # kernels only (not BatchNorm, not biases); decoupled for AdamW
  config.warmup_epochs = 0.25
  config.lr_floor = 0.0  # final learning rate as a fraction of the peak, in [0, 1)
  config.label_smoothing = 0.0
  config.seed = 0
  # Run control (may change when resuming).
  config.log_every_steps = 10
  config.checkpoint_every_steps = 100
  config.eval_every_epochs = 1
  config.progress_bar = True  # a progress line per epoch on stderr (salijax.progress)
  return config
