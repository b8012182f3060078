"""SoftTeacher augmentations: geometric ops that record their view matrix, colour ops, compositions.

Coordinate convention: boxes and matrices use mmdet's continuous pixel coordinates, where
pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)`` (its centre is at
``(col + 0.5, row + 0.5)``). ``results['transform_matrix']`` (float32, 3x3, identity when
absent) maps ORIGINAL image coordinates to the current view: ``view = M @ [x, y, 1]``.
Every geometric step left-multiplies its own matrix onto it and maps ``results[k]`` for
``k in results['bbox_fields']``. Photometric steps leave matrix and boxes untouched.

The warping ops (translate, rotate, shear) keep the image size, fill uncovered pixels with 0,
map each box to the axis-aligned box enclosing its transformed corners, clip it to the image
and drop boxes left without area together with their labels (``gt_bboxes`` -> ``gt_labels``,
``gt_bboxes_ignore`` -> ``gt_labels_ignore``) unless ``keep_empty=True``.
All randomness comes from ``np.random`` so mmdet's seeded worker init applies.
"""
import cv2
import mmcv
import numpy as np
from mmdet.datasets.builder import PIPELINES
from mmdet.datasets.pipelines import Compose, RandomFlip, Resize

from ssod.utils.bbox_utils import transform_bboxes_numpy

MATRIX_KEY = 'transform_matrix'
BOX_LABEL_KEYS = {'gt_bboxes': 'gt_labels', 'gt_bboxes_ignore': 'gt_labels_ignore'}
MAX_LEVEL = 10.0


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
    """Base of the warping ops: subclasses return a 3x3 matrix in box coordinates."""

    def __init__(self, keep_empty=False):
        self.keep_empty = keep_empty

    def sample_matrix(self, height, width):
        raise NotImplementedError

    def __call__(self, results):
        unsupported = [k for k in ('mask_fields', 'seg_fields') if results.get(k)]
        if unsupported:
            raise NotImplementedError(f'{type(self).__name__} cannot warp {unsupported}: boxes only')
        height, width = results['img_shape'][:2]
        matrix = self.sample_matrix(height, width)
        # cv2 addresses pixels by their centre index: index = box coordinate - 0.5
        pixel_matrix = _translation(-0.5, -0.5) @ matrix @ _translation(0.5, 0.5)
        for key in results.get('img_fields', ['img']):
            results[key] = cv2.warpAffine(results[key], pixel_matrix[:2], (width, height),
                                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                          borderValue=0)
        for key in results.get('bbox_fields', []):
            self._warp_boxes(results, key, matrix, (height, width))
        record_matrix(results, matrix)
        return results

    def _warp_boxes(self, results, key, matrix, shape):
        boxes = transform_bboxes_numpy(results[key], matrix, max_shape=shape)
        if self.keep_empty:
            results[key] = boxes
            return
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        results[key] = boxes[keep]
        label_key = BOX_LABEL_KEYS.get(key)
        if label_key in results:
            results[label_key] = results[label_key][keep]


@PIPELINES.register_module()
class RandTranslate(_WarpTransform):
    """Shift by ``U(x) * width`` and ``U(y) * height`` pixels (positive: right / down)."""

    def __init__(self, x=None, y=None, keep_empty=False):
        super().__init__(keep_empty)
        if x is None and y is None:
            raise ValueError('RandTranslate needs a range for x, y or both')
        self.x = None if x is None else _as_range(x, 'x')
        self.y = None if y is None else _as_range(y, 'y')

    def sample_matrix(self, height, width):
        dx = 0.0 if self.x is None else np.random.uniform(*self.x) * width
        dy = 0.0 if self.y is None else np.random.uniform(*self.y) * height
        return _translation(dx, dy)


def rotation_matrix(angle, height, width):
    """Rotation by ``angle`` degrees about the image centre, counter-clockwise on screen."""
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    rotation = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
    return _translation(width / 2, height / 2) @ rotation @ _translation(-width / 2, -height / 2)


@PIPELINES.register_module()
class RandRotate(_WarpTransform):
    """Rotate about the image centre by ``U(angle)`` degrees (positive: counter-clockwise)."""

    def __init__(self, angle=(-30, 30), keep_empty=False):
        super().__init__(keep_empty)
        self.angle = _as_range(angle, 'angle')

    def sample_matrix(self, height, width):
        return rotation_matrix(np.random.uniform(*self.angle), height, width)


