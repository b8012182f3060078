"""SoftTeacher augmentations: geometric ops that record their view matrix, colour ops, compositions.

Coordinate convention: boxes and matrices use mmdet's continuous pixel coordinates, where
pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)`` (its centre is at
``(col + 0.5, row + 0.5)``). ``results['transform_matrix']`` (float32, 3x3, identity when
absent) maps ORIGINAL image coordinates to the current view: ``view = M @ [x, y, 1]``.
Every geometric step left-multiplies its own matrix onto it and maps ``results[k]`` for
``k in results['bbox_fields']``. Photometric steps leave matrix and boxes untouched.

The ops behave as the reference's (SoftTeacher's ``rand_aug.py``, spec B.3) by default:

* The warping ops (translate, rotate, shear) warp the image as ``mmcv.imtranslate``,
  ``mmcv.imrotate`` and ``mmcv.imshear`` do, keep its size and fill uncovered pixels with
  ``img_fill_val = 125`` (grey, before normalisation); :class:`RandErase` fills with 125 too.
  They map each box to the axis-aligned box enclosing its transformed corners, clip it to the
  image and drop boxes left without area together with their labels (``gt_bboxes`` ->
  ``gt_labels``, ``gt_bboxes_ignore`` -> ``gt_labels_ignore``) unless ``keep_empty=True``.
  The recorded matrix is the one the image was warped with (pixel-centre convention above).
* The colour ops draw an integer level ``randint(1, 10)`` (1..9); the reference's PIL ops
  (autocontrast, equalize, the four ``ImageEnhance`` blends) run through PIL, solarize and
  posterize through mmcv with the reference's parameters.

All randomness comes from ``np.random`` so mmdet's seeded worker init applies.
"""
import cv2
import mmcv
import numpy as np
from PIL import Image, ImageEnhance, ImageOps
from mmdet.datasets.builder import PIPELINES
from mmdet.datasets.pipelines import Compose, RandomFlip, Resize

from ssod.utils.bbox_utils import transform_bboxes_numpy

MATRIX_KEY = 'transform_matrix'
BOX_LABEL_KEYS = {'gt_bboxes': 'gt_labels', 'gt_bboxes_ignore': 'gt_labels_ignore'}
MAX_LEVEL = 10  # colour-op levels are integers below it
FILL_VALUE = 125  # the reference's fill of erased and uncovered pixels


def record_matrix(results, matrix):
    """Left-multiply ``matrix`` onto ``results['transform_matrix']`` (identity if absent)."""
    previous = np.asarray(results.get(MATRIX_KEY, np.eye(3)), dtype=np.float64)
    results[MATRIX_KEY] = (np.asarray(matrix, dtype=np.float64) @ previous).astype(np.float32)


def _as_range(value, name):
    """``(low, high)`` from a number (fixed value) or a 2-sequence with ``low <= high``."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f'{name} must be a number or a (low, high) pair with low <= high, got {value!r}')
    return float(value[0]), float(value[1])


def _translation(dx, dy):
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- resize / flip
@PIPELINES.register_module()
class RandResize(Resize):
    """mmdet ``Resize`` (same arguments) that also records ``diag(w_scale, h_scale, 1)``.

    SoftTeacher: ``img_scale=[(1333, 400), (1333, 1200)], multiscale_mode='range', keep_ratio=True``.
    """

    def __call__(self, results):
        results = super().__call__(results)
        w_scale, h_scale = results['scale_factor'][:2]
        record_matrix(results, np.diag([float(w_scale), float(h_scale), 1.0]))
        return results


def flip_matrix(direction, height, width):
    """Matrix of mmdet's box flip: ``x -> width - x`` (horizontal), ``y -> height - y`` (vertical)."""
    flip_x = direction in ('horizontal', 'diagonal')
    flip_y = direction in ('vertical', 'diagonal')
    if not (flip_x or flip_y):
        raise ValueError(f'Invalid flip direction {direction!r}')
    return np.array([[-1.0 if flip_x else 1.0, 0.0, width if flip_x else 0.0],
                     [0.0, -1.0 if flip_y else 1.0, height if flip_y else 0.0],
                     [0.0, 0.0, 1.0]])


@PIPELINES.register_module()
class RandFlip(RandomFlip):
    """mmdet ``RandomFlip`` that records the flip matrix when the image is flipped."""

    def __init__(self, flip_ratio=0.5, direction='horizontal'):
        super().__init__(flip_ratio=flip_ratio, direction=direction)

    def __call__(self, results):
        results = super().__call__(results)
        if results['flip']:
            height, width = results['img_shape'][:2]
            record_matrix(results, flip_matrix(results['flip_direction'], height, width))
        return results


