"""Text log lines a researcher can read: per-class vectors summarised, no per-parameter init table.

``GradientResamplingHook`` logs per-class lists (``gbt_thresholds`` [C], ``gbr_weights`` [C + 1]);
on LVIS a stock ``TextLoggerHook`` line carries 2 x 1,203 floats. :class:`SummaryTextLoggerHook`
writes each list as ``min / median / max`` and the few most telling classes by name (lowest
thresholds, highest weights) to the console and ``.log``; ``.log.json`` keeps every value.
:func:`init_weights_quietly` keeps mmcv's per-parameter initialisation table (three lines per
parameter, over a thousand for a teacher-student R50) out of the ``.log``.
"""
import logging
import statistics

from mmcv.runner import HOOKS, TextLoggerHook
from mmcv.utils.logging import get_logger, logger_initialized

from ssod.hooks.tensorboard_logger import element_names

EXTREME_CLASSES = 3
EXTREMES = {"gbt_thresholds": "lowest", "gbr_weights": "highest"}  # the classes GbT/GbR act on most
SHORT_LIST = 8  # other lists up to this length are written as they are


def summarise(key: str, values, class_names=None) -> str:
    """``min a med b max c[, lowest|highest name v, ...]`` of the list ``values`` logged under ``key``."""
    if not values or (key not in EXTREMES and len(values) <= SHORT_LIST):
        return str(list(values))
    values = [float(v) for v in values]
    text = f"min {min(values):.4g} med {statistics.median(values):.4g} max {max(values):.4g}"
    end = EXTREMES.get(key)
    if end is None:
        return f"{len(values)} values, {text}"
    ranked = sorted(zip(values, element_names(key, len(values), class_names)), reverse=end == "highest")
    picked = ", ".join(f"{name} {value:.4g}" for value, name in ranked[:EXTREME_CLASSES])
    return f"{text}, {end} {picked}"


@HOOKS.register_module()
class SummaryTextLoggerHook(TextLoggerHook):
    """mmcv's ``TextLoggerHook`` (same arguments) whose text lines summarise list values (see module doc).

    Class names come from ``runner.meta['CLASSES']`` (set by ``tools/train.py``), else from the
    model's ``CLASSES``; without either, elements are named by index.
    """

    def before_run(self, runner) -> None:
        super().before_run(runner)
        names = (runner.meta or {}).get("CLASSES")
        if names is None:
            names = getattr(getattr(runner.model, "module", runner.model), "CLASSES", None)
        self.class_names = None if names is None else list(names)

    def _log_info(self, log_dict, runner) -> None:
        readable = {key: summarise(key, value, self.class_names) if isinstance(value, (list, tuple)) else value
                    for key, value in log_dict.items()}
        super()._log_info(readable, runner)


def init_weights_quietly(model) -> None:
    """``model.init_weights()`` without mmcv's initialisation table in the console or ``.log``.

    mmcv's ``BaseModule.init_weights`` writes the table to the first logger mmcv created (into its
    file handlers, else through it at INFO) and logs each ``init_cfg`` at INFO. Here that logger's
    file handlers are detached and its level raised to WARNING meanwhile; warnings still get through.
    """
    logger = get_logger(next(iter(logger_initialized), "mmcv"))
    file_handlers = [handler for handler in logger.handlers if isinstance(handler, logging.FileHandler)]
    level = logger.level
    for handler in file_handlers:
        logger.removeHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
        for handler in file_handlers:
            logger.addHandler(handler)
