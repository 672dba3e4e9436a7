"""Draws the examples of the built-in synthetic dataset: one large shape per image.

Each example is a textured background with one large *class object* (its class
is the label) and one to `max_distractors` (default three) smaller *distractors*
of other classes, or none when `max_distractors` is 0:

- the class object has a random colour, position (fully inside the image),
  rotation (uniform in +-`MAX_ROTATION`, 30 degrees: with full turns a small CNN
  learns the shapes several times slower) and size: its extent radius (the
  radius of the circle around the shape) is uniform in `OBJECT_RADIUS` times the
  image size, so it covers about 6 % (arrow) to 38 % (circle) of the image;
- each distractor has an extent radius uniform in `DISTRACTOR_RADIUS` times the
  image size, so it is always smaller than the class object (in extent and, for
  every pair of shapes, in area), lies fully inside the image, and its extent
  circle does not touch the class object's nor another distractor's, so the
  distractors never overlap the class object;
- the background blends a random colour and a second one (each channel within
  +-`BACKGROUND_CONTRAST` of the first, on 0..255) with a smooth random field:
  value noise, stripes or a linear gradient; the object and distractor colours
  are at least `MIN_CONTRAST` (RGB distance) from every colour on that blend;
  uniform noise of +-`PIXEL_NOISE` is added to every pixel.

Every example is drawn from its own `numpy.random.Generator`, derived from
(seed, split, index) by `example_rng`, so the same seed gives byte-identical
images, in any order.

Usage:

  rng = example_rng(seed=0, split="train", index=7)
  example = draw_example(rng, image_size=96)   # example.image: uint8[96, 96, 3]
"""

import dataclasses
from collections.abc import Callable

import numpy as np
from PIL import Image

OBJECT_RADIUS = (0.25, 0.35)
DISTRACTOR_RADIUS = (0.07, 0.11)
MAX_DISTRACTORS = 3
MIN_CONTRAST = 100.0
BACKGROUND_CONTRAST = 40.0
PIXEL_NOISE = 6
MAX_ROTATION = np.pi / 6

_SPLIT_IDS = {"train": 0, "test": 1}


