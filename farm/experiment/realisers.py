"""How each kind of hypothesis becomes a change in the candidate slot: one realiser per agent kind.

    patch    the hypothesis' diff applied; a guard failure is reworked with its next rework patch
    command  a coding agent run in its scratch checkout, in its sandbox (farm/coding_agents/agents.py,
    farm/node/sandbox.py); its
             change taken into the slot by the farm; a guard failure goes back to the agent with the guard's
             output; a kept change that no longer applies on the tip goes back to it once (made again there)
    knobs    one setting of the strategy's knobs written into the checkout (farm/campaign_file/knobs.py), on the tip too
    refs     an existing commit's whole tree on its own parent (screen-only: it never lands)

A kept change lands by a cherry-pick onto the tip (Kind.MERGE), but a knob setting, which is written again
there (two settings of one knob would conflict as diffs; the re-measurement decides which is better).
"""
from __future__ import annotations

import pathlib
import tempfile
import time
from collections.abc import Callable

from farm.campaign_file import knobs
from farm.campaign_file.config import CampaignConfig
from farm.coding_agents import agents
from farm.coding_agents.agent_spend import read_spend
from farm.errors import PhaseError, PhaseTimeout
from farm.experiment.draft import Draft, Outcome
from farm.experiment.runner import Pinning, Stall, run_command
from farm.node import sandbox
from farm.records import AgentRun, Assignment, Kind, Status
from worktrees import ApplyError, ChangeRefused, Scratch, Slot, TargetRepo


def apply_text(cand: Slot, patch_text: str) -> None:
    """Apply a patch given as text to the checkout (ApplyError if it does not apply)."""
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False) as handle:
        handle.write(patch_text)
    try:
        cand.apply_patch(handle.name)
    finally:
        pathlib.Path(handle.name).unlink()


