r"""Build the labeled and unlabeled annotation files of the CI-SSOD LVIS setting (spec A.3).

    python tools/dataset/split_lvis.py --ann dataset/lvis/annotations/lvis_v1_train.json \
        --labeled-list LVIS_IDS.txt --out-dir dataset/lvis/annotations

writes ``lvis_v1_train_lvis_label.json`` (the listed images with all their annotations) and
``lvis_v1_train_lvis_unlabel.json`` (every other image, annotations copied as in the upstream files and
marked ``annotations_are_labels: false`` in ``info``). Image records are copied unchanged, so the LVIS
fields (``neg_category_ids``, ``not_exhaustive_category_ids``, ``coco_url``, ...) stay. The list format is
described in ``split_common.py`` (image ids or file names, ``#`` comments). Output is deterministic.
"""
import sys

from split_common import labeled_list_main

if __name__ == "__main__":
    sys.exit(labeled_list_main(None, __doc__, "lvis", "ssod-split-lvis"))