Inside = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _polygon(vertices: np.ndarray) -> Inside:
  """Even-odd point-in-polygon test for (x, y) arrays; vertices f[V, 2] as (x, y)."""
  start = np.asarray(vertices, dtype=np.float64)
  end = np.roll(start, -1, axis=0)

  def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x[..., None], y[..., None]
    spans = (start[:, 1] > y) != (end[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
      crossing_x = start[:, 0] + (y - start[:, 1]) * (end[:, 0] - start[:, 0]) / (
        end[:, 1] - start[:, 1]
      )
    return np.sum(spans & (x < crossing_x), axis=-1) % 2 == 1

  return inside


def _regular_polygon(num_vertices: int, phase: float) -> np.ndarray:
  angles = phase + 2 * np.pi * np.arange(num_vertices) / num_vertices
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
  outer = _regular_polygon(5, -np.pi / 2)
  inner = 0.45 * _regular_polygon(5, -np.pi / 2 + np.pi / 5)
  return np.stack([outer, inner], axis=1).reshape(10, 2)


def _arrow() -> np.ndarray:
  points = np.array([
    (-1.0, -0.25), (0.1, -0.25), (0.1, -0.62), (1.0, 0.0),
    (0.1, 0.62), (0.1, 0.25), (-1.0, 0.25),
  ])  # fmt: skip
  return points / np.max(np.hypot(points[:, 0], points[:, 1]))


def _cross(half_width: float = 0.32) -> Inside:
  arm = np.sqrt(1 - half_width**2)  # The arm ends' corners touch the unit circle.

  def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = np.abs(x), np.abs(y)
    return ((x <= half_width) & (y <= arm)) | ((y <= half_width) & (x <= arm))

  return inside


def _heart() -> Inside:
  """The curve (x^2 + y^2 - 1)^3 = x^2 y^3 (y up), centred on its bounding box
  and scaled into the unit circle."""

  def raw(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # y down.
    return (x * x + y * y - 1) ** 3 + x * x * y**3 <= 0

  grid = np.linspace(-1.5, 1.5, 1201)
  gx, gy = np.meshgrid(grid, grid)
  px, py = gx[raw(gx, gy)], gy[raw(gx, gy)]
  cx, cy = (px.max() + px.min()) / 2, (py.max() + py.min()) / 2
  scale = np.max(np.hypot(px - cx, py - cy))
  return lambda x, y: raw(x * scale + cx, y * scale + cy)


def _disk(radius: float = 1.0, cx: float = 0.0) -> Inside:
  return lambda x, y: (x - cx) ** 2 + y * y <= radius * radius


# Each shape: an inside test in unit coordinates (x right, y down); every shape
# lies in the unit circle and touches it.
_SHAPES: dict[str, Inside] = {
  "circle": _disk(),
  "square": _polygon(_regular_polygon(4, np.pi / 4)),
  "triangle": _polygon(_regular_polygon(3, -np.pi / 2)),
  "star": _polygon(_star()),
  "cross": _cross(),
  "ring": lambda x, y: _disk()(x, y) & ~_disk(0.55)(x, y),
  "crescent": lambda x, y: _disk()(x, y) & ~_disk(0.8, 0.42)(x, y),
  "heart": _heart(),
  "arrow": _polygon(_arrow()),
  "diamond": lambda x, y: np.abs(x) + np.abs(y) / 0.55 <= 1,
}

SHAPE_NAMES: tuple[str, ...] = tuple(_SHAPES)


@dataclasses.dataclass(frozen=True)
class Example:
  """One drawn example.

  Attributes:
    image: uint8[S, S, 3].
    label: index of the class object's shape in `SHAPE_NAMES`.
    mask: bool[S, S], the visible pixels of the class object.
    bbox: f32[4], (ymin, xmin, ymax, xmax) of `mask`, normalised to [0, 1]
      (pixel edges: a mask covering rows 2..5 gives ymin=2/S, ymax=6/S).
    center: (y, x) of the class object's center, in pixels.
    radius: the class object's extent radius, in pixels.
    angle: the class object's rotation, in radians.
    distractor_labels: int[D], shape indices of the distractors (D <= max_distractors).
    distractor_masks: bool[D, S, S], the distractors' pixels.
  """

  image: np.ndarray
  label: int
  mask: np.ndarray
  bbox: np.ndarray
  center: tuple[float, float]
  radius: float
  angle: float
  distractor_labels: np.ndarray
  distractor_masks: np.ndarray


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator for one example, derived from (seed, split, index) only."""
  if split not in _SPLIT_IDS:
    raise ValueError(f"split: expected one of {sorted(_SPLIT_IDS)}, got {split!r}")
  return np.random.default_rng([seed, _SPLIT_IDS[split], index])


def shape_mask(
  shape: str, image_size: int, center: tuple[float, float], radius: float, angle: float
) -> np.ndarray:
  """Rasterises one shape.

  Args:
    shape: one of `SHAPE_NAMES`.
    image_size: S, the side of the square image in pixels.
    center: (y, x) of the shape's centre in pixels, in continuous coordinates:
      the image spans [0, S], pixel (i, j) has its centre at (i + 0.5, j + 0.5).
    radius: extent radius in pixels: the shape touches the circle of this radius.
    angle: rotation in radians.

  Returns:
    bool[S, S], True where the pixel centre is inside the shape.
  """
  if shape not in _SHAPES:
    raise ValueError(f"shape: expected one of {SHAPE_NAMES}, got {shape!r}")
  mask = np.zeros((image_size, image_size), dtype=bool)
  cy, cx = center
  # Only the pixels whose centres may lie in the extent circle are tested.
  top, left = (max(int(np.floor(c - radius)), 0) for c in (cy, cx))
  bottom, right = (min(int(np.ceil(c + radius)) + 1, image_size) for c in (cy, cx))
  if bottom <= top or right <= left:
    return mask
  dy, dx = np.meshgrid(
    (np.arange(top, bottom) + 0.5 - cy) / radius,
    (np.arange(left, right) + 0.5 - cx) / radius,
    indexing="ij",
  )
  cos, sin = np.cos(angle), np.sin(angle)  # Rotate the pixels by -angle.
  mask[top:bottom, left:right] = _SHAPES[shape](cos * dx + sin * dy, cos * dy - sin * dx)
  return mask


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
  """A smooth random field blending a random colour and a nearby one.

  Returns:
    (float[S, S, 3] image in 0..255, float[2, 3] the two colours).
  """
  first = rng.uniform(0, 255, size=3)
  second = np.clip(first + rng.uniform(-BACKGROUND_CONTRAST, BACKGROUND_CONTRAST, size=3), 0, 255)
  colours = np.stack([first, second])
  kind = rng.integers(3)
  if kind == 0:  # value noise: a coarse random grid upsampled bilinearly.
    cells = int(rng.integers(2, 7))
    grid = rng.uniform(0, 255, size=(cells, cells)).astype(np.uint8)
    coarse = Image.fromarray(grid).resize((size, size), Image.Resampling.BILINEAR)
    field = np.asarray(coarse, np.float32) / 255
  else:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    direction = rng.uniform(0, 2 * np.pi)
    along = x * np.cos(direction) + y * np.sin(direction)
    if kind == 1:  # stripes with a period of 1/10 to 1/3 of the image.
      period = rng.uniform(0.1, 1 / 3)
      field = 0.5 + 0.5 * np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
    else:  # linear gradient across the image.
      field = (along - along.min()) / (along.max() - along.min())
  field = field[..., None]
  return (1 - field) * colours[0] + field * colours[1], colours


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
  """A random colour at least MIN_CONTRAST from the segment between the two colours."""
  a, b = background
  colour = rng.uniform(0, 255, size=3)
  for _ in range(100):
    t = np.clip(np.dot(colour - a, b - a) / max(np.dot(b - a, b - a), 1e-6), 0, 1)
    if np.linalg.norm(colour - (a + t * (b - a))) >= MIN_CONTRAST:
      break
    colour = rng.uniform(0, 255, size=3)
  return colour


def _free_centers(
  size: int, radius: float, circles: list[tuple[float, float, float]]
) -> np.ndarray:
  """Pixel-grid centres (y, x) whose circle of `radius` lies inside the image and
  touches none of `circles` (each (y, x, r)). Returns f32[N, 2]."""
  axis = np.arange(np.ceil(radius), np.floor(size - radius) + 1, dtype=np.float32)
  cy, cx = np.meshgrid(axis, axis, indexing="ij")
  free = np.ones(cy.shape, dtype=bool)
  for y, x, r in circles:
    free &= np.hypot(cy - y, cx - x) >= r + radius + 1
  return np.stack([cy[free], cx[free]], axis=1)


def draw_example(rng: np.random.Generator, image_size: int, label: int | None = None, *,
                 num_classes: int = len(SHAPE_NAMES),
                 max_distractors: int = MAX_DISTRACTORS) -> Example:
  """Draws one example of size S = image_size from `rng` (see the module doc).

  Args:
    rng: the example's generator (`example_rng`).
    image_size: S, at least 16.
    label: the class object's shape index; None: drawn from `rng`.
    num_classes: the shapes in use, the first `num_classes` of `SHAPE_NAMES`
      (class objects and distractors alike), at least 2.
    max_distractors: at most this many distractors, in [0, `MAX_DISTRACTORS`];
      the count is uniform in [1, max_distractors] (0 when max_distractors is 0).
  """
  if image_size < 16:
    raise ValueError(f"image_size: expected >= 16, got {image_size}")
  if not 2 <= num_classes <= len(SHAPE_NAMES):
    raise ValueError(f"num_classes: expected an int in [2, {len(SHAPE_NAMES)}], got {num_classes}")
  if not 0 <= max_distractors <= MAX_DISTRACTORS:
    raise ValueError(f"max_distractors: expected an int in [0, {MAX_DISTRACTORS}], "
                     f"got {max_distractors}")
  num_shapes = num_classes
  if label is not None and not 0 <= label < num_shapes:
    raise ValueError(f"label: expected None or an int in [0, {num_shapes}), got {label}")
  size = image_size
  image, background = _background(rng, size)
  label = int(rng.integers(num_shapes)) if label is None else int(label)

  radius = rng.uniform(*OBJECT_RADIUS) * size
  center = rng.uniform(radius, size - radius, size=2)
  angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
  mask = shape_mask(SHAPE_NAMES[label], size, tuple(center), radius, angle)
  circles = [(center[0], center[1], radius)]

  distractor_labels, distractor_masks = [], []
  others = [k for k in range(num_shapes) if k != label]
  num_distractors = int(rng.integers(1, max_distractors + 1)) if max_distractors else 0
  for _ in range(num_distractors):
    d_radius = rng.uniform(*DISTRACTOR_RADIUS) * size
    candidates = _free_centers(size, d_radius, circles)
    if not len(candidates):
      break
    d_center = candidates[rng.integers(len(candidates))]
    d_label = int(rng.choice(others))
    d_mask = shape_mask(
      SHAPE_NAMES[d_label],
      size,
      tuple(d_center),
      d_radius,
      rng.uniform(-MAX_ROTATION, MAX_ROTATION),
    )
    image[d_mask] = _contrasting_colour(rng, background)
    circles.append((d_center[0], d_center[1], d_radius))
    distractor_labels.append(d_label)
    distractor_masks.append(d_mask)

  image[mask] = _contrasting_colour(rng, background)
  image += rng.integers(-PIXEL_NOISE, PIXEL_NOISE + 1, size=image.shape)
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  bbox = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32) / size
  return Example(
    image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
    label=label,
    mask=mask,
    bbox=bbox,
    center=(float(center[0]), float(center[1])),
    radius=float(radius),
    angle=float(angle),
    distractor_labels=np.array(distractor_labels, dtype=np.int64),
    distractor_masks=np.array(distractor_masks, dtype=bool).reshape(-1, size, size),
  )
