"""Evaluation during training: the whole detector, or the teacher and the student in turn."""
from mmcv.runner import HOOKS, EvalHook

from ssod.apis.inference import collect_detections
from ssod.utils.dist_utils import broadcast_object, is_main_process, unwrap_model


@HOOKS.register_module()
class DetEvalHook(EvalHook):
    """Evaluate on every rank's share of the val set; rank 0 computes the metrics.

    For a teacher-student detector (one with ``teacher`` and ``student``) each
    submodule in ``submodules`` is evaluated and its metrics are logged with a
    ``teacher.``/``student.`` prefix (e.g. ``teacher.bbox_mAP``). ``save_best`` may
    name a prefixed key. Works with and without a process group.
    """

    def __init__(self, dataloader, submodules=("teacher", "student"), **kwargs):
        kwargs.setdefault("by_epoch", False)
        super().__init__(dataloader, test_fn=collect_detections, **kwargs)
        self.submodules = tuple(submodules)

    def _evaluated_submodules(self, runner):
        detector = unwrap_model(runner.model)
        if hasattr(detector, "teacher") and hasattr(detector, "student"):
            return self.submodules
        return (None,)

    def _do_evaluate(self, runner):
        metrics = {}
        for submodule in self._evaluated_submodules(runner):
            results = collect_detections(runner.model, self.dataloader, submodule=submodule)
            if not is_main_process():
                continue
            prefix = f"{submodule}." if submodule else ""
            runner.logger.info(f"evaluating {submodule or 'the detector'}")
            scores = self.dataloader.dataset.evaluate(results, logger=runner.logger, **self.eval_kwargs)
            metrics.update({prefix + key: value for key, value in scores.items()})
        metrics = broadcast_object(metrics)
        for name, value in metrics.items():
            runner.log_buffer.output[name] = value
        runner.log_buffer.output["eval_iter_num"] = len(self.dataloader)
        runner.log_buffer.ready = True
        if self.save_best and metrics:
            if self.key_indicator == "auto":
                self._init_rule(self.rule, next(iter(metrics)))
            if is_main_process():
                self._save_ckpt(runner, metrics[self.key_indicator])
