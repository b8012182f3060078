"""Pipeline steps that turn one loaded image into semi-supervised training views.

``MultiBranch`` builds several independently augmented views of one image (e.g. the weak
teacher view and the strong student view), ``PseudoSamples`` gives unlabeled images empty
ground truth so box-aware transforms and the collate work, ``ExtraAttrs`` sets plain keys
(``tag='sup'``) and ``CollectWithMatrix`` is mmdet's ``Collect`` whose image metas also carry
``transform_matrix`` and ``tag``.
"""
import copy

import numpy as np
from mmdet.datasets.builder import PIPELINES
from mmdet.datasets.pipelines import Collect, Compose

from .transforms import MATRIX_KEY

SEMI_META_KEYS = ('filename', 'ori_filename', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
                  'flip', 'flip_direction', 'img_norm_cfg', MATRIX_KEY, 'tag')


@PIPELINES.register_module()
class ExtraAttrs:
    """Set ``results[key] = value`` for every keyword argument (a copy of the value)."""

    def __init__(self, **attrs):
        self.attrs = attrs

    def __call__(self, results):
        results.update(copy.deepcopy(self.attrs))
        return results


@PIPELINES.register_module()
class PseudoSamples:
    """Attach empty ground truth to an unlabeled image.

    ``with_bbox``: ``gt_bboxes`` float32 ``[0, 4]``, ``gt_labels`` int64 ``[0]``, and
    ``'gt_bboxes'`` registered in ``bbox_fields``.
    """

    def __init__(self, with_bbox=True):
        self.with_bbox = with_bbox

    def __call__(self, results):
        if self.with_bbox:
            for key in ('gt_bboxes', 'gt_labels'):
                if key in results:
                    raise KeyError(f'PseudoSamples would overwrite existing results[{key!r}]; '
                                   'it is meant for unlabeled images only')
            results['gt_bboxes'] = np.zeros((0, 4), dtype=np.float32)
            results['gt_labels'] = np.zeros((0,), dtype=np.int64)
            bbox_fields = results.setdefault('bbox_fields', [])
            if 'gt_bboxes' not in bbox_fields:
                bbox_fields.append('gt_bboxes')
        return results


@PIPELINES.register_module()
class MultiBranch:
    """Run each named pipeline on its own deep copy of the results; return the list of views.

    Views come in keyword order (e.g. ``unsup_teacher=[...], unsup_student=[...]``). Each copy
    gets ``tag=<branch name>`` before its pipeline runs, so a branch may override it. Returns
    None (the dataset then draws another image) if any branch returns None.
    """

    def __init__(self, **branch_pipelines):
        if not branch_pipelines:
            raise ValueError('MultiBranch needs at least one named branch pipeline')
        self.branches = {name: Compose(pipeline) for name, pipeline in branch_pipelines.items()}

    def __call__(self, results):
        views = []
        for name, pipeline in self.branches.items():
            branch_results = copy.deepcopy(results)
            branch_results['tag'] = name
            view = pipeline(branch_results)
            if view is None:
                return None
            views.append(view)
        return views


@PIPELINES.register_module()
class CollectWithMatrix(Collect):
    """mmdet ``Collect`` with meta keys :data:`SEMI_META_KEYS` by default.

    An image that went through no geometric step gets the identity ``transform_matrix``;
    ``tag`` must have been set (``ExtraAttrs`` or ``MultiBranch``).
    """

    def __init__(self, keys, meta_keys=SEMI_META_KEYS):
        super().__init__(keys, meta_keys=meta_keys)

    def __call__(self, results):
        results.setdefault(MATRIX_KEY, np.eye(3, dtype=np.float32))
        return super().__call__(results)
