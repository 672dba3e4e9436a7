"""One small CNN twice, in torch and as a salijax Classifier with the same weights.

The model-based metrics are compared with Quantus (a torch library) on this
pair: the same function of the same [0, 1] pixels on both sides (torch takes
NCHW, salijax NHWC). Layers: 3x3 conv (3 -> 8, padding 1), ReLU, 3x3 conv
(8 -> 12, stride 2, padding 1), ReLU (the explained layer: `features`), global
average pool, dense (12 -> `num_classes`). Small enough that Quantus's
image-by-image loops over it take seconds, deep enough that its scores change
with every pixel. JAX runs at precision "highest", so on GPUs and TPUs too
both sides compute in float32.
"""

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier

HIGHEST = jax.lax.Precision.HIGHEST


def weights(seed: int = 0, num_classes: int = 5) -> dict[str, np.ndarray]:
  """Random float32 weights in torch's layouts (OIHW kernels, [out, in] dense)."""
  rng = np.random.default_rng(seed)
  return {
      "conv1.weight": rng.normal(0, 0.6, (8, 3, 3, 3)), "conv1.bias": rng.normal(0, 0.1, 8),
      "conv2.weight": rng.normal(0, 0.25, (12, 8, 3, 3)), "conv2.bias": rng.normal(0, 0.1, 12),
      "fc.weight": rng.normal(0, 1.0, (num_classes, 12)),
      "fc.bias": rng.normal(0, 0.1, num_classes),
  }


def classifier(params: dict[str, np.ndarray]) -> Classifier:
  """The salijax side: NHWC pixels in [0, 1] -> logits, features after conv2's ReLU."""
  variables = {
      "conv1": jnp.asarray(params["conv1.weight"].transpose(2, 3, 1, 0), jnp.float32),
      "bias1": jnp.asarray(params["conv1.bias"], jnp.float32),
      "conv2": jnp.asarray(params["conv2.weight"].transpose(2, 3, 1, 0), jnp.float32),
      "bias2": jnp.asarray(params["conv2.bias"], jnp.float32),
      "fc": jnp.asarray(params["fc.weight"].T, jnp.float32),
      "fc_bias": jnp.asarray(params["fc.bias"], jnp.float32),
  }

  def conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST)

  def features(v, images):
    x = jax.nn.relu(conv(images, v["conv1"], 1) + v["bias1"])
    return jax.nn.relu(conv(x, v["conv2"], 2) + v["bias2"])

  def head(v, feats, images):
    del images  # sequential model
    return jnp.matmul(feats.mean(axis=(1, 2)), v["fc"], precision=HIGHEST) + v["fc_bias"]

  def apply(v, images):
    return head(v, features(v, images), images)

  return Classifier(variables=variables, apply=apply, features=features, head=head)


def torch_model(torch, params: dict[str, np.ndarray]):
  """The torch side: NCHW pixels in [0, 1] -> logits, in eval mode, float32."""
  nn = torch.nn

  class TwinCNN(nn.Module):

    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
      self.relu1 = nn.ReLU()
      self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
      self.relu2 = nn.ReLU()
      self.pool = nn.AdaptiveAvgPool2d(1)
      self.flatten = nn.Flatten()
      self.fc = nn.Linear(12, params["fc.weight"].shape[0])

    def forward(self, x):
      x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
      return self.fc(self.flatten(self.pool(x)))

  model = TwinCNN()
  model.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32))
                         for k, v in params.items()})
  return model.eval()
