"""Teacher-student wrapper: two detectors built from one config, one of them frozen."""
import copy

from mmcv.utils import ConfigDict
from mmdet.models.builder import DETECTORS, build_detector
from mmdet.models.detectors.base import BaseDetector

INFERENCE_MODELS = ("teacher", "student")


@DETECTORS.register_module()
class MultiStreamDetector(BaseDetector):
    """Holds a trained ``student`` and a frozen ``teacher`` (updated by an EMA hook).

    Args:
        model (dict): config of the detector both submodules are built from.
        train_cfg (dict, optional): semi-supervised training options (used by subclasses).
        test_cfg (dict, optional): ``inference_on`` ('teacher' or 'student') selects the
            submodule used by ``forward_test`` / ``simple_test`` / ``aug_test``.
        init_cfg (dict, optional): mmcv init config of the wrapper.

    ``iter_num`` is the runner's 0-based iteration, set before every step by
    ``SetIterNumHook`` (or through ``train_step(..., iter_num=t)``); -1 means unknown.
    The teacher's parameters have ``requires_grad=False``: they never receive gradients,
    so an optimizer built over all parameters leaves them untouched.
    """

    def __init__(self, model: dict, train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(init_cfg)
        self.student = build_detector(ConfigDict(copy.deepcopy(model)))
        self.teacher = build_detector(ConfigDict(copy.deepcopy(model)))
        self.teacher.requires_grad_(False)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        inference_on = (test_cfg or {}).get("inference_on", "teacher")
        if inference_on not in INFERENCE_MODELS:
            raise ValueError(f"test_cfg.inference_on = {inference_on!r}; expected one of {INFERENCE_MODELS}")
        self.inference_on = inference_on
        self.iter_num = -1

    @property
    def inference_model(self) -> BaseDetector:
        """The submodule named by ``test_cfg.inference_on``."""
        return getattr(self, self.inference_on)

    def extract_feat(self, imgs):
        return self.inference_model.extract_feat(imgs)

    def forward_test(self, imgs, img_metas, **kwargs):
        return self.inference_model.forward_test(imgs, img_metas, **kwargs)

    def simple_test(self, img, img_metas, **kwargs):
        return self.inference_model.simple_test(img, img_metas, **kwargs)

    def aug_test(self, imgs, img_metas, **kwargs):
        return self.inference_model.aug_test(imgs, img_metas, **kwargs)

    def train_step(self, data, optimizer, iter_num=None):
        """mmdet ``train_step``; ``iter_num``, when the runner passes it, overrides ``self.iter_num``."""
        if iter_num is not None:
            self.iter_num = int(iter_num)
        return super().train_step(data, optimizer)
