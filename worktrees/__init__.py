"""Git plumbing for the farm: worktree slots, experiment branches, landing commits.

Imports nothing of the farm. Exceptions:

    WorktreeError              any git operation that failed (command and stderr in the message)
    └── ApplyError             a patch or cherry-pick does not apply (a conflict)
"""
from worktrees.repo import ApplyError, TargetRepo, WorktreeError
from worktrees.slots import Slot, SlotPool

__all__ = ["ApplyError", "Slot", "SlotPool", "TargetRepo", "WorktreeError"]