class Realiser:
    """Makes a hypothesis' change in the clean candidate slot, and reworks it after a guard failure."""

    env_file_protected = True  # the phases run with the env file's variables: only knob settings may change it

    def __init__(self, config: CampaignConfig):
        self.config = config

    def realise(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        if a.kind is Kind.MERGE:
            self.land(cand, a, draft)
        else:
            self.make(cand, a, draft)

    def make(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        raise NotImplementedError

    def land(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        """The kept change on the tip: cherry-picked."""
        try:
            cand.cherry_pick(f"{a.pick_base}..{a.pick_tip}")
        except ApplyError as error:
            self.conflict(cand, a, draft, error)

    def conflict(self, cand: Slot, a: Assignment, draft: Draft, error: ApplyError) -> None:
        raise Outcome(Status.CONFLICT, f"the kept change does not apply on {a.parent_commit[:10]}: {error}")

    def rework_tries(self, a: Assignment) -> int:
        """How many reworks a guard failure may get (at most acceptance.rework_tries): the hypothesis' rework
        patches."""
        return min(self.config.acceptance.rework_tries, len(a.hypothesis.rework))

    def rework(self, cand: Slot, a: Assignment, draft: Draft, attempt: int, failure: PhaseError) -> None:
        """Rework `attempt` (1, 2, ...) after the guard failed with `failure`: the next rework patch."""
        try:
            apply_text(cand, a.hypothesis.rework[attempt - 1])
        except ApplyError as error:
            raise Outcome(Status.GUARD_FAIL, f"guard failed ({failure}); rework {attempt} does not apply: "
                                             f"{error}") from None


class PatchRealiser(Realiser):
    def make(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        try:
            apply_text(cand, a.hypothesis.patch)
        except ApplyError as error:
            raise Outcome(Status.CONFLICT, f"the patch does not apply on {a.parent_commit[:10]}: {error}") from None


class KnobsRealiser(Realiser):
    env_file_protected = False

    def realise(self, cand: Slot, a: Assignment, draft: Draft) -> None:  # on the tip too: written again
        try:
            knobs.write(cand.path, self.config.strategy(a.hypothesis.strategy).knobs, a.hypothesis.knobs,
                        self.config.phases.env_file)
        except knobs.KnobError as error:
            raise Outcome(Status.CRASH, str(error)) from None


class RefsRealiser(Realiser):
    def make(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        cand.git("read-tree", "-u", "--reset", a.hypothesis.commit)  # the whole tree, deletions included


class CommandRealiser(Realiser):
    """A coding agent, in its scratch checkout and sandbox; the farm takes its change into the slot."""

    def __init__(self, config: CampaignConfig, repo: TargetRepo, scratch: Scratch, log_root: pathlib.Path,
                 pinning: Pinning, tag: str | None, farm_dirs: tuple[pathlib.Path, ...],
                 send_event: Callable[[str, str, str], None]):
        super().__init__(config)
        self.repo, self.scratch, self.log_root, self.pinning = repo, scratch, log_root, pinning
        self.tag, self.farm_dirs, self.send_event = tag, farm_dirs, send_event

    def make(self, cand: Slot, a: Assignment, draft: Draft) -> None:
        self.run_agent(cand, a, draft, attempt=0)

    def conflict(self, cand: Slot, a: Assignment, draft: Draft, error: ApplyError) -> None:
        """A kept agent change that conflicts with the tip goes back to its agent once: the agent gets git's
        message and the kept diff (as data) and makes the change again on the tip. It is then checked and
        measured against the tip like any candidate."""
        kept_diff = cand.git("diff", "--no-ext-diff", "--no-textconv", a.pick_base, a.pick_tip)
        self.send_event(a.experiment_id, "agent", "the kept change conflicts with the tip: its agent makes it again")
        self.run_agent(cand, a, draft, attempt=0, conflict=(str(error), kept_diff))
        draft.rebased = True

    def rework_tries(self, a: Assignment) -> int:
        """The agent reworks its own change (not on the tip: a merge keeps what was measured)."""
        return 0 if a.kind is Kind.MERGE else self.config.acceptance.rework_tries

    def rework(self, cand: Slot, a: Assignment, draft: Draft, attempt: int, failure: PhaseError) -> None:
        self.run_agent(cand, a, draft, attempt, guard_failure=f"{failure}\n{failure.tail}")

    def run_agent(self, cand: Slot, a: Assignment, draft: Draft, attempt: int, guard_failure: str | None = None,
                  conflict: tuple[str, str] | None = None) -> None:
        """Run the strategy's coding agent in its scratch checkout, in its sandbox (see farm/coding_agents/agents.py and
        farm/node/sandbox.py for what it sees), then take its change into the clean cand slot: the agent never
        touches a checkout that is measured. The scratch is made at the parent on the first run and kept for
        reworks (the agent finds its change there)."""
        exp = a.experiment_id
        agent = self.config.strategy(a.hypothesis.strategy).command
        log_dir = self.log_root / exp
        own_dir = log_dir / "agent"  # the agent's own files (notes, its CLI's history): writable to it
        own_dir.mkdir(parents=True, exist_ok=True)
        prompt_file = log_dir / f"prompt-{attempt}.md"  # the farm's files: read-only to the agent
        memory_file = log_dir / "memory.md"
        memory_file.write_text(a.memory or "# Strategy memory\n\nNothing recorded for this experiment.\n")
        prompt_file.write_text(agents.prompt(self.config, a.hypothesis, guard_failure, stuck=a.stuck,
                                             conflict=conflict))
        notes_file = own_dir / "notes.md"
        if attempt == 0:
            self.scratch.create(a.parent_commit, a.branch)
        environment = agents.environment(self.scratch.path, prompt_file, notes_file, memory_file, own_dir, exp,
                                         a.hypothesis.id, attempt, self.pinning.cpus)
        box = self._sandbox(agent, shown=(prompt_file, memory_file), writable=(self.scratch.path, own_dir))
        if box is not None:
            environment.update(agents.sandboxed_environment(agent))
        self.send_event(exp, "agent", f"running the agent{f' (rework {attempt})' if attempt else ''}")
        started, outcome, stdout = time.monotonic(), "ok", ""
        try:
            stdout = run_command("agent", agents.command_line(agent), self.scratch.path, agent.timeout, self.pinning,
                                 log_path=log_dir / f"agent-{attempt}.log", env=environment, tag=self.tag,
                                 sandbox=box, stall=Stall(agent.stall_timeout, self.scratch.path)
                                 if agent.stall_timeout else None).stdout
        except PhaseTimeout as error:
            outcome, stdout = "timeout", error.stdout
            raise Outcome(Status.TIMEOUT, f"agent: {error}") from None
        except PhaseError as error:
            outcome, stdout = "failed", error.stdout
            raise Outcome(Status.CRASH, f"agent failed: {error}") from None
        finally:
            draft.notes = agents.read_notes(notes_file)
            draft.agent_runs.append(AgentRun(attempt, agent.preset, outcome, time.monotonic() - started,
                                             read_spend(agents.report_format(agent), stdout)))
        if self.scratch.config_changed():
            raise Outcome(Status.TAMPERED, "the agent changed its checkout's git configuration (.git/config); "
                                           "nothing of it is taken")
        try:
            change = self.scratch.read_change(a.parent_commit)
        except ChangeRefused as error:
            raise Outcome(Status.TAMPERED, f"the agent's change is refused: {error}") from None
        if change.ignored:
            self.send_event(exp, "agent", f"ignored files in the agent's checkout are not carried: "
                                          f"{', '.join(change.ignored[:10])}")
        cand.take_tree(change.tree)

    def _sandbox(self, agent, shown, writable) -> sandbox.Sandbox | None:
        """The agent's sandbox: the farm's directories hidden but for the repository's objects (the scratch
        shares them) and `shown`, read-only; `writable` and the CLI's state directories writable. None with
        `sandbox: none`; a campaign that asks for bwrap where it cannot run never gets here (farm validate)."""
        settings = self.config.sandbox
        if settings.mode == "none":
            return None
        problem = sandbox.bwrap_problem()
        if problem:
            raise Outcome(Status.CRASH, f"the agent cannot be sandboxed: {problem}")
        return sandbox.agent_sandbox(self.farm_dirs, (self.repo.git_dir / "objects", *shown), writable,
                                     [*agents.state_dirs(agent), *settings.state_dirs], settings.network,
                                     [self.config.resolve(".")])
