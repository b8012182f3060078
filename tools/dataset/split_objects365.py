r"""Build the labeled and unlabeled Objects365 annotation files of the CI-SSOD MS-COCO -> Objects365 setting.

    python tools/dataset/split_objects365.py --ann dataset/Object365/annotations/zhiyuan_objv2_train.json \
        --labeled-list O365_IDS.txt --out-dir dataset/Object365/annotations

writes ``zhiyuan_objv2_train_object365_label.json`` (the listed images with all their annotations; the
labeled set of spec A.2 is these plus all of COCO train2017, joined by the dataset config) and
``zhiyuan_objv2_train_object365_unlabel.json`` (every other image, annotations copied as in the upstream
files and marked ``annotations_are_labels: false`` in ``info``). Image records are copied unchanged. The
list format is described in ``split_common.py`` (image ids or file names, ``#`` comments). Runs in linear
time in the number of images and annotations; the 1.7M-image file needs memory for one JSON load.
"""
import sys

from split_common import labeled_list_main

if __name__ == "__main__":
    sys.exit(labeled_list_main(None, __doc__, "object365", "ssod-split-objects365"))
