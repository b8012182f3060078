"""Draw what the training pipelines produce, to check augmentations and boxes by eye.

Usage: python tools/misc/browse_dataset.py CONFIG [--out DIR] [--num N] [--seed S] [--cfg-options ...]

For ``data.train`` of CONFIG (a ``SemiDataset``, or any labeled detection dataset):

* labeled images: ``labeled_<i>_<file>.png``, the image after the pipeline with its ground
  truth boxes (class name on each box);
* unlabeled images: ``unlabeled_<i>_<file>.png``, the views side by side (weak teacher view |
  strong student view) at the same pixel scale. Their (empty) ground truth is not drawn;
  instead the border of the original image is mapped into each view through the view's
  ``transform_matrix`` (dot: the original top-left corner), and so are the image's
  annotations when its annotation file has any (dashed; training does not use them). Both
  must lie on the image content: they show the geometric transform each view went through.

Images are un-normalised with the ``img_norm_cfg`` their ``Normalize`` step recorded and
cropped to ``img_shape`` (the padding is not shown). Paths in the config are relative to the
current directory, as for training.
"""
import argparse
import os
import os.path as osp

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402
from mmcv import Config, DictAction  # noqa: E402
from mmdet.datasets import build_dataset  # noqa: E402
from mmdet.utils import get_root_logger  # noqa: E402

import ssod  # noqa: F401,E402  (registers ssod's datasets and pipelines)

DPI = 100
VIEW_HEIGHT_INCHES = 5.0
BORDER_COLOR = "white"
OUTLINE = [patheffects.withStroke(linewidth=4.5, foreground="black")]
MARGIN = 6  # pixels around the union of a view and the mapped original border


def class_colors(num_classes):
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "hsv")
    return [cmap(i if num_classes <= 10 else i / num_classes) for i in range(num_classes)]


def unnormalise(img, img_meta):
    """``[3, H, W]`` normalised tensor -> ``[h, w, 3]`` uint8 RGB, cropped to ``img_shape``."""
    norm = img_meta.get("img_norm_cfg")
    if norm is None:
        raise KeyError(f"img_meta of {img_meta.get('filename')!r} has no 'img_norm_cfg'; the pipeline needs a "
                       "Normalize step and a Collect keeping 'img_norm_cfg'")
    pixels = img.detach().cpu().numpy().transpose(1, 2, 0) * norm["std"] + norm["mean"]
    if not norm["to_rgb"]:
        pixels = pixels[..., ::-1]  # the image stayed BGR
    height, width = img_meta["img_shape"][:2]
    return np.clip(pixels[:height, :width], 0, 255).astype(np.uint8)


