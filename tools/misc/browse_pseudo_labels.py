"""Draw the teacher's pseudo labels of a checkpoint on unlabeled training images.

Usage: python tools/misc/browse_pseudo_labels.py CONFIG CHECKPOINT [--out DIR] [--num N]
       [--score-thr S] [--seed S] [--device DEV] [--cfg-options ...]

CONFIG is a SoftTeacher or SoftTeacherGrS config whose ``data.train`` is a ``SemiDataset``;
use the config dumped in the run's work dir, which holds the run's ``--cfg-options`` (e.g. a
changed ``warm_up_iter``).
For the first N images of ``data.train.unsup`` (the CrS wrapper is transparent), the teacher
of CHECKPOINT runs on the weak view (``unsup_teacher`` branch of the unlabeled pipeline) the
way training does (SoftTeacher's teacher step: training proposal config, test RCNN config,
no side effects on the GbT statistics), and its detections are drawn on the original image:

* green, solid: pseudo labels for the RCNN classification loss, ``score > thr[class]``
  (and past the initial filter);
* orange, dashed: past the initial filter ``score > pseudo_label_initial_score_thr`` (and
  wider and taller than ``min_pseduo_box_size``) but not above the class threshold;
* gray, dotted: stopped by the initial filter (drawn from ``--score-thr`` on).

Class thresholds: SoftTeacherGrS from ``warm_up_iter`` on uses the GbT thresholds of the
checkpointed tracker (``current_class_thresholds()``; with ``GbT=True`` they also use the
checkpointed GbR class weights); before ``warm_up_iter``, and for SoftTeacher, the fixed
``cls_pseudo_threshold``. The checkpoint's ``meta['iter']`` (finished iterations) is the
iteration compared with ``warm_up_iter``. ``summary.json`` in the output folder lists the
thresholds and every drawn box. Runs on the GPU when one is available (``--device``).
"""
import argparse
import json
import os
import os.path as osp

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from mmcv import Config, DictAction  # noqa: E402
from mmcv.parallel import collate, scatter  # noqa: E402
from mmcv.runner import load_checkpoint  # noqa: E402
from mmdet.datasets import build_dataset  # noqa: E402
from mmdet.models import build_detector  # noqa: E402
from mmdet.utils import get_root_logger  # noqa: E402

import ssod  # noqa: F401,E402  (registers ssod's modules)
from ssod.models.losses.gbr import GbRLoss  # noqa: E402
from ssod.models.soft_teacher import SoftTeacher, box_size_mask  # noqa: E402
from ssod.models.soft_teacher_grs import SoftTeacherGrS  # noqa: E402

TEACHER_TAG = "unsup_teacher"
BELOW_INITIAL, BELOW_CLASS_THR, PSEUDO_LABEL = 0, 1, 2
CATEGORY_NAMES = {BELOW_INITIAL: "below_initial_filter", BELOW_CLASS_THR: "below_class_threshold",
                  PSEUDO_LABEL: "pseudo_label"}
CATEGORY_STYLES = {BELOW_INITIAL: dict(edgecolor="silver", linestyle=":", linewidth=1.0),
                   BELOW_CLASS_THR: dict(edgecolor="orange", linestyle="--", linewidth=1.8),
                   PSEUDO_LABEL: dict(edgecolor="lime", linestyle="-", linewidth=2.5)}
DPI = 100
IMAGE_HEIGHT_INCHES = 6.0
MIN_IMAGE_WIDTH_INCHES = 6.0
SIDE_INCHES = 3.6


# ----------------------------------------------------------------------------- model and thresholds
def load_model(cfg, checkpoint_path, device):
    """The teacher-student detector of ``cfg`` with the checkpoint's weights and statistics, in eval mode.

    Returns ``(model, finished_iterations)``; the iteration count comes from ``meta['iter']``.
    """
    model = build_detector(cfg.model)
    if not isinstance(model, SoftTeacher):
        raise TypeError(f"{cfg.model.type} is not a SoftTeacher detector; pseudo labels need a teacher")
    checkpoint = load_checkpoint(model, checkpoint_path, map_location="cpu", strict=True,
                                 logger=get_root_logger())
    meta = checkpoint.get("meta", {})
    if "iter" not in meta:
        raise KeyError(f"checkpoint {checkpoint_path!r} has no meta['iter']; it is compared with warm_up_iter")
    restore_threshold_weights(model)
    return model.to(device).eval(), int(meta["iter"])