# --------------------------------------------------------------------------- warping ops
class _WarpTransform:
    """Base of the warping ops: subclasses return the 3x3 box-coordinate matrices of their steps.

    Each step warps the image once (bilinear, uncovered pixels set to ``img_fill_val`` in every
    channel), maps and clips the boxes and records its matrix, as the reference applies its x and
    y steps one after the other. Boxes left without area are dropped at the end of the op.
    """

    def __init__(self, img_fill_val=FILL_VALUE, keep_empty=False):
        self.img_fill_val = float(img_fill_val)
        if not 0.0 <= self.img_fill_val <= 255.0:
            raise ValueError(f'img_fill_val must lie in [0, 255], got {img_fill_val!r}')
        self.keep_empty = keep_empty

    def sample_matrices(self, height, width):
        raise NotImplementedError

    def __call__(self, results):
        unsupported = [k for k in ('mask_fields', 'seg_fields') if results.get(k)]
        if unsupported:
            raise NotImplementedError(f'{type(self).__name__} cannot warp {unsupported}: boxes only')
        height, width = results['img_shape'][:2]
        for matrix in self.sample_matrices(height, width):
            for key in results.get('img_fields', ['img']):
                results[key] = self._warp_image(results[key], matrix)
            for key in results.get('bbox_fields', []):
                results[key] = transform_bboxes_numpy(results[key], matrix, max_shape=(height, width))
            record_matrix(results, matrix)
        if not self.keep_empty:
            for key in results.get('bbox_fields', []):
                self._drop_empty(results, key)
        return results

    def _warp_image(self, img, matrix):
        height, width = img.shape[:2]
        channels = 1 if img.ndim == 2 else img.shape[2]
        # cv2 addresses pixels by their centre index: index = box coordinate - 0.5
        pixel_matrix = _translation(-0.5, -0.5) @ matrix @ _translation(0.5, 0.5)
        return cv2.warpAffine(img, pixel_matrix[:2], (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(self.img_fill_val,) * channels)

    @staticmethod
    def _drop_empty(results, key):
        boxes = results[key]
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        results[key] = boxes[keep]
        label_key = BOX_LABEL_KEYS.get(key)
        if label_key in results:
            results[label_key] = results[label_key][keep]


@PIPELINES.register_module()
class RandTranslate(_WarpTransform):
    """Shift by ``U(x) * width`` then ``U(y) * height`` pixels (positive: right / down).

    As ``mmcv.imtranslate``, one step per given axis.
    """

    def __init__(self, x=None, y=None, img_fill_val=FILL_VALUE, keep_empty=False):
        super().__init__(img_fill_val, keep_empty)
        if x is None and y is None:
            raise ValueError('RandTranslate needs a range for x, y or both')
        self.x = None if x is None else _as_range(x, 'x')
        self.y = None if y is None else _as_range(y, 'y')

    def sample_matrices(self, height, width):
        fractions = [None if r is None else np.random.uniform(*r) for r in (self.x, self.y)]
        steps = []
        if fractions[0] is not None:
            steps.append(_translation(fractions[0] * width, 0.0))
        if fractions[1] is not None:
            steps.append(_translation(0.0, fractions[1] * height))
        return steps


def rotation_matrix(angle, height, width):
    """Rotation by ``angle`` degrees about the image centre, clockwise on screen (``mmcv.imrotate``)."""
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    return _translation(width / 2, height / 2) @ rotation @ _translation(-width / 2, -height / 2)


@PIPELINES.register_module()
class RandRotate(_WarpTransform):
    """Rotate about the image centre by ``U(angle)`` degrees (positive: clockwise, ``mmcv.imrotate``)."""

    def __init__(self, angle=(-30, 30), img_fill_val=FILL_VALUE, keep_empty=False):
        super().__init__(img_fill_val, keep_empty)
        self.angle = _as_range(angle, 'angle')

    def sample_matrices(self, height, width):
        return [rotation_matrix(np.random.uniform(*self.angle), height, width)]


def shear_matrix(magnitude, direction):
    """Box-coordinate matrix of ``mmcv.imshear(img, magnitude, direction)``.

    mmcv shears about the top-left pixel's centre: pixel index ``(col, row)`` goes to
    ``(col + magnitude * row, row)`` (horizontal) or ``(col, row + magnitude * col)`` (vertical);
    in box coordinates (index + 0.5) that is ``x += magnitude * (y - 0.5)`` or ``y += magnitude * (x - 0.5)``.
    """
    if direction == 'horizontal':
        shear = np.array([[1.0, magnitude, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    elif direction == 'vertical':
        shear = np.array([[1.0, 0.0, 0.0], [magnitude, 1.0, 0.0], [0.0, 0.0, 1.0]])
    else:
        raise ValueError(f'Invalid shear direction {direction!r}')
    return _translation(0.5, 0.5) @ shear @ _translation(-0.5, -0.5)


def shear_magnitude(angle, direction):
    """The reference's shear factor of ``angle`` degrees: ``tanh(-angle)`` along x, ``tanh(angle)`` along y.

    ``tanh`` of the angle in radians, not ``tan``: at most ``tanh(pi / 6) = 0.480`` for 30 degrees.
    """
    sign = -1.0 if direction == 'horizontal' else 1.0
    return float(np.tanh(sign * np.deg2rad(angle)))


@PIPELINES.register_module()
class RandShear(_WarpTransform):
    """Shear by ``U(x)`` degrees along x, then ``U(y)`` degrees along y (:func:`shear_magnitude`).

    Each step is ``mmcv.imshear`` about the top-left origin (:func:`shear_matrix`).
    """

    def __init__(self, x=None, y=None, img_fill_val=FILL_VALUE, keep_empty=False):
        super().__init__(img_fill_val, keep_empty)
        if x is None and y is None:
            raise ValueError('RandShear needs an angle range for x, y or both')
        self.x = None if x is None else _as_range(x, 'x')
        self.y = None if y is None else _as_range(y, 'y')

    def sample_matrices(self, height, width):
        angles = [None if r is None else np.random.uniform(*r) for r in (self.x, self.y)]
        return [shear_matrix(shear_magnitude(angle, direction), direction)
                for angle, direction in zip(angles, ('horizontal', 'vertical')) if angle is not None]


# --------------------------------------------------------------------------- erasing
@PIPELINES.register_module()
class RandErase:
    """Fill ``n = randint(*n_iterations)`` random rectangles with ``img_fill_val`` (boxes, matrix unchanged).

    As the reference: ``n_iterations`` is an int or a ``(low, high)`` pair with ``high``
    excluded (``(1, 5)``: 1 to 4 patches). Each patch is ``int(r_h * height) x int(r_w * width)``
    with ``r_w ~ U(size)`` and ``r_h = r_w`` when ``squared`` (the image's aspect ratio, not a
    square), else drawn independently; its top-left corner is ``randint(0, width - patch_w)``,
    ``randint(0, height - patch_h)``, so patches lie inside the image.
    """

    def __init__(self, n_iterations=(1, 5), size=(0.0, 0.2), squared=True, img_fill_val=FILL_VALUE):
        if isinstance(n_iterations, int):
            n_iterations = (n_iterations, n_iterations + 1)
        if len(n_iterations) != 2 or not all(isinstance(n, int) for n in n_iterations) \
                or not 0 <= n_iterations[0] < n_iterations[1]:
            raise ValueError(f'n_iterations must be an int or integers (low, high) with 0 <= low < high, '
                             f'got {n_iterations!r}')
        self.n_iterations = tuple(n_iterations)
        self.size = _as_range(size, 'size')
        if not 0.0 <= self.size[0] <= self.size[1] < 1.0:
            raise ValueError(f'size must lie in [0, 1), got {size!r}')
        self.squared = squared
        self.img_fill_val = img_fill_val

    def sample_patches(self, height, width):
        """List of ``(x1, y1, x2, y2)`` integer patches (end exclusive)."""
        patches = []
        for _ in range(np.random.randint(*self.n_iterations)):
            w_ratio = np.random.uniform(*self.size)
            h_ratio = w_ratio if self.squared else np.random.uniform(*self.size)
            patch_h, patch_w = int(h_ratio * height), int(w_ratio * width)
            x1, y1 = np.random.randint(0, width - patch_w), np.random.randint(0, height - patch_h)
            patches.append((x1, y1, x1 + patch_w, y1 + patch_h))
        return patches

    def __call__(self, results):
        height, width = results['img_shape'][:2]
        patches = self.sample_patches(height, width)
        for key in results.get('img_fields', ['img']):
            img = results[key].copy()
            for x1, y1, x2, y2 in patches:
                img[y1:y2, x1:x2] = self.img_fill_val
            results[key] = img
        return results


# --------------------------------------------------------------------------- colour ops
class _ColourTransform:
    """Base of the colour ops: draws an integer level and applies it to BGR uint8 images.

    ``level_range=(low, high)``: ``np.random.randint(low, high)``, ``high`` excluded, as the
    reference's ``randint(1, 10)`` (levels 1..9); an int fixes the level.
    """

    def __init__(self, level_range=(1, MAX_LEVEL)):
        if isinstance(level_range, int):
            level_range = (level_range, level_range + 1)
        if len(level_range) != 2 or not all(isinstance(v, int) for v in level_range) \
                or not 0 <= level_range[0] < level_range[1] <= MAX_LEVEL + 1:
            raise ValueError(f'level_range must be an int or integers (low, high) with '
                             f'0 <= low < high <= {MAX_LEVEL + 1}, got {level_range!r}')
        self.level_range = tuple(level_range)

    def sample_level(self):
        return int(np.random.randint(*self.level_range))

    def apply(self, img, level):
        raise NotImplementedError

    def __call__(self, results):
        level = self.sample_level()
        for key in results.get('img_fields', ['img']):
            img = results[key]
            if img.dtype != np.uint8:
                raise TypeError(f'{type(self).__name__} needs uint8 images, results[{key!r}] is {img.dtype}')
            results[key] = self.apply(img, level)
        return results


def pil_apply(img, operation):
    """Run ``operation`` (PIL RGB image -> PIL image) on a BGR uint8 array, as the reference's PIL ops."""
    rgb = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
    return np.ascontiguousarray(np.asarray(operation(rgb), dtype=np.uint8)[..., ::-1])


def enhance_factor(level):
    """Blend factor of the enhance ops: ``0.1 + 1.8 * level / 10`` (1 leaves the image unchanged)."""
    return 0.1 + 1.8 * level / MAX_LEVEL


@PIPELINES.register_module()
class Identity(_ColourTransform):
    """Leave the image unchanged."""

    def apply(self, img, level):
        return img


@PIPELINES.register_module()
class AutoContrast(_ColourTransform):
    """``PIL.ImageOps.autocontrast``: stretch each channel to [0, 255] (level unused)."""

    def apply(self, img, level):
        return pil_apply(img, ImageOps.autocontrast)


@PIPELINES.register_module()
class RandEqualize(_ColourTransform):
    """``PIL.ImageOps.equalize``: histogram-equalize each channel (level unused)."""

    def apply(self, img, level):
        return pil_apply(img, ImageOps.equalize)


def solarize_threshold(level):
    """Threshold of :class:`RandSolarize`: ``min(int(level * 256 / 10), 255)`` (25 at level 1, 230 at 9)."""
    return min(int(level * 256 / MAX_LEVEL), 255)


@PIPELINES.register_module()
class RandSolarize(_ColourTransform):
    """``mmcv.solarize``: invert pixels at or above :func:`solarize_threshold`."""

    def apply(self, img, level):
        return mmcv.solarize(img, thr=solarize_threshold(level))


class _Enhance(_ColourTransform):
    """A ``PIL.ImageEnhance`` class applied with :func:`enhance_factor`."""

    enhancer = None

    def apply(self, img, level):
        return pil_apply(img, lambda rgb: self.enhancer(rgb).enhance(enhance_factor(level)))


@PIPELINES.register_module()
class RandColor(_Enhance):
    """``PIL.ImageEnhance.Color``: blend with the grey image."""

    enhancer = ImageEnhance.Color


@PIPELINES.register_module()
class RandContrast(_Enhance):
    """``PIL.ImageEnhance.Contrast``: blend with the mean grey level."""

    enhancer = ImageEnhance.Contrast


@PIPELINES.register_module()
class RandBrightness(_Enhance):
    """``PIL.ImageEnhance.Brightness``: blend with black."""

    enhancer = ImageEnhance.Brightness


@PIPELINES.register_module()
class RandSharpness(_Enhance):
    """``PIL.ImageEnhance.Sharpness``: blend with a smoothed image."""

    enhancer = ImageEnhance.Sharpness


def posterize_bits(level):
    """Bits kept by :class:`RandPosterize`: ``4 - int(level * 4 / 10)`` (4 at levels 1-2, 1 at 8-9)."""
    return 4 - int(level * 4 / MAX_LEVEL)


@PIPELINES.register_module()
class RandPosterize(_ColourTransform):
    """``mmcv.posterize``: keep the :func:`posterize_bits` most significant bits of each channel."""

    def apply(self, img, level):
        return mmcv.posterize(img, posterize_bits(level))


# --------------------------------------------------------------------------- compositions
def _build_chain(entry):
    """A transform cfg / callable, or a list of them applied in order."""
    return Compose(list(entry) if isinstance(entry, (list, tuple)) else [entry])


@PIPELINES.register_module()
class OneOf:
    """Apply exactly one of ``transforms``, chosen uniformly; a list entry is applied as a chain."""

    def __init__(self, transforms):
        if not transforms:
            raise ValueError('OneOf needs at least one transform')
        self.transforms = [_build_chain(entry) for entry in transforms]

    def __call__(self, results):
        return self.transforms[np.random.randint(len(self.transforms))](results)


@PIPELINES.register_module()
class ShuffledSequential:
    """Apply every entry of ``transforms`` once, in a random order (a list entry is a chain)."""

    def __init__(self, transforms):
        self.transforms = [_build_chain(entry) for entry in transforms]

    def __call__(self, results):
        for index in np.random.permutation(len(self.transforms)):
            results = self.transforms[index](results)
            if results is None:
                return None
        return results
