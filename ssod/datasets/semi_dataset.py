"""SemiDataset: the labeled and the unlabeled dataset side by side (labeled first)."""
from mmdet.datasets import DATASETS, ClassBalancedDataset, ConcatDataset, RepeatDataset, build_dataset

# Wrappers that repeat indices inside the dataset, which would break the sampler's index space.
INDEX_REPEATING_WRAPPERS = (ClassBalancedDataset, RepeatDataset)


@DATASETS.register_module()
class SemiDataset(ConcatDataset):
    """Concatenation of a labeled (``sup``) and an unlabeled (``unsup``) dataset.

    Both are built from their configs with mmdet's ``build_dataset``. Indices
    ``[0, len(sup))`` are labeled images and the rest unlabeled ones. Images are not
    repeated here: repeat factors (RFS, CrS) live in ``SemiBalanceSampler``. Mark the labeled
    side with ``ClassBalancedDatasetRFS`` (its factors reach the sampler through
    :meth:`sup_repeat_factors`) and the unlabeled side with ``ClassBalancedDatasetCrS``;
    mmdet's ``ClassBalancedDataset`` / ``RepeatDataset`` are refused.
    ``flag`` (aspect-ratio group, 1 if w > h) and ``CLASSES`` come from the parts.
    """

    def __init__(self, sup, unsup):
        datasets = [build_dataset(sup), build_dataset(unsup)]
        for name, dataset in zip(("sup", "unsup"), datasets):
            if isinstance(dataset, INDEX_REPEATING_WRAPPERS):
                raise TypeError(f"SemiDataset: the {name} dataset is a {type(dataset).__name__}, which repeats "
                                "indices inside the dataset; use ClassBalancedDatasetRFS (labeled) or "
                                "ClassBalancedDatasetCrS (unlabeled), whose repeat factors the sampler applies")
            flag = getattr(dataset, "flag", None)
            if flag is None or len(flag) != len(dataset):
                raise ValueError(f"SemiDataset: the {name} dataset ({type(dataset).__name__}) "
                                 f"needs an aspect-ratio 'flag' per image; is it in test_mode?")
        super().__init__(datasets)

    @property
    def sup(self):
        return self.datasets[0]

    @property
    def unsup(self):
        return self.datasets[1]

    @property
    def source_sizes(self):
        return len(self.sup), len(self.unsup)

    def sup_repeat_factors(self):
        """Repeat factors of the labeled images (RFS wrapper), or None for uniform sampling."""
        repeat_factors = getattr(self.sup, "repeat_factors", None)
        return None if repeat_factors is None else repeat_factors()
