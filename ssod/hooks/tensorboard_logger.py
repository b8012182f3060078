"""TensorBoard logging that also takes the list-valued CI-SSOD log entries.

mmcv's ``TensorboardLoggerHook`` hands every log-buffer value to ``SummaryWriter.add_scalar``.
``GradientResamplingHook`` logs lists (``gbt_thresholds`` [C], ``gbr_weights`` [C + 1],
``crs_repeat_hist``), which ``add_scalar`` rejects, so the stock hook stops a GrS run at its
first save. :class:`PerClassTensorboardLoggerHook` writes each element of a list as its own
scalar ``<mode>/<key>/<element>``: the class name for per-class lists (``background`` for the
extra GbR entry), ``repeat_<k>`` for the CrS histogram, the index otherwise.

It needs the ``tensorboard`` package (not a dependency of ssod: ``pip install tensorboard``);
without it the run stops before the first iteration with mmcv's ImportError naming it.
"""
from mmcv.runner import HOOKS, TensorboardLoggerHook
from mmcv.runner.dist_utils import master_only

REPEAT_HISTOGRAM_KEY = "crs_repeat_hist"  # entry k counts the images repeated k + 1 times


def element_names(key, length, class_names=None):
    """Tag suffix of each element of the list logged under ``key`` (last part of the tag)."""
    if key == REPEAT_HISTOGRAM_KEY:
        return [f"repeat_{k + 1}" for k in range(length)]
    if class_names is not None and length == len(class_names):
        return list(class_names)
    if class_names is not None and length == len(class_names) + 1:
        return list(class_names) + ["background"]
    return [str(k) for k in range(length)]


@HOOKS.register_module()
class PerClassTensorboardLoggerHook(TensorboardLoggerHook):
    """mmcv's ``TensorboardLoggerHook`` (same arguments) with list values split into scalars.

    Class names come from ``runner.meta['CLASSES']`` (set by ``tools/train.py``), else from the
    model's ``CLASSES``; without either, elements are named by index.
    """

    @master_only
    def before_run(self, runner) -> None:
        super().before_run(runner)
        names = (runner.meta or {}).get("CLASSES")
        if names is None:
            model = getattr(runner.model, "module", runner.model)
            names = getattr(model, "CLASSES", None)
        self.class_names = None if names is None else list(names)

    @master_only
    def log(self, runner) -> None:
        step = self.get_iter(runner)
        for tag, value in self.get_loggable_tags(runner, allow_text=True).items():
            if isinstance(value, str):
                self.writer.add_text(tag, value, step)
            elif isinstance(value, (list, tuple)):
                key = tag.rsplit("/", 1)[-1]
                for name, element in zip(element_names(key, len(value), self.class_names), value):
                    self.writer.add_scalar(f"{tag}/{name}", element, step)
            else:
                self.writer.add_scalar(tag, value, step)