def restore_threshold_weights(model):
    """Give GbT the GbR weights it saw in training (``last_unsup_weights`` is not a buffer).

    In training, the unsupervised GbR call is the last one of an iteration and sets
    ``last_unsup_weights`` to the current ``class_weights``; a checkpoint is written after the
    iteration, so the checkpointed ``class_weights`` are exactly those weights.
    """
    if not isinstance(model, SoftTeacherGrS):
        return
    loss_cls = model.student.roi_head.bbox_head.loss_cls
    if isinstance(loss_cls, GbRLoss):
        loss_cls.last_unsup_weights = loss_cls.class_weights.detach().clone()


def pseudo_thresholds(model, finished_iters):
    """``(thresholds [C], source)``: the RCNN-classification thresholds training uses at the next iteration."""
    cfg = model.train_cfg
    if isinstance(model, SoftTeacherGrS) and finished_iters >= cfg.warm_up_iter:
        return model.current_class_thresholds().float().cpu(), "GbT class thresholds of the checkpoint"
    num_classes = model.teacher.roi_head.bbox_head.num_classes
    reason = (f"iteration {finished_iters} < warm_up_iter {cfg.warm_up_iter}"
              if isinstance(model, SoftTeacherGrS) else type(model).__name__)
    return torch.full((num_classes,), float(cfg.cls_pseudo_threshold)), f"fixed cls_pseudo_threshold ({reason})"


def box_categories(bboxes, labels, thresholds, initial_thr, min_size):
    """Category of each teacher detection ``[n, 5]`` (teacher-view boxes): see the module doc."""
    scores = bboxes[:, 4]
    past_initial = (scores > initial_thr) & box_size_mask(bboxes, min_size)
    past_class = scores > thresholds.to(scores)[labels]
    categories = torch.full_like(labels, BELOW_INITIAL)
    categories[past_initial] = BELOW_CLASS_THR
    categories[past_initial & past_class] = PSEUDO_LABEL
    return categories


# ----------------------------------------------------------------------------- data and teacher
def unlabeled_dataset(cfg):
    train = cfg.data.train
    if "unsup" not in train:
        raise KeyError(f"data.train ({train.get('type')}) has no 'unsup' dataset; expected a SemiDataset config")
    return build_dataset(train.unsup)


def teacher_view(views, index):
    """The ``unsup_teacher`` view of an unlabeled item (a list of collected views)."""
    if not isinstance(views, list):
        raise TypeError(f"unlabeled image {index} gave one view; expected the views of a MultiBranch step")
    for view in views:
        if view["img_metas"].data.get("tag") == TEACHER_TAG:
            return view
    raise KeyError(f"unlabeled image {index} has no {TEACHER_TAG!r} view; tags: "
                   f"{[view['img_metas'].data.get('tag') for view in views]}")


def device_ids(device):
    device = torch.device(device)
    return [-1] if device.type == "cpu" else [device.index or 0]


@torch.no_grad()
def teacher_detections(model, view, device):
    """Teacher detections of one weak view: ``(boxes [n, 5] teacher view, labels [n], img_meta)``."""
    inputs = scatter(collate([view], samples_per_gpu=1), device_ids(device))[0]
    info = SoftTeacher.extract_teacher_info(model, inputs["img"], inputs["img_metas"])
    return info["det_bboxes"][0], info["det_labels"][0], inputs["img_metas"][0]


# ----------------------------------------------------------------------------- drawing
def draw(image, boxes, labels, categories, names, thresholds, header, path):
    """Original image with the boxes, and a side panel with the class thresholds and counts."""
    height, width = image.shape[:2]
    image_width = IMAGE_HEIGHT_INCHES * width / height
    fig, (ax, side) = plt.subplots(1, 2, figsize=(max(image_width, MIN_IMAGE_WIDTH_INCHES) + SIDE_INCHES,
                                                  IMAGE_HEIGHT_INCHES + 1.0),
                                   gridspec_kw=dict(width_ratios=[max(image_width, MIN_IMAGE_WIDTH_INCHES),
                                                                  SIDE_INCHES]))
    ax.imshow(image)
    for category in (BELOW_INITIAL, BELOW_CLASS_THR, PSEUDO_LABEL):  # the pseudo labels on top
        style = CATEGORY_STYLES[category]
        for box, label, score in zip(boxes[categories == category], labels[categories == category],
                                     boxes[categories == category, 4]):
            x1, y1, x2, y2 = box[:4]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, **style))
            ax.text(x1, y1, f"{names[label]} {score:.2f}", fontsize=7, va="bottom",
                    bbox=dict(facecolor=style["edgecolor"], alpha=0.75, pad=1, edgecolor="none"))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    fig.suptitle(header, fontsize=9)
    legend = [Patch(fill=False, label=text, **CATEGORY_STYLES[c]) for c, text in (
        (PSEUDO_LABEL, "pseudo label: score > class threshold"),
        (BELOW_CLASS_THR, "past the initial filter, not the class threshold"),
        (BELOW_INITIAL, "stopped by the initial filter"))]
    side.legend(handles=legend, loc="lower left", fontsize=8, facecolor="gray", labelcolor="white")
    rows = ["thresholds; boxes in this image", "class            thr  pseudo  below"]
    for c, name in enumerate(names):
        in_class = labels == c
        rows.append(f"{name[:15]:15s} {float(thresholds[c]):.3f} {int((categories[in_class] == PSEUDO_LABEL).sum()):6d}"
                    f" {int((categories[in_class] == BELOW_CLASS_THR).sum()):6d}")
    side.text(0, 1, "\n".join(rows), family="monospace", fontsize=8, va="top", transform=side.transAxes)
    side.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    get_root_logger().info(f"wrote {path}")


