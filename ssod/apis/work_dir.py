"""Work-dir safety: a new run never destroys an earlier run's files; ``--auto-resume`` finds a checkpoint that loads.

* A new run (no ``--resume-from``/``--auto-resume``) in a work dir holding checkpoints or
  pseudo-label snapshots is refused, naming ``--auto-resume`` and ``--overwrite``; with
  ``--overwrite`` those files are deleted first (and listed in the log).
* ``*.partial`` files (checkpoint writes cut short by a kill or a full disk) are removed.
* ``--auto-resume`` takes ``latest.pth``, else the newest ``iter_*.pth`` that loads; a file that
  does not load is named in a warning and the next older one is tried.

Rank 0 looks at the disk and decides; every rank gets the same answer.
"""
import glob
import os
import os.path as osp
import re

from ssod.apis.checkpoint import CheckpointError, read_checkpoint
from ssod.utils.dist_utils import broadcast_object, is_main_process

LATEST = "latest.pth"
CHECKPOINT_NAME = re.compile(r"^iter_(\d+)\.pth$")
SNAPSHOTS = osp.join("pseudo_labels", "pseudo_iter*.json")
PARTIAL = "*.partial"
EXAMPLES = 4


class WorkDirInUseError(RuntimeError):
    """A new run was asked to start in the work dir of an earlier run."""


def iteration_checkpoints(work_dir: str) -> list:
    """``iter_<n>.pth`` paths in ``work_dir``, newest (largest n) first."""
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    numbered = [(int(m.group(1)), name) for name in names if (m := CHECKPOINT_NAME.match(name))]
    return [osp.join(work_dir, name) for _, name in sorted(numbered, reverse=True)]


def earlier_run_files(work_dir: str) -> list:
    """The checkpoints, ``latest.pth`` and pseudo-label snapshots of an earlier run in ``work_dir``."""
    latest = osp.join(work_dir, LATEST)
    files = iteration_checkpoints(work_dir) + ([latest] if osp.lexists(latest) else [])
    return files + sorted(glob.glob(osp.join(work_dir, SNAPSHOTS)))


def _examples(paths, work_dir) -> str:
    names = [osp.relpath(path, work_dir) for path in paths]
    return ", ".join(names[:EXAMPLES]) + (", ..." if len(names) > EXAMPLES else "")


def _prepare(work_dir: str, resume: bool, overwrite: bool) -> list:
    notes = []
    partial = glob.glob(osp.join(work_dir, PARTIAL))
    for path in partial:
        os.remove(path)
    if partial:
        notes.append(f"removed {len(partial)} unfinished checkpoint write(s): {_examples(partial, work_dir)}")
    if resume:
        return notes
    earlier = earlier_run_files(work_dir)
    if earlier and not overwrite:
        raise WorkDirInUseError(
            f"work dir {work_dir} holds {len(earlier)} checkpoint / pseudo-label file(s) of an earlier run "
            f"({_examples(earlier, work_dir)}). Continue that run with --auto-resume (or --resume-from "
            "CHECKPOINT), start afresh with --overwrite (deletes them), or choose another --work-dir")
    for path in earlier:
        os.remove(path)
    if earlier:
        notes.append(f"--overwrite: deleted {len(earlier)} file(s) of the earlier run: {_examples(earlier, work_dir)}")
    return notes


def prepare_work_dir(work_dir: str, resume: bool, overwrite: bool) -> list:
    """Check and clean ``work_dir`` before a run (see module doc); returns notes for the log.

    Raises WorkDirInUseError on every rank when a new run would meet an earlier run's files.
    """
    outcome = None
    if is_main_process():
        try:
            outcome = (True, _prepare(work_dir, resume, overwrite))
        except WorkDirInUseError as err:
            outcome = (False, str(err))
    ok, value = broadcast_object(outcome)
    if not ok:
        raise WorkDirInUseError(value)
    return value


def _loadable(path: str, logger) -> bool:
    try:
        read_checkpoint(path)
    except (CheckpointError, FileNotFoundError) as err:
        logger.warning(f"AUTO-RESUME: skipping {path}: {err}")
        return False
    return True


def _find_resume_checkpoint(work_dir: str, logger):
    latest = osp.join(work_dir, LATEST)
    candidates = ([latest] if osp.lexists(latest) else []) + iteration_checkpoints(work_dir)
    tried = set()
    for path in candidates:
        real = osp.realpath(path)
        if real in tried:
            continue
        tried.add(real)
        if _loadable(path, logger):
            return True, path
    if candidates:
        return False, (f"--auto-resume: none of the {len(tried)} checkpoint(s) in {work_dir} loads (see the warnings "
                       "above); resume from another file with --resume-from, or start afresh with --overwrite "
                       "(without --auto-resume)")
    return True, None


def find_resume_checkpoint(work_dir: str, logger):
    """``latest.pth``, else the newest ``iter_*.pth`` in ``work_dir`` that loads (rank 0's pick); None if none.

    Raises WorkDirInUseError when there are checkpoints but none loads.
    """
    ok, value = broadcast_object(_find_resume_checkpoint(work_dir, logger) if is_main_process() else None)
    if not ok:
        raise WorkDirInUseError(value)
    if value is None:
        logger.info(f"auto-resume: no checkpoint in {work_dir}; starting a new run")
    return value
