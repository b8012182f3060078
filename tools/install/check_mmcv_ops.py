"""Check a freshly installed mmcv-full: its compiled ops load and agree with a hand-computed case.

Run by install.sh before a built wheel is trusted; on a CUDA build with a visible GPU the same
case also runs on the GPU. Exits non-zero with the reason.
"""
import sys

import torch


def main() -> int:
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    feats = torch.arange(16.0).reshape(1, 1, 4, 4)
    roi = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        _, keep = nms(boxes.to(device), scores.to(device), 0.5)
        if keep.cpu().tolist() != [0, 2]:  # IoU(0, 1) = 81 / 119 > 0.5
            sys.stderr.write(f"check_mmcv_ops: nms on {device} kept {keep.tolist()}, expected [0, 2]\n")
            return 1
        pooled = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feats.to(device), roi.to(device))
        if abs(pooled.item() - 7.5) > 1e-5:  # the mean of the 4 x 4 ramp over the whole map
            sys.stderr.write(f"check_mmcv_ops: RoIAlign on {device} gave {pooled.item()}, expected 7.5\n")
            return 1
    print(f"[install] mmcv ops check passed on {', '.join(devices)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
