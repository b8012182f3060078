"""SoftTeacher data pipelines: recorded view matrices, augmentations, branches and collate (spec B.3, I.6.37)."""
import copy

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmdet.datasets.builder import PIPELINES
from mmdet.datasets.pipelines import Compose

from ssod.datasets.collate import semi_collate
from ssod.datasets.pipelines.semi_pipelines import (SEMI_META_KEYS, CollectWithMatrix, ExtraAttrs, MultiBranch,
                                                    PseudoSamples)
from ssod.datasets.pipelines.transforms import (FILL_VALUE, AutoContrast, Identity, OneOf, RandBrightness,
                                                RandColor, RandContrast, RandEqualize, RandErase, RandFlip,
                                                RandPosterize, RandResize, RandRotate, RandSharpness, RandShear,
                                                RandSolarize, RandTranslate, ShuffledSequential, enhance_factor,
                                                flip_matrix, posterize_bits, shear_magnitude, shear_matrix,
                                                solarize_threshold)
from ssod.utils.bbox_utils import relative_transform, transform_bboxes, transform_bboxes_numpy

HEIGHT, WIDTH = 48, 64
COLOUR_OPS = [Identity, AutoContrast, RandEqualize, RandSolarize, RandColor, RandContrast, RandBrightness,
              RandSharpness, RandPosterize]
COLOUR_NAMES = [op.__name__ for op in COLOUR_OPS]
BOXES = np.array([[10, 8, 30, 30], [34, 12, 56, 40], [58, 30, 63, 40]], dtype=np.float32)
LABELS = np.array([2, 0, 5], dtype=np.int64)


def square_image(x0, y0, side=6, height=HEIGHT, width=WIDTH):
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[y0:y0 + side, x0:x0 + side] = 255
    return img


def make_results(img, boxes=BOXES, labels=LABELS):
    return dict(filename='synthetic.png', img=img, img_shape=img.shape, ori_shape=img.shape, img_fields=['img'],
                bbox_fields=['gt_bboxes'], gt_bboxes=boxes.copy(), gt_labels=labels.copy())


def centroid(img):
    """Intensity-weighted centre of channel 0 in box coordinates (pixel centres at +0.5)."""
    weights = img[..., 0].astype(np.float64)
    rows, cols = np.indices(weights.shape)
    total = weights.sum()
    return np.array([((cols + 0.5) * weights).sum() / total, ((rows + 0.5) * weights).sum() / total])


def map_point(matrix, point):
    mapped = np.asarray(matrix, dtype=np.float64) @ np.array([point[0], point[1], 1.0])
    return mapped[:2] / mapped[2]


def drop_empty(boxes, labels):
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], labels[keep]


def test_registered_names():
    names = ['RandResize', 'RandFlip', 'OneOf', 'ShuffledSequential', 'RandTranslate', 'RandRotate', 'RandShear',
             'RandErase', 'PseudoSamples', 'ExtraAttrs', 'MultiBranch', 'CollectWithMatrix'] + COLOUR_NAMES
    assert all(PIPELINES.get(name) is not None for name in names)
    assert PIPELINES.get('RandShear') is RandShear and PIPELINES.get('Identity') is Identity


def test_resize_records_scale_matrix_and_moves_points():
    results = make_results(square_image(20, 10))  # square centre (23, 13)
    results = RandResize(img_scale=[(128, 96), (128, 96)], multiscale_mode='range', keep_ratio=True)(results)
    assert results['img'].shape == (96, 128, 3)
    np.testing.assert_array_equal(results['transform_matrix'], np.diag([2.0, 2.0, 1.0]).astype(np.float32))
    assert results['transform_matrix'].dtype == np.float32
    np.testing.assert_allclose(centroid(results['img']), [46.0, 26.0], atol=0.25)
    np.testing.assert_allclose(results['gt_bboxes'], BOXES * 2, atol=1e-5)


