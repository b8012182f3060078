"""ssod: class-imbalanced semi-supervised object detection (CI-SSOD) as an mmdet 2.x plugin.

``import ssod`` registers every ssod dataset, pipeline, sampler, model, loss and hook
into the mmdet/mmcv registries, so configs refer to them by type name only.
"""
from ssod import compat

compat.apply()

from ssod import datasets, hooks, models  # noqa: E402,F401  (registration side effects)
from ssod.apis import checkpoint, text_logger  # noqa: E402,F401  (safe checkpoint loader, log hook)

__version__ = "0.1.0"
