"""Git plumbing for the farm: worktree slots, experiment branches, landing commits.

Imports nothing of the farm. Exceptions:

    WorktreeError              any git operation that failed (command and stderr in the message)
    ├── ApplyError             a patch or cherry-pick does not apply (a conflict)
    └── ChangeRefused          an agent's change holds a link out of the tree or an embedded repository
"""
from worktrees.repo import ApplyError, TargetRepo, WorktreeError
from worktrees.scratch import Change, ChangeRefused, Scratch
from worktrees.slots import Slot, SlotPool

__all__ = ["ApplyError", "Change", "ChangeRefused", "Scratch", "Slot", "SlotPool", "TargetRepo", "WorktreeError"]
