"""Class model visualisation (Simonyan, Vedaldi and Zisserman, ICLR workshop 2014, section 2).

The class model of class c is the image that the classifier scores highest for
c, held near mid-grey by an L2 penalty:

  I*_c = argmax_{I in [0, 1]^(H x W x 3)}  S_c(I) - l2 ||I - 0.5||_2^2

with S_c the class's logit (not its softmax probability, which can also rise
by lowering the other classes) and ||.||_2^2 the sum of squares over the
H W 3 pixel values. The paper maximises S_c(I) - lambda ||I||_2^2 over the
zero-centred image (the training mean subtracted), starting from the zero
image. In salijax images live in pixel space and normalisation is inside the
classifier, so the centred image is I - 0.5 (mid-grey plays the mean image:
ImageNet's mean pixel is 0.41..0.49) and the image stays in the box [0, 1].

Choices where the paper is silent, documented here:

  optimiser  projected gradient ascent: Adam (`optax.adam`, its default betas)
             on -objective, the learning rate decayed from `learning_rate` to 0
             by a cosine schedule over `steps`, each step followed by clipping
             to [0, 1]. Adam makes `learning_rate` a step in pixel units for any
             model's gradient scale; the decay lets the last iterate settle.
             Projection rather than a sigmoid parametrisation: the clipped
             iterate reaches the box's faces exactly (the optimum of a linear
             score, I* = clip(0.5 + w_c / (2 l2), 0, 1), has pixels on them),
             where a sigmoid only approaches them with vanishing gradients.
  start      mid-grey 0.5 everywhere (the paper's zero image), or `init`
             (e.g. noise, `jax.random.uniform(key, (B, H, W, 3))`, or a photo).
             Grey is a stationary point of a network without biases that
             centres its input at 0.5 (all its ReLUs at 0): give such a network a
             noisy `init`. Trained networks with biases or BatchNorm are not.
  l2         the penalty is a sum over the pixel values, so its balance with
             the logit depends on H W: per pixel, the penalty's gradient is
             2 l2 (I - 0.5) at any size, while a network that averages its
             features over space gives each pixel a share of the logit that
             shrinks as 1 / (H W). Scale l2 by (H0 W0) / (H W) to keep a balance
             found at H0 x W0. The default 0.01 gives readable class models of
             a ResNet18 trained from scratch at 72 px (the benchmark's synthetic
             shapes; 1e-3 lets most pixels reach 0 or 1, 0.1 keeps them near
             grey); at 224 px start from about 1e-3 and look at the images.

Each label is optimised on its own (a `lax.scan` over the steps, vmapped over
`chunk` labels at a time by `lax.map`), so a class model does not depend on
the other labels of the call or on `chunk`. The classifier runs in inference
mode (a Classifier always does).

Cost: per label, `steps` forward and backward passes of the classifier on one
image, plus one forward for the final trace entry. Memory: the backward pass
of `chunk` images at a time.

    result = class_model(clf, jnp.array([3, 7]), image_size=224, l2=1e-3)
    result.images              # f32[2,224,224,3] in [0, 1]
    result.target_logit[:, -1] # f32[2], the logits of the class models
    result.objective           # f32[2,steps+1]: check that it has levelled off
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax import projections

from salijax import validation
from salijax.classifier import Classifier
from salijax.wrapping.conv_transposes import explicit_kernel_transposes

GREY = 0.5  # the centre of pixel space, the zero of the paper's centred image
STEPS, LEARNING_RATE, L2 = 200, 0.05, 0.01  # the defaults (module doc)


class ClassModel(NamedTuple):
  """Class model images and their optimisation traces (see the module doc)."""

  images: jax.Array  # f32[B,H,W,3] in [0, 1], after `steps` updates
  target_logit: jax.Array  # f32[B,steps+1], S_c after t = 0..steps updates
  objective: jax.Array  # f32[B,steps+1], S_c - l2 ||I - 0.5||^2 after t = 0..steps updates


def _objective(clf: Classifier, image: jax.Array, label: jax.Array,
               l2: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(S_c(I) - l2 ||I - 0.5||^2, S_c(I)) of one image f32[H,W,3] and its label i32[]."""
  # Differentiated in a loop: explicit kernel transposes run faster on XLA:CPU.
  logit = explicit_kernel_transposes(clf.apply)(clf.variables, image[None])[0, label]
  return logit - l2 * jnp.sum(jnp.square(image - GREY)), logit