def map_points(points, matrix):
    """``[n, 2]`` original-image points mapped through a 3x3 view matrix."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    mapped = homogeneous @ np.asarray(matrix, dtype=np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]


def box_corners(box):
    x1, y1, x2, y2 = box[:4]
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def draw_label(ax, x, y, text, color):
    ax.text(x, y, text, fontsize=8, color="black", va="bottom",
            bbox=dict(facecolor=color, alpha=0.8, pad=1, edgecolor="none"))


def draw_gt_boxes(ax, bboxes, labels, names, colors):
    for box, label in zip(bboxes, labels):
        x1, y1, x2, y2 = box[:4]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colors[label], linewidth=2))
        draw_label(ax, x1, y1, names[label], colors[label])


def draw_original_frame(ax, matrix, ori_shape, ann_bboxes, ann_labels, names, colors):
    """The original image border, its top-left corner and its annotations mapped into a view."""
    height, width = ori_shape[:2]
    border = map_points(box_corners((0, 0, width, height)), matrix)
    ax.add_patch(Polygon(border, closed=True, fill=False, edgecolor=BORDER_COLOR, linewidth=2.5,
                         path_effects=OUTLINE, label="original image border"))
    ax.plot(*border[0], "o", color=BORDER_COLOR, markeredgecolor="black", markersize=9,
            label="original top-left corner")
    for box, label in zip(ann_bboxes, ann_labels):
        corners = map_points(box_corners(box), matrix)
        ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor=colors[label], linewidth=1.5,
                             linestyle="--"))
        draw_label(ax, *corners[0], names[label], colors[label])


def view_data(view):
    """``(img tensor, img_meta)`` of one collected view."""
    return view["img"].data, view["img_metas"].data


def save(fig, path):
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    get_root_logger().info(f"wrote {path}")
    return path


def draw_labeled(item, names, path):
    img, meta = view_data(item)
    image = unnormalise(img, meta)
    height, width = image.shape[:2]
    fig, ax = plt.subplots(figsize=(VIEW_HEIGHT_INCHES * width / height + 0.5, VIEW_HEIGHT_INCHES + 0.7))
    ax.imshow(image)
    colors = class_colors(len(names))
    bboxes = item["gt_bboxes"].data.numpy()
    draw_gt_boxes(ax, bboxes, item["gt_labels"].data.numpy(), names, colors)
    ax.set_title(f"{osp.basename(meta['filename'])} [{meta.get('tag', 'labeled')}]: {len(bboxes)} ground truth "
                 f"boxes after the pipeline, {width}x{height}", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return save(fig, path)


def view_extent(image, meta):
    """``(x0, x1, y0, y1)`` covering the view and the original border mapped into it, plus a margin."""
    height, width = meta["ori_shape"][:2]
    border = map_points(box_corners((0, 0, width, height)), meta["transform_matrix"])
    x0, y0 = np.minimum(border.min(axis=0), 0) - MARGIN
    x1, y1 = np.maximum(border.max(axis=0), image.shape[1::-1]) + MARGIN
    return x0, x1, y0, y1


def draw_unlabeled(views, ann, names, path):
    """Views side by side at the same pixel scale, each with the mapped original frame."""
    images = [unnormalise(*view_data(view)) for view in views]
    extents = [view_extent(image, view["img_metas"].data) for image, view in zip(images, views)]
    y0, y1 = min(e[2] for e in extents), max(e[3] for e in extents)
    widths = [e[1] - e[0] for e in extents]
    inches_per_pixel = VIEW_HEIGHT_INCHES / (y1 - y0)
    fig, axes = plt.subplots(1, len(views), squeeze=False, gridspec_kw=dict(width_ratios=widths),
                             figsize=(inches_per_pixel * sum(widths) + 1.0, VIEW_HEIGHT_INCHES + 1.5))
    colors = class_colors(len(names))
    for ax, view, image, extent in zip(axes[0], views, images, extents):
        meta = view["img_metas"].data
        ax.imshow(image)
        draw_original_frame(ax, meta["transform_matrix"], meta["ori_shape"], ann["bboxes"], ann["labels"],
                            names, colors)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(y1, y0)
        flip = f", flipped {meta['flip_direction']}" if meta.get("flip") else ""
        ax.set_title(f"{meta.get('tag', 'view')}: {image.shape[1]}x{image.shape[0]}{flip}", fontsize=10)
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, facecolor="darkgray")
    fig.suptitle(f"{osp.basename(views[0]['img_metas'].data['filename'])}: unlabeled views; dashed: the "
                 f"image's {len(ann['bboxes'])} annotations (not used in training)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.94))
    return save(fig, path)


def annotated_dataset(dataset):
    """The dataset below index-preserving wrappers (``.dataset``) that holds ``data_infos``."""
    while not hasattr(dataset, "data_infos"):
        if not hasattr(dataset, "dataset"):
            raise TypeError(f"{type(dataset).__name__} has neither data_infos nor a wrapped dataset")
        dataset = dataset.dataset
    return dataset


def image_annotations(dataset, img_meta):
    """Boxes and labels of the annotation entry of the image (empty arrays when it has none).

    Found by file name: a dataset may draw another image when the pipeline rejects one.
    """
    inner = annotated_dataset(dataset)
    filenames = [info["filename"] for info in inner.data_infos]
    if img_meta["ori_filename"] not in filenames:
        raise KeyError(f"{img_meta['ori_filename']!r} is not an image of {getattr(inner, 'ann_file', inner)!r}")
    info = inner.get_ann_info(filenames.index(img_meta["ori_filename"]))
    return dict(bboxes=np.asarray(info["bboxes"]).reshape(-1, 4), labels=np.asarray(info["labels"], dtype=int))


def labeled_and_unlabeled(dataset):
    """``(labeled dataset, unlabeled dataset or None)`` of a built training set."""
    if hasattr(dataset, "sup") and hasattr(dataset, "unsup"):
        return dataset.sup, dataset.unsup
    return dataset, None


def output_name(kind, index, meta):
    return f"{kind}_{index:04d}_{osp.splitext(osp.basename(meta['filename']))[0]}.png"


def browse(cfg, out_dir, num, seed=0):
    """Write the PNGs of the first ``num`` labeled and ``num`` unlabeled images; returns their paths."""
    np.random.seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    dataset = build_dataset(cfg.data.train)
    names = list(dataset.CLASSES)
    labeled, unlabeled = labeled_and_unlabeled(dataset)
    written = []
    for index in range(min(num, len(labeled))):
        item = labeled[index]
        if isinstance(item, list):
            raise TypeError(f"labeled image {index} gave {len(item)} views; a labeled pipeline gives one")
        written.append(draw_labeled(item, names, osp.join(out_dir, output_name("labeled", index,
                                                                                 item["img_metas"].data))))
    for index in range(min(num, len(unlabeled or []))):
        views = unlabeled[index]
        if not isinstance(views, list):
            raise TypeError(f"unlabeled image {index} gave one view; expected the views of a MultiBranch step")
        meta = views[0]["img_metas"].data
        path = osp.join(out_dir, output_name("unlabeled", index, meta))
        written.append(draw_unlabeled(views, image_annotations(unlabeled, meta), names, path))
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw training images after the pipelines (boxes, views)")
    parser.add_argument("config", help="config file")
    parser.add_argument("--out", default="work_dirs/browse_dataset", help="output folder")
    parser.add_argument("--num", type=int, default=5, help="labeled and unlabeled images to draw (each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random augmentations")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, key=value")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    browse(cfg, args.out, args.num, args.seed)


if __name__ == "__main__":
    main()
