r"""Build the labeled and unlabeled annotation files of a CI-SSOD MS-COCO split (spec A.1).

    python tools/dataset/split_coco.py --ann dataset/coco/annotations/instances_train2017.json \
        --base-list BASE.txt --novel-list NOVEL.txt --split 1 --out-dir dataset/coco/annotations

writes ``instances_train2017_coco_split1_label.json`` and ``instances_train2017_coco_split1_unlabel.json``:

* labeled = the images of either list. Base-list images keep only the annotations of base classes (their
  novel-class objects become unlabeled background); novel-list images keep all annotations. An image on
  both lists keeps all.
* unlabeled = every other image, with its annotations copied (as in the upstream files) and its ``info``
  saying they are not labels (``annotations_are_labels: false``).

Split 1's novel classes are the 20 PASCAL-VOC classes, split 2's the 40 classes of spec A.1. The list
format is described in ``split_common.py`` (ids or file names, ``#`` comments). Output is deterministic.
"""
import argparse
import sys

from split_common import (ImageIndex, SplitError, category_names, coco_novel_category_ids, configure_logging,
                          list_provenance, load_annotations, output_paths, read_image_list, split_files,
                          write_json)

GENERATOR = "ssod-split-coco"


def build_coco_split(data, base_ids, novel_ids, split, provenance=None, source="annotation file"):
    """The (labeled, unlabeled) annotation dicts of COCO split ``split`` from the two image-id lists."""
    novel_categories = coco_novel_category_ids(split, data, source)
    names = category_names(data, source)
    novel_category_set = set(novel_categories)
    novel_image_set = set(novel_ids)

    def keep(annotation):
        return annotation["image_id"] in novel_image_set or annotation.get("category_id") not in novel_category_set

    info = {
        "generator": GENERATOR,
        "split": f"coco_split{split}",
        "novel_category_ids": list(novel_categories),
        "novel_classes": [names[i] for i in novel_categories],
        "base_classes": [names[i] for i in sorted(names) if i not in novel_category_set],
        **(provenance or {}),
    }
    labeled, unlabeled = split_files(data, set(base_ids) | novel_image_set, info, keep, source)
    labeled["info"]["few_shot_image_ids"] = sorted(novel_image_set)
    return labeled, unlabeled


def build_parser():
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--ann", required=True, help="full COCO train annotation file (instances_train2017.json)")
    parser.add_argument("--base-list", required=True, help="image list of the base part (about 10 %% of train)")
    parser.add_argument("--novel-list", required=True, help="image list of the novel few-shot part")
    parser.add_argument("--split", required=True, type=int, choices=(1, 2), help="which novel class list")
    parser.add_argument("--out-dir", required=True, help="folder of the two output files")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        data = load_annotations(args.ann)
        index = ImageIndex(data, args.ann)
        base_ids = read_image_list(args.base_list, index)
        novel_ids = read_image_list(args.novel_list, index)
        provenance = {"base_list": {**list_provenance(args.base_list), "num_images": len(base_ids)},
                      "novel_list": {**list_provenance(args.novel_list), "num_images": len(novel_ids)}}
        labeled, unlabeled = build_coco_split(data, base_ids, novel_ids, args.split, provenance, args.ann)
    except SplitError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    both = len(set(base_ids) & set(novel_ids))
    for path, part in zip(output_paths(args.ann, args.out_dir, f"coco_split{args.split}"), (labeled, unlabeled)):
        write_json(part, path)
        sys.stdout.write(f"{path}: {len(part['images'])} images, {len(part['annotations'])} annotations\n")
    sys.stdout.write(f"images on both lists (kept with all annotations): {both}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