def shear_matrix(x_angle, y_angle, height, width):
    """Shear about the image centre: ``x += tan(x_angle) (y - cy)``, then ``y += tan(y_angle) (x - cx)``."""
    shear_x = np.array([[1.0, np.tan(np.deg2rad(x_angle)), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    shear_y = np.array([[1.0, 0.0, 0.0], [np.tan(np.deg2rad(y_angle)), 1.0, 0.0], [0.0, 0.0, 1.0]])
    centre = _translation(width / 2, height / 2)
    return centre @ shear_y @ shear_x @ _translation(-width / 2, -height / 2)


@PIPELINES.register_module()
class RandShear(_WarpTransform):
    """Shear by ``U(x)`` degrees along x and/or ``U(y)`` degrees along y (x first)."""

    def __init__(self, x=None, y=None, keep_empty=False):
        super().__init__(keep_empty)
        if x is None and y is None:
            raise ValueError('RandShear needs an angle range for x, y or both')
        self.x = None if x is None else _as_range(x, 'x')
        self.y = None if y is None else _as_range(y, 'y')

    def sample_matrix(self, height, width):
        x_angle = 0.0 if self.x is None else np.random.uniform(*self.x)
        y_angle = 0.0 if self.y is None else np.random.uniform(*self.y)
        return shear_matrix(x_angle, y_angle, height, width)


# --------------------------------------------------------------------------- erasing
@PIPELINES.register_module()
class RandErase:
    """Fill ``n`` random rectangles (``n`` uniform in ``n_iterations``, inclusive) with ``fill_val``.

    Each patch side is ``U(size)`` times the image's shorter side when ``squared``; otherwise
    height and width are ``U(size) * height`` and ``U(size) * width``, drawn independently.
    Patches lie fully inside the image. Boxes and the matrix are unchanged.
    """

    def __init__(self, n_iterations=(1, 5), size=(0.0, 0.2), squared=True, fill_val=0):
        low, high = _as_range(n_iterations, 'n_iterations')
        if low < 0 or low != int(low) or high != int(high):
            raise ValueError(f'n_iterations must be non-negative integers, got {n_iterations!r}')
        self.n_iterations = (int(low), int(high))
        self.size = _as_range(size, 'size')
        if not 0.0 <= self.size[0] <= self.size[1] <= 1.0:
            raise ValueError(f'size must lie in [0, 1], got {size!r}')
        self.squared = squared
        self.fill_val = fill_val

    def sample_patches(self, height, width):
        """List of ``(x1, y1, x2, y2)`` integer patches (end exclusive)."""
        patches = []
        for _ in range(np.random.randint(self.n_iterations[0], self.n_iterations[1] + 1)):
            if self.squared:
                patch_h = patch_w = int(np.random.uniform(*self.size) * min(height, width))
            else:
                patch_h = int(np.random.uniform(*self.size) * height)
                patch_w = int(np.random.uniform(*self.size) * width)
            x1 = np.random.randint(0, width - patch_w + 1)
            y1 = np.random.randint(0, height - patch_h + 1)
            patches.append((x1, y1, x1 + patch_w, y1 + patch_h))
        return patches

    def __call__(self, results):
        height, width = results['img_shape'][:2]
        patches = self.sample_patches(height, width)
        for key in results.get('img_fields', ['img']):
            img = results[key].copy()
            for x1, y1, x2, y2 in patches:
                img[y1:y2, x1:x2] = self.fill_val
            results[key] = img
        return results


# --------------------------------------------------------------------------- colour ops
class _ColourTransform:
    """Base of the colour ops: draws a level ``U(level_range)`` and applies it to BGR uint8 images."""

    def __init__(self, level_range=(1.0, MAX_LEVEL)):
        self.level_range = _as_range(level_range, 'level_range')

    def sample_level(self):
        return np.random.uniform(*self.level_range)

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
    """Stretch each channel to [0, 255] (level unused)."""

    def apply(self, img, level):
        return mmcv.auto_contrast(img)


@PIPELINES.register_module()
class RandEqualize(_ColourTransform):
    """Histogram-equalize each channel (level unused)."""

    def apply(self, img, level):
        return mmcv.imequalize(img)


@PIPELINES.register_module()
class RandSolarize(_ColourTransform):
    """Invert pixels at or above ``256 * (1 - level / 10)``."""

    def apply(self, img, level):
        return mmcv.solarize(img, thr=256.0 * (1.0 - level / MAX_LEVEL))


@PIPELINES.register_module()
class RandColor(_ColourTransform):
    """Blend with the grey image, factor :func:`enhance_factor`."""

    def apply(self, img, level):
        return mmcv.adjust_color(img, alpha=enhance_factor(level), backend='cv2')


@PIPELINES.register_module()
class RandContrast(_ColourTransform):
    """Blend with the mean grey level, factor :func:`enhance_factor`."""

    def apply(self, img, level):
        return mmcv.adjust_contrast(img, factor=enhance_factor(level), backend='cv2')


@PIPELINES.register_module()
class RandBrightness(_ColourTransform):
    """Blend with black, factor :func:`enhance_factor`."""

    def apply(self, img, level):
        return mmcv.adjust_brightness(img, factor=enhance_factor(level), backend='cv2')


@PIPELINES.register_module()
class RandSharpness(_ColourTransform):
    """Blend with a smoothed image, factor :func:`enhance_factor`."""

    def apply(self, img, level):
        return mmcv.adjust_sharpness(img, factor=enhance_factor(level))


def posterize_bits(level):
    """Bits kept by :class:`RandPosterize`: ``8 - ceil(4 * level / 10)`` (7 down to 4)."""
    return 8 - int(np.ceil(4.0 * level / MAX_LEVEL))


@PIPELINES.register_module()
class RandPosterize(_ColourTransform):
    """Keep the :func:`posterize_bits` most significant bits of each channel."""

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