def browse(cfg, checkpoint, out_dir, num, score_thr, device, seed=0):
    """Draw the pseudo labels of the first ``num`` unlabeled images; returns the summary dict."""
    logger = get_root_logger()
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    model, finished_iters = load_model(cfg, checkpoint, device)
    thresholds, source = pseudo_thresholds(model, finished_iters)
    train_cfg = model.train_cfg
    dataset = unlabeled_dataset(cfg)
    names = list(dataset.CLASSES)
    if len(names) != len(thresholds):
        raise ValueError(f"the unlabeled dataset has {len(names)} classes, the detector {len(thresholds)}")
    logger.info(f"{source}: " + ", ".join(f"{n} {float(t):.3f}" for n, t in zip(names, thresholds)))
    summary = dict(checkpoint=checkpoint, checkpoint_iter=finished_iters, threshold_source=source,
                   thresholds=dict(zip(names, thresholds.tolist())),
                   initial_score_thr=float(train_cfg.pseudo_label_initial_score_thr), score_thr=score_thr,
                   images=[])
    for index in range(min(num, len(dataset))):
        det_bboxes, det_labels, meta = teacher_detections(model, teacher_view(dataset[index], index), device)
        categories = box_categories(det_bboxes, det_labels, thresholds, train_cfg.pseudo_label_initial_score_thr,
                                    train_cfg.min_pseduo_box_size)
        original = model.teacher_boxes_to_original(det_bboxes, meta).float().cpu()
        shown = (categories != BELOW_INITIAL) | (original[:, 4] >= score_thr)
        boxes, labels, categories = original[shown].numpy(), det_labels[shown].cpu().numpy(), categories[shown].cpu()
        categories = categories.numpy()
        name = osp.splitext(osp.basename(meta["filename"]))[0]
        path = osp.join(out_dir, f"pseudo_{index:04d}_{name}.png")
        header = (f"{osp.basename(meta['filename'])}: teacher of iteration {finished_iters} on the weak view; "
                  f"{int((categories == PSEUDO_LABEL).sum())} pseudo labels\n{source}; initial filter score > "
                  f"{train_cfg.pseudo_label_initial_score_thr}; gray boxes from score {score_thr}")
        draw(mmcv.imread(meta["filename"], channel_order="rgb"), boxes, labels, categories, names, thresholds,
             header, path)
        summary["images"].append(dict(filename=meta["filename"], png=path, boxes=[
            dict(label=names[label], score=float(box[4]), box=[float(v) for v in box[:4]],
                 category=CATEGORY_NAMES[int(category)]) for box, label, category in zip(boxes, labels, categories)]))
    with open(osp.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw a checkpoint's teacher pseudo labels on unlabeled images")
    parser.add_argument("config", help="SoftTeacher / SoftTeacherGrS config")
    parser.add_argument("checkpoint", help="checkpoint of a run of that config")
    parser.add_argument("--out", default="work_dirs/browse_pseudo_labels", help="output folder")
    parser.add_argument("--num", type=int, default=5, help="unlabeled images to draw")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="smallest score of the boxes stopped by the initial filter that are drawn")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weak view's augmentation and the box jitter")
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, key=value")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint {args.checkpoint!r} does not exist")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    browse(cfg, args.checkpoint, args.out, args.num, args.score_thr, args.device, args.seed)


if __name__ == "__main__":
    main()