@functools.partial(jax.jit, static_argnames=("steps", "chunk"))
def _class_model(clf: Classifier, labels: jax.Array, init: jax.Array, learning_rate: jax.Array,
                 l2: jax.Array, *, steps: int, chunk: int) -> ClassModel:
  """The jitted optimisation: i32[B], f32[B,H,W,3] -> ClassModel (module doc)."""
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  value_and_grad = jax.value_and_grad(_objective, argnums=1, has_aux=True)

  def one_class(label_and_image: tuple[jax.Array, jax.Array]) -> ClassModel:
    label, image = label_and_image

    def step(carry, _):
      image, state = carry
      (objective, logit), grad = value_and_grad(clf, image, label, l2)
      updates, state = optimizer.update(-grad, state, image)  # ascent: minimise -objective
      image = projections.projection_box(optax.apply_updates(image, updates), 0.0, 1.0)
      return (image, state), (logit, objective)

    (image, _), (logits, objectives) = jax.lax.scan(
        step, (image, optimizer.init(image)), length=steps)
    final_objective, final_logit = _objective(clf, image, label, l2)
    return ClassModel(images=image, target_logit=jnp.append(logits, final_logit),
                      objective=jnp.append(objectives, final_objective))

  return jax.lax.map(one_class, (labels, init), batch_size=chunk)


def _image_shape(image_size: Any, init: Any, batch: int) -> tuple[int, int, int, int]:
  """[B,H,W,3] from image_size (int or (H, W)) and/or init, checked to agree."""
  if init is not None:
    validation.check_images(init, "init")
    if init.shape[0] != batch:
      raise ValueError(f"init must hold one image per label, [{batch}, H, W, 3], got"
                       f" {tuple(init.shape)}")
    if image_size is None:
      return tuple(int(n) for n in init.shape)
  if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
    size = (int(image_size), int(image_size))
  elif (isinstance(image_size, (tuple, list)) and len(image_size) == 2
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                for n in image_size)):
    size = (int(image_size[0]), int(image_size[1]))
  else:
    raise TypeError(f"image_size must be an int or a pair of ints (H, W), got {image_size!r}")
  if min(size) < 1:
    raise ValueError(f"image_size must be positive, got {image_size!r}")
  if init is not None and tuple(init.shape[1:3]) != size:
    raise ValueError(f"init has images of {tuple(init.shape[1:3])} pixels, but image_size is"
                     f" {size}")
  return (batch, *size, 3)


def _check_number(value: Any, name: str, *, positive: bool) -> None:
  """A finite real number, > 0 (positive) or >= 0, else ValueError naming the argument."""
  ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        and np.isfinite(value) and (value > 0 if positive else value >= 0))
  if not ok:
    bound = "> 0" if positive else ">= 0"
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def check_hyperparameters(*, steps: Any = STEPS, learning_rate: Any = LEARNING_RATE,
                          l2: Any = L2) -> None:
  """ValueError unless steps is a positive int, learning_rate > 0 and l2 >= 0, both finite."""
  validation.check_positive_int(steps, "steps")
  _check_number(learning_rate, "learning_rate", positive=True)
  _check_number(l2, "l2", positive=False)


def class_model(clf: Classifier, labels: Any, *, image_size: int | tuple[int, int] | None = None,
                steps: int = STEPS, learning_rate: float = LEARNING_RATE, l2: float = L2,
                init: Any = None, chunk: int = 16) -> ClassModel:
  """The image each class's logit likes best, near mid-grey (see the module doc).

  Args:
    clf: the Classifier (its `apply` only).
    labels: i32[B], the classes to visualise.
    image_size: the side S of S x S images, or (H, W); may be omitted with `init`.
    steps: gradient ascent steps.
    learning_rate: Adam's initial step, in pixel units, decayed to 0 over `steps`.
    l2: weight of the penalty ||I - 0.5||^2 (a sum over the H W 3 pixel values).
    init: f32[B,H,W,3] in [0, 1], the starting images (None: mid-grey 0.5).
    chunk: how many labels are optimised together (memory, not results).

  Returns:
    ClassModel: images f32[B,H,W,3] in [0, 1]; target_logit and objective
    f32[B,steps+1], entry t after t updates (t = 0 the start, t = steps the
    returned images).

  Raises:
    ValueError: labels not [B] or outside [0, K); bad steps, learning_rate, l2,
      chunk, image_size or init (shape, range, finiteness, disagreeing sizes).
    TypeError: clf not a Classifier; non-integer labels; image_size not an int
      or pair; init not a floating array.
  """
  if not isinstance(clf, Classifier):
    raise TypeError(f"clf must be a salijax.Classifier, got {type(clf).__name__}")
  shape = getattr(labels, "shape", None)
  if shape is None or getattr(labels, "dtype", None) is None:
    raise TypeError(f"labels must be an integer array [B], got {type(labels).__name__}")
  if len(shape) != 1 or shape[0] == 0:
    raise ValueError(f"labels must have shape [B] with B >= 1, got {tuple(shape)}")
  check_hyperparameters(steps=steps, learning_rate=learning_rate, l2=l2)
  validation.check_positive_int(chunk, "chunk")
  image_shape = _image_shape(image_size, init, int(shape[0]))
  classes = validation.num_classes(clf, jax.ShapeDtypeStruct(image_shape, jnp.float32))
  validation.check_labels(labels, image_shape[0], classes)
  if init is None:
    init = jnp.full(image_shape, GREY, jnp.float32)
  return _class_model(clf, jnp.asarray(labels, jnp.int32), jnp.asarray(init, jnp.float32),
                      jnp.float32(learning_rate), jnp.float32(l2), steps=steps,
                      chunk=min(chunk, image_shape[0]))