def test_softteacher_resize_range():
    op = RandResize(img_scale=[(1333, 400), (1333, 1200)], multiscale_mode='range', keep_ratio=True)
    for seed in range(3):
        np.random.seed(seed)
        results = op(make_results(square_image(20, 10)))
        height, width = results['img'].shape[:2]
        assert max(height, width) <= 1333 and 400 - 1 <= min(height, width) <= 1200 + 1
        np.testing.assert_allclose(np.diag(results['transform_matrix'])[:2], [width / WIDTH, height / HEIGHT],
                                   rtol=1e-6)


def test_flip_matrix_maps_points_and_twice_is_identity():
    original = make_results(square_image(20, 10))
    results = RandFlip(flip_ratio=1.0)(copy.deepcopy(original))
    expected = np.array([[-1, 0, WIDTH], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_array_equal(results['transform_matrix'], expected)
    np.testing.assert_allclose(centroid(results['img']), [64 - 23.0, 13.0], atol=1e-9)
    np.testing.assert_allclose(results['gt_bboxes'], transform_bboxes_numpy(BOXES, expected), atol=1e-5)
    results = RandFlip(flip_ratio=1.0)(results)
    np.testing.assert_array_equal(results['transform_matrix'], np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(results['img'], original['img'])
    np.testing.assert_allclose(results['gt_bboxes'], BOXES, atol=1e-5)
    assert 'transform_matrix' not in RandFlip(flip_ratio=0.0)(copy.deepcopy(original))
    np.testing.assert_allclose(map_point(flip_matrix('vertical', HEIGHT, WIDTH), (3, 5)), [3, 43])
    with pytest.raises(ValueError, match='sideways'):
        flip_matrix('sideways', HEIGHT, WIDTH)


TANH_45 = np.tanh(np.pi / 4)  # 0.7616: the reference's shear factor of 45 degrees


@pytest.mark.parametrize('op, expected', [
    (RandTranslate(x=(0.25, 0.25), img_fill_val=0), [[1, 0, 16], [0, 1, 0], [0, 0, 1]]),
    (RandTranslate(y=(0.25, 0.25), img_fill_val=0), [[1, 0, 0], [0, 1, 12], [0, 0, 1]]),
    (RandRotate(angle=(90, 90), img_fill_val=0), [[0, -1, 56], [1, 0, -8], [0, 0, 1]]),  # about (32, 24), clockwise
    # x -= tanh(45 deg) (y - 0.5): tanh(-angle) along x, about the top-left pixel's centre (0.5, 0.5)
    (RandShear(x=(45, 45), img_fill_val=0), [[1, -TANH_45, TANH_45 / 2], [0, 1, 0], [0, 0, 1]]),
    (RandShear(y=(45, 45), img_fill_val=0), [[1, 0, 0], [TANH_45, 1, -TANH_45 / 2], [0, 0, 1]]),  # tanh(+angle)
])
def test_warp_ops_record_known_matrices(op, expected):
    previous = np.array([[2, 0, 1], [0, 3, -1], [0, 0, 1]], dtype=np.float32)
    results = make_results(square_image(20, 10))
    results['transform_matrix'] = previous
    results = op(results)
    np.testing.assert_allclose(results['transform_matrix'], np.array(expected) @ previous, atol=1e-5)
    assert results['img'].shape == (HEIGHT, WIDTH, 3) and results['img'].dtype == np.uint8
    np.testing.assert_allclose(centroid(results['img']), map_point(expected, (23, 13)), atol=0.25)
    boxes, labels = drop_empty(transform_bboxes_numpy(BOXES, np.array(expected, float), (HEIGHT, WIDTH)), LABELS)
    np.testing.assert_allclose(results['gt_bboxes'], boxes, atol=1e-4)
    np.testing.assert_array_equal(results['gt_labels'], labels)


def test_warp_drops_boxes_leaving_the_image_unless_keep_empty():
    results = RandTranslate(x=(0.25, 0.25))(make_results(square_image(20, 10)))
    np.testing.assert_allclose(results['gt_bboxes'], [[26, 8, 46, 30], [50, 12, 64, 40]])
    np.testing.assert_array_equal(results['gt_labels'], [2, 0])
    kept = RandTranslate(x=(0.25, 0.25), keep_empty=True)(make_results(square_image(20, 10)))
    np.testing.assert_allclose(kept['gt_bboxes'][2], [64, 30, 64, 40])
    assert len(kept['gt_labels']) == 3
    with pytest.raises(ValueError, match='RandTranslate'):
        RandTranslate()
    with pytest.raises(NotImplementedError, match='mask_fields'):
        RandRotate()(dict(make_results(square_image(20, 10)), mask_fields=['gt_masks']))


def test_composed_view_matches_each_step_and_the_recorded_matrix():
    ops = [RandResize(img_scale=[(96, 60), (128, 100)], multiscale_mode='range', keep_ratio=True),
           RandFlip(flip_ratio=0.5), RandRotate(img_fill_val=0), RandShear(x=(-30, 30), img_fill_val=0),
           RandShear(y=(-30, 30), img_fill_val=0), RandTranslate(x=(-0.1, 0.1), img_fill_val=0),
           RandTranslate(y=(-0.1, 0.1), img_fill_val=0)]
    for seed in range(4):
        np.random.seed(seed)
        results = make_results(square_image(28, 20))  # centre (31, 23)
        for op in ops:
            before_matrix = results.get('transform_matrix', np.eye(3, dtype=np.float32)).astype(np.float64)
            before_boxes, before_labels = results['gt_bboxes'], results['gt_labels']
            results = op(results)
            step = results['transform_matrix'].astype(np.float64) @ np.linalg.inv(before_matrix)
            boxes, labels = drop_empty(transform_bboxes_numpy(before_boxes, step, results['img_shape']),
                                       before_labels)
            np.testing.assert_allclose(results['gt_bboxes'], boxes, atol=1e-2)
            np.testing.assert_array_equal(results['gt_labels'], labels)
        np.testing.assert_allclose(centroid(results['img']), map_point(results['transform_matrix'], (31, 23)),
                                   atol=0.25)


def test_axis_aligned_composition_maps_boxes_exactly():
    np.random.seed(3)
    ops = Compose([dict(type='RandResize', img_scale=[(96, 60), (128, 100)]), dict(type='RandFlip', flip_ratio=1.0),
                   dict(type='RandTranslate', x=(0.05, 0.05), img_fill_val=0)])
    boxes = BOXES[:2]
    results = ops(make_results(square_image(20, 10), boxes, LABELS[:2]))
    matrix = results['transform_matrix']
    np.testing.assert_allclose(results['gt_bboxes'], transform_bboxes_numpy(boxes, matrix), atol=1e-3)
    np.testing.assert_allclose(centroid(results['img']), map_point(matrix, (23, 13)), atol=0.25)


def test_teacher_to_student_mapping_and_inverse_recover_boxes():
    weak = Compose([dict(type='RandResize', img_scale=[(96, 60), (128, 100)]), dict(type='RandFlip')])
    strong_axis = Compose([dict(type='RandResize', img_scale=[(96, 60), (128, 100)]), dict(type='RandFlip'),
                           dict(type='RandTranslate', x=(-0.05, 0.05), img_fill_val=0)])
    strong_rotated = Compose([dict(type='RandResize', img_scale=[(96, 60), (128, 100)]), dict(type='RandFlip'),
                              dict(type='RandRotate', img_fill_val=0)])
    boxes, labels = np.array([[20, 14, 30, 24], [36, 18, 44, 30]], dtype=np.float32), LABELS[:2]
    for seed in range(4):
        np.random.seed(seed)
        source = make_results(square_image(28, 20), boxes, labels)
        teacher = weak(copy.deepcopy(source))
        for strong, exact in ((strong_axis, True), (strong_rotated, False)):
            student = strong(copy.deepcopy(source))
            matrix = relative_transform(teacher['transform_matrix'], student['transform_matrix'])
            teacher_boxes = torch.from_numpy(teacher['gt_bboxes'])
            mapped = transform_bboxes(teacher_boxes, matrix)
            recovered = transform_bboxes(mapped, torch.linalg.inv(matrix))
            np.testing.assert_allclose(map_point(matrix.numpy(), centroid(teacher['img'])), centroid(student['img']),
                                       atol=0.25)
            if exact:
                np.testing.assert_allclose(mapped.numpy(), student['gt_bboxes'], atol=1e-3)
                np.testing.assert_allclose(recovered.numpy(), teacher['gt_bboxes'], atol=1e-3)
            else:  # enclosing boxes of rotated corners grow: the round trip contains the box
                assert (recovered[:, :2] <= teacher_boxes[:, :2] + 1e-3).all()
                assert (recovered[:, 2:] >= teacher_boxes[:, 2:] - 1e-3).all()


@pytest.mark.parametrize('op_class', COLOUR_OPS)
def test_colour_ops_keep_shape_dtype_boxes_and_matrix(op_class):
    np.random.seed(0)
    img = np.random.randint(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    matrix = np.array([[2, 0, 1], [0, 2, 3], [0, 0, 1]], dtype=np.float32)
    results = op_class()(dict(make_results(img.copy()), transform_matrix=matrix.copy()))
    assert results['img'].shape == img.shape and results['img'].dtype == np.uint8
    np.testing.assert_array_equal(results['transform_matrix'], matrix)
    np.testing.assert_array_equal(results['gt_bboxes'], BOXES)
    levels = [op_class().sample_level() for _ in range(300)]
    assert all(isinstance(level, int) for level in levels) and set(levels) == set(range(1, 10))  # randint(1, 10)
    with pytest.raises(TypeError, match='uint8'):
        op_class()(make_results(img.astype(np.float32)))


def test_colour_ops_hand_computed_values():
    img = np.array([[[100, 200, 125]]], dtype=np.uint8)
    assert enhance_factor(5) == pytest.approx(1.0) and enhance_factor(3) == pytest.approx(0.64)
    np.testing.assert_allclose(RandBrightness().apply(img, 3), [[[64, 128, 80]]], atol=1)  # PIL's uint8 rounding
    assert [solarize_threshold(level) for level in range(1, 10)] == [25, 51, 76, 102, 128, 153, 179, 204, 230]
    np.testing.assert_array_equal(RandSolarize().apply(img, 5), [[[100, 55, 125]]])  # threshold 128
    np.testing.assert_array_equal(RandSolarize().apply(img, 1), [[[155, 55, 130]]])  # threshold 25
    # the reference's 4 - int(level * 4 / 10) bits: strong posterization, 1 to 4 bits
    assert [posterize_bits(level) for level in range(1, 10)] == [4, 4, 3, 3, 2, 2, 2, 1, 1]
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    for level in range(1, 10):
        values = np.unique(RandPosterize().apply(ramp, level))
        bits = posterize_bits(level)
        assert len(values) == 2 ** bits and np.all(values % 2 ** (8 - bits) == 0)
    np.testing.assert_array_equal(RandPosterize().apply(np.array([[[255, 130, 3]]], np.uint8), 5),
                                  [[[192, 128, 0]]])
    grey = np.full((4, 5, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(RandColor().apply(grey, 9.0), grey)
    rng_img = np.random.RandomState(1).randint(50, 151, (8, 8, 3)).astype(np.uint8)
    np.testing.assert_array_equal(RandContrast().apply(rng_img, 5.0), rng_img)
    stretched = AutoContrast().apply(rng_img, 3.0)
    low, high = rng_img.reshape(-1, 3).min(0), rng_img.reshape(-1, 3).max(0)
    expected = (rng_img - low.astype(float)) * 255.0 / (high - low)
    np.testing.assert_allclose(stretched, expected, atol=1.0)  # per-channel stretch to [0, 255], truncated
    results = RandBrightness(level_range=3)(make_results(img.copy()))
    np.testing.assert_array_equal(results['img'], RandBrightness().apply(img, 3))
    with pytest.raises(ValueError, match='level_range'):
        RandBrightness(level_range=(2.5, 2.5))


def test_rand_erase_patch_count_aspect_and_fill():
    """randint(1, 5) = 1-4 patches, each int(r h) x int(r w) with one r ~ U(0, 0.2) (the image's aspect), grey 125."""
    op = RandErase(n_iterations=(1, 5), size=[0, 0.2], squared=True)
    counts, aspects = set(), []
    for seed in range(40):
        np.random.seed(seed)
        patches = op.sample_patches(HEIGHT, WIDTH)
        counts.add(len(patches))
        for x1, y1, x2, y2 in patches:
            patch_w, patch_h = x2 - x1, y2 - y1
            assert patch_w <= 0.2 * WIDTH and patch_h <= 0.2 * HEIGHT
            # one ratio r for both sides: int(r * WIDTH) = patch_w and int(r * HEIGHT) = patch_h for some r
            assert max(patch_w / WIDTH, patch_h / HEIGHT) < min((patch_w + 1) / WIDTH, (patch_h + 1) / HEIGHT)
            assert 0 <= x1 and x2 < WIDTH and 0 <= y1 and y2 < HEIGHT  # corner randint(0, size - patch)
            if patch_h >= 4:
                aspects.append(patch_w / patch_h)
        np.random.seed(seed)
        results = op(dict(make_results(np.full((HEIGHT, WIDTH, 3), 255, np.uint8)), transform_matrix=np.eye(3)))
        expected = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
        for x1, y1, x2, y2 in patches:
            expected[y1:y2, x1:x2] = 125
        np.testing.assert_array_equal(results['img'], expected)
        np.testing.assert_array_equal(results['gt_bboxes'], BOXES)
        np.testing.assert_array_equal(results['transform_matrix'], np.eye(3))
    assert counts == {1, 2, 3, 4}
    assert aspects and all(abs(aspect - WIDTH / HEIGHT) < 0.2 for aspect in aspects)  # 4:3 patches, not squares
    np.random.seed(0)
    for x1, y1, x2, y2 in RandErase(n_iterations=3, size=(0.1, 0.2), squared=False).sample_patches(HEIGHT, WIDTH):
        assert int(0.1 * HEIGHT) <= y2 - y1 <= 0.2 * HEIGHT and int(0.1 * WIDTH) <= x2 - x1 <= 0.2 * WIDTH
    assert len(RandErase(n_iterations=3).sample_patches(HEIGHT, WIDTH)) == 3
    with pytest.raises(ValueError, match='n_iterations'):
        RandErase(n_iterations=(3, 3))


def pattern_image(height=HEIGHT, width=WIDTH):
    """A hand-made image with a known pattern: diagonal colour ramps and a bright square."""
    rows, cols = np.indices((height, width))
    img = np.stack([(4 * cols) % 256, (5 * rows) % 256, (3 * cols + 2 * rows) % 256], axis=-1).astype(np.uint8)
    img[10:18, 20:28] = 255
    return img


def test_warps_fill_uncovered_pixels_with_grey_125():
    white = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    assert FILL_VALUE == 125
    shifted = RandTranslate(x=(0.25, 0.25))(make_results(white.copy()))['img']
    np.testing.assert_array_equal(shifted[:, :16], 125)  # every channel, not only the first
    np.testing.assert_array_equal(shifted[:, 16:], 255)
    for op in (RandRotate(angle=(30, 30)), RandShear(x=(30, 30)), RandShear(y=(-30, -30))):
        img = op(make_results(white.copy()))['img']
        corners = img[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert set(np.unique(img)) <= set(range(125, 256)) and (img == 125).all(axis=-1).any()
        assert ((corners == 125).all(axis=-1) | (corners == 255).all(axis=-1)).all()
    black = RandRotate(angle=(30, 30), img_fill_val=0)(make_results(white.copy()))['img']
    assert black[0, 0].tolist() == [0, 0, 0]


def test_translate_and_rotate_images_match_mmcv():
    img, fill = pattern_image(), (125.0, 125.0, 125.0)
    translated = RandTranslate(x=(0.25, 0.25))(make_results(img.copy()))['img']
    np.testing.assert_array_equal(translated, mmcv.imtranslate(img, 16, 'horizontal', border_value=fill))
    translated = RandTranslate(y=(-0.25, -0.25))(make_results(img.copy()))['img']
    np.testing.assert_array_equal(translated, mmcv.imtranslate(img, -12, 'vertical', border_value=fill))
    rotated = RandRotate(angle=(20, 20))(make_results(img.copy()))['img']
    reference = mmcv.imrotate(img, 20, border_value=fill)  # positive: clockwise, about ((w - 1) / 2, (h - 1) / 2)
    np.testing.assert_array_equal(rotated, reference)


@pytest.mark.parametrize('angle', [-30.0, -7.5, 12.0, 30.0])
@pytest.mark.parametrize('direction', ['horizontal', 'vertical'])
def test_shear_is_mmcv_imshear_with_tanh_factor_and_its_matrix(angle, direction):
    """RandShear = mmcv.imshear(img, tanh(-/+angle)) about the top-left origin; the recorded matrix maps the pattern."""
    magnitude = shear_magnitude(angle, direction)
    assert magnitude == pytest.approx(np.tanh((-1 if direction == 'horizontal' else 1) * np.deg2rad(angle)))
    assert abs(magnitude) <= np.tanh(np.pi / 6) + 1e-12 and np.tanh(np.pi / 6) == pytest.approx(0.4804, abs=1e-4)
    axis = dict(x=(angle, angle)) if direction == 'horizontal' else dict(y=(angle, angle))
    img = pattern_image()
    results = RandShear(**axis)(make_results(img.copy()))
    reference = mmcv.imshear(img, magnitude, direction, border_value=(125, 125, 125))
    np.testing.assert_array_equal(results['img'], reference)
    np.testing.assert_allclose(results['transform_matrix'], shear_matrix(magnitude, direction), atol=1e-6)
    # pixel index (c, r) -> (c + m r, r) or (c, r + m c): box point (c + 0.5, r + 0.5) moves the same way
    column, row = 7.0, 11.0
    moved = map_point(results['transform_matrix'], (column + 0.5, row + 0.5))
    expected = (column + magnitude * row, row) if direction == 'horizontal' else (column, row + magnitude * column)
    np.testing.assert_allclose(moved, np.array(expected) + 0.5, atol=1e-5)
    # the bright square of a black image moves where the recorded matrix says
    sheared = RandShear(**axis, img_fill_val=0)(make_results(square_image(28, 20)))
    np.testing.assert_allclose(centroid(sheared['img']), map_point(sheared['transform_matrix'], (31, 23)),
                               atol=0.25)


def test_shear_along_both_axes_applies_x_then_y_as_two_imshears():
    img = pattern_image()
    np.random.seed(0)
    results = RandShear(x=(-30, 30), y=(-30, 30))(make_results(img.copy()))
    np.random.seed(0)
    x_angle, y_angle = np.random.uniform(-30, 30), np.random.uniform(-30, 30)
    x_factor, y_factor = shear_magnitude(x_angle, 'horizontal'), shear_magnitude(y_angle, 'vertical')
    reference = mmcv.imshear(mmcv.imshear(img, x_factor, 'horizontal', border_value=(125, 125, 125)), y_factor,
                             'vertical', border_value=(125, 125, 125))
    np.testing.assert_array_equal(results['img'], reference)
    np.testing.assert_allclose(results['transform_matrix'],
                               shear_matrix(y_factor, 'vertical') @ shear_matrix(x_factor, 'horizontal'), atol=1e-6)


class Mark:
    """Test transform appending its name to ``results['applied']``."""

    def __init__(self, name):
        self.name = name

    def __call__(self, results):
        results.setdefault('applied', []).append(self.name)
        return results


def test_one_of_applies_exactly_one_uniformly():
    op = OneOf(transforms=[Mark('a'), Mark('b'), Mark('c'), [Mark('d1'), Mark('d2')]])
    np.random.seed(0)
    outcomes = [tuple(op({})['applied']) for _ in range(400)]
    assert set(outcomes) == {('a',), ('b',), ('c',), ('d1', 'd2')}
    assert all(60 <= outcomes.count(choice) <= 140 for choice in set(outcomes))


def test_shuffled_sequential_applies_all_in_random_order():
    op = ShuffledSequential(transforms=[Mark('a'), Mark('b'), [Mark('c1'), Mark('c2')]])
    np.random.seed(0)
    orders = [tuple(op({})['applied']) for _ in range(60)]
    assert all(sorted(order) == ['a', 'b', 'c1', 'c2'] for order in orders)
    assert all(order.index('c2') == order.index('c1') + 1 for order in orders)
    assert len(set(orders)) == 6


def test_multibranch_returns_independent_tagged_views_of_one_image():
    resize = dict(type='RandResize', img_scale=[(64, 32), (128, 96)], multiscale_mode='range', keep_ratio=True)
    op = MultiBranch(unsup_teacher=[resize], unsup_student=[resize, dict(type='RandRotate', img_fill_val=0)],
                     identity=[dict(type='Identity'), dict(type='ExtraAttrs', tag='plain')])
    source = make_results(square_image(20, 10))
    np.random.seed(0)
    views = op(source)
    assert isinstance(views, list) and [view['tag'] for view in views] == ['unsup_teacher', 'unsup_student', 'plain']
    assert all(view['filename'] == 'synthetic.png' for view in views)
    assert not np.allclose(views[0]['transform_matrix'], views[1]['transform_matrix'])
    assert 'transform_matrix' not in source and 'tag' not in source
    np.testing.assert_array_equal(views[2]['img'], source['img'])
    assert not np.shares_memory(views[2]['img'], source['img'])
    # both resized views come from the same source square
    for view in views[:2]:
        np.testing.assert_allclose(centroid(view['img']), map_point(view['transform_matrix'], (23, 13)), atol=0.25)
    assert MultiBranch(a=[dict(type='Identity')], b=[lambda results: None])(source) is None


def test_pseudo_samples_gives_empty_ground_truth():
    results = PseudoSamples(with_bbox=True)(dict(img=square_image(20, 10), img_shape=(HEIGHT, WIDTH, 3)))
    assert results['gt_bboxes'].shape == (0, 4) and results['gt_bboxes'].dtype == np.float32
    assert results['gt_labels'].shape == (0,) and results['gt_labels'].dtype == np.int64
    assert results['bbox_fields'] == ['gt_bboxes']
    results = RandRotate()(RandFlip(flip_ratio=1.0)(results))
    assert results['gt_bboxes'].shape == (0, 4) and results['gt_labels'].shape == (0,)
    with pytest.raises(KeyError, match='gt_bboxes'):
        PseudoSamples()(make_results(square_image(20, 10)))
    assert ExtraAttrs(tag='sup', weight=2)({})['tag'] == 'sup'


def softteacher_pipelines():
    scale = dict(type='RandResize', img_scale=[(96, 40), (96, 72)], multiscale_mode='range', keep_ratio=True)
    colour = dict(type='OneOf', transforms=[dict(type=name) for name in COLOUR_NAMES])
    geometric = dict(type='OneOf', transforms=[
        dict(type='RandTranslate', x=(-0.1, 0.1)), dict(type='RandTranslate', y=(-0.1, 0.1)),
        dict(type='RandRotate', angle=(-30, 30)),
        [dict(type='RandShear', x=(-30, 30)), dict(type='RandShear', y=(-30, 30))]])
    formatting = [dict(type='Pad', size_divisor=32),
                  dict(type='Normalize', mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False),
                  dict(type='DefaultFormatBundle'),
                  dict(type='CollectWithMatrix', keys=['img', 'gt_bboxes', 'gt_labels'])]
    labeled = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True), scale,
               dict(type='RandFlip', flip_ratio=0.5), colour, dict(type='ExtraAttrs', tag='sup'), *formatting]
    weak = [scale, dict(type='RandFlip', flip_ratio=0.5), *formatting]
    strong = [scale, dict(type='RandFlip', flip_ratio=0.5),
              dict(type='ShuffledSequential', transforms=[colour, geometric]),
              dict(type='RandErase', n_iterations=(1, 5), size=[0, 0.2], squared=True), *formatting]
    unlabeled = [dict(type='LoadImageFromFile'), dict(type='PseudoSamples', with_bbox=True),
                 dict(type='MultiBranch', unsup_teacher=weak, unsup_student=strong)]
    return Compose(labeled), Compose(unlabeled)


def dataset_item(tmp_path, with_ann):
    item = dict(img_info=dict(filename='img.png', height=HEIGHT, width=WIDTH), img_prefix=str(tmp_path),
                seg_prefix=None, proposal_file=None, bbox_fields=[], mask_fields=[], seg_fields=[])
    if with_ann:
        item['ann_info'] = dict(bboxes=BOXES[:2].copy(), labels=LABELS[:2].copy())
    return item


def test_full_pipelines_and_collate_batch_structure(tmp_path):
    cv2.imwrite(str(tmp_path / 'img.png'), np.random.RandomState(0).randint(0, 256, (HEIGHT, WIDTH, 3), np.uint8))
    labeled_pipeline, unlabeled_pipeline = softteacher_pipelines()
    np.random.seed(0)
    labeled = labeled_pipeline(dataset_item(tmp_path, with_ann=True))
    unlabeled = [unlabeled_pipeline(dataset_item(tmp_path, with_ann=False)) for _ in range(2)]
    assert isinstance(labeled, dict) and all(isinstance(item, list) and len(item) == 2 for item in unlabeled)

    batch = semi_collate([labeled, *unlabeled], samples_per_gpu=3)
    assert set(batch) == {'img', 'img_metas', 'gt_bboxes', 'gt_labels'}
    assert len(batch['img'].data) == 1 and len(batch['img_metas'].data) == 1
    img, metas = batch['img'].data[0], batch['img_metas'].data[0]
    heights = [meta['pad_shape'][0] for meta in metas]
    widths = [meta['pad_shape'][1] for meta in metas]
    assert img.shape == (5, 3, max(heights), max(widths)) and img.dtype == torch.float32
    assert all(size % 32 == 0 for size in heights + widths)
    assert [meta['tag'] for meta in metas] == ['sup', 'unsup_teacher', 'unsup_student', 'unsup_teacher',
                                               'unsup_student']
    assert all(meta['transform_matrix'].shape == (3, 3) and meta['transform_matrix'].dtype == np.float32
               for meta in metas)
    gt_bboxes, gt_labels = batch['gt_bboxes'].data[0], batch['gt_labels'].data[0]
    assert len(gt_bboxes) == len(gt_labels) == 5
    assert all(boxes.shape == (0, 4) for boxes in gt_bboxes[1:]) and all(len(labels) == 0 for labels in gt_labels[1:])
    expected = transform_bboxes_numpy(BOXES[:2], metas[0]['transform_matrix'], metas[0]['img_shape'])
    np.testing.assert_allclose(gt_bboxes[0].numpy(), expected, atol=1e-3)
    assert gt_labels[0].tolist() == [2, 0]
    with pytest.raises(ValueError, match='samples_per_gpu=2'):
        semi_collate([labeled, *unlabeled], samples_per_gpu=2)


def test_collate_rejects_views_with_different_keys():
    view = dict(img_metas=1, img=torch.zeros(1))
    with pytest.raises(KeyError, match='view 2'):
        semi_collate([view, [dict(view), dict(img=torch.zeros(1))]], samples_per_gpu=2)
    with pytest.raises(TypeError, match='str'):
        semi_collate(['not a view'], samples_per_gpu=1)


def test_collect_with_matrix_carries_matrix_and_tag():
    metas = {key: key for key in SEMI_META_KEYS if key != 'transform_matrix'}
    collected = CollectWithMatrix(keys=['img'])(dict(metas, img=1))
    assert collected['img'] == 1 and collected['img_metas'].data['tag'] == 'tag'
    np.testing.assert_array_equal(collected['img_metas'].data['transform_matrix'], np.eye(3))
