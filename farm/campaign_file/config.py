"""The campaign configuration: pydantic models loaded from YAML.

Every field has a description (shown by `farm schema`). Relative paths in the
file are relative to the file's own directory.
"""
from __future__ import annotations

import enum
import math
import os
import pathlib
import re
import shlex
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from farm.errors import ConfigError
from farm.node.processes import TAG_VARIABLE
from stats.schedule import default_schedule, validate_schedule

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # safe in branch names and paths
MAX_KNOB_SETTINGS = 5000  # combinations of a grid; more is a random search
# A knob value is one line of text. A line break in it would add lines to the env file (`LD_PRELOAD=...`, run by
# the reference arm of every experiment on top of a landed setting) or to a knob's file; a NUL ends a C string.
# Every line break of str.splitlines, not only \n and \r: no reader of the value may see two lines.
KNOB_VALUE_FORBIDDEN = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\0"
# Variables farm/experiment/runner.py sets for every phase: PATH (the farm's Python first) and PYTHONDONTWRITEBYTECODE
# before
# the env file's variables, which would replace them; the CPU pinning (OMP_*) and the process tag after them. A
# knob cannot set these, and read_env_file skips their lines: what the farm sets stays the farm's.
FARM_VARIABLES = frozenset({"PATH", "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
                            TAG_VARIABLE})

# The regex protocol's default: `name: number [unit]` on a line of its own (`kde: 0.123 s`, `gridsearch: 12ms`).
# The value must be a real number and the unit letters only (or `%`, `ops/s`), so that benchmark outputs'
# `key: text` lines (`checksum: e21d38f0a1`, `checksum: 21d38f0a1`, `status: ok`, `note: 12 items processed`)
# are not read as benchmarks.
DEFAULT_PATTERN = (r"^\s*(?P<name>[\w.\-/]+)\s*:\s*"
                   r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
                   r"\s*(?P<unit>%|[^\W\d_]+(?:/[^\W\d_]+)?)?\s*$")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Direction(str, enum.Enum):
    LOWER = "lower"
    HIGHER = "higher"


class MeasurementMode(str, enum.Enum):
    EXCLUSIVE = "exclusive"
    PARALLEL = "parallel"
    AUTO = "auto"


class TargetConfig(Model):
    repo: str | None = Field(None, description="Path of the git repository to optimise. Give this or `fixture`.")
    fixture: bool = Field(False, description="Use the bundled cpp_fixture library: the farm materialises it as a "
                                             "fresh git repository in the workdir (the demo uses this).")
    base_ref: str = Field("main", description="Branch, tag or commit the campaign starts from.")

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.repo) == self.fixture:
            raise ValueError("give exactly one of `repo: PATH` or `fixture: true`")
        return self


class WorkersConfig(Model):
    count: int | None = Field(None, ge=1, description="Number of worker actors; default: one per available CPU "
                                                       "(divided by cpus_per_worker). On a cluster, the total, "
                                                       "spread over the nodes in turn.")
    cpus_per_worker: int = Field(1, ge=1, description="CPUs in each worker's pinned set when sets are allocated.")
    cpu_sets: list[list[int]] | None = Field(None, description="Explicit, disjoint CPU sets, one per worker "
                                                                "(overrides count and cpus_per_worker; one "
                                                                "machine only, not a cluster).")
    node_dir: str = Field("{tmp}/autoresearch-farm/{node}", description=(
        "On a cluster: where the workers of a node other than the coordinator's keep that node's clone of the "
        "target, their slots, phases and logs, on the node itself (nothing is shared between nodes; the "
        "coordinator's node uses the workdir). `{tmp}` is the node's temporary directory, `{node}` the start "
        "of its Ray node id, `~` the home directory there; each run gets a subdirectory."))

    @field_validator("cpu_sets")
    @classmethod
    def _disjoint(cls, sets):
        if sets is not None:
            flat = [cpu for s in sets for cpu in s]
            if any(not s for s in sets):
                raise ValueError("every CPU set needs at least one CPU")
            if len(flat) != len(set(flat)):
                raise ValueError("CPU sets must be disjoint")
        return sets


class MeasurementConfig(Model):
    mode: MeasurementMode = Field(MeasurementMode.AUTO, description=(
        "`exclusive`: the workers of one node never measure at the same time, and no build or guard runs on the "
        "node while one of them measures (a block holds the node's measurement lock exclusively, builds and "
        "guards hold it shared). `parallel`: every worker measures whenever it is ready. `auto`: exclusive "
        "when the worker CPU sets leave no CPU spare for the farm's own processes or the node has fewer than 4 "
        "CPUs, else parallel."))
    send_every: float = Field(2.0, ge=0, description=(
        "Seconds a worker collects its measurement blocks, events and phase rows before it sends them to the "
        "store in one call (it also sends them when its experiment ends); 0: each at once. A call each costs the "
        "store more than writing them; a worker that dies loses at most this many seconds of them, and the "
        "progress lines of `farm run` come up to this late."))
    channels: list[Literal["time", "instructions"]] = Field(["time"], description=(
        "What each block measures. `[time]`: the benchmarks' printed values. `[time, instructions]`: also each "
        "arm's instruction count per benchmark (phases.bench.instructions_command, run once per benchmark under "
        "`perf stat -e instructions:u`, else cachegrind; `farm doctor` says which works), stored as samples of "
        "`<benchmark>.instructions`. Counts are nearly free of noise but blind to caches, memory and threads: they "
        "never keep a change: the benchmarks whose counts improved beyond their floor share 0.8 of Holm's alpha "
        "for the time win (a lower bar than among all), the others the rest; the false-keep rate stays alpha "
        "(bench/decisions.py). Counted in the blocks of the first look only."))

    @field_validator("channels")
    @classmethod
    def _time_always(cls, channels):
        if "time" not in channels or len(set(channels)) != len(channels):
            raise ValueError("give [time] or [time, instructions]: time always decides, each channel once")
        return channels


class PhaseConfig(Model):
    command: str = Field(description="Shell command run in the checkout (bash -c), pinned to the worker's CPUs.")
    timeout: float = Field(600.0, gt=0, description="Seconds before the whole process group is killed.")


class BuildConfig(PhaseConfig):
    artifacts: list[str] = Field(default_factory=list, description=(
        "Globs (relative to the checkout) of the built artefacts; their hash is recorded as a fingerprint."))
    sources: list[str] = Field(default_factory=list, description="fnmatch patterns of the files that feed the "
                                                                 "artefacts (e.g. `src/*`, `include/*`). A change "
                                                                 "to one that leaves an artefact older than it after "
                                                                 "the build is `stale_build`.")
    outputs: list[str] = Field(default_factory=list, description=(
        "What the build and the other phases may leave in a checkout that is not in its commit: directories "
        "ending in / (`build/`) or globs (`*.egg-info/*`). Before every guard and benchmark run the checkout "
        "must equal its commit but for these (no index flag, no changed tracked file, no other untracked or "
        "ignored file, such as a `.pyc` that shadows a module): a candidate that fails is `tampered`."))


class BenchConfig(PhaseConfig):
    timeout: float = Field(300.0, gt=0, description="Seconds before one benchmark process is killed.")
    protocol: Literal["jsonl", "regex"] = Field("jsonl", description="`jsonl`: one JSON object per benchmark with "
                                                "`name` and `value` (cpp_fixture/README.md); `regex`: lines matched "
                                                "by `pattern`.")
    pattern: str = Field(DEFAULT_PATTERN,
                         description="For protocol regex: a regular expression with named groups `name` and "
                                     "`value` (and optionally `unit`), matched against each output line. The "
                                     "default reads `name: number [unit]` lines (e.g. `kde: 0.123 s`) and skips "
                                     "`key: text` lines such as checksums.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern):
        try:
            groups = re.compile(pattern).groupindex
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if not {"name", "value"} <= set(groups):
            raise ValueError("the pattern needs named groups (?P<name>...) and (?P<value>...)")
        return pattern


    instructions_command: str | None = Field(None, description=(
        "For measurement.channels [time, instructions]: the command whose instructions are counted, once per "
        "benchmark and arm in each block, with `{benchmark}` replaced by the benchmark's name, e.g. `python "
        "bench.py --only {benchmark} --reps 1 --warmup 0`: one short run, not a timing loop (under cachegrind it "
        "runs 20-50x slower). Its output is not read. Default: the bench command, which then needs exactly one "
        "configured benchmark."))


class GuardConfig(PhaseConfig):
    memory_growth: float | None = Field(None, ge=0, description=(
        "The memory guard: refuse (`guard_fail`) a candidate whose peak resident memory in its benchmark runs "
        "(the median over its runs) exceeds its parent's by more than this fraction, e.g. 0.25; checked after "
        "the measurement, in screens and merge re-measurements. null: no memory guard."))


class PhasesConfig(Model):
    build: BuildConfig = Field(description="Builds the checkout (in its own build directory).")
    guard: GuardConfig = Field(description="Correctness guard: exit 0 means correct.")
    bench: BenchConfig = Field(description="Runs the benchmarks once; prints one value per benchmark.")
    env_file: str = Field(".farm-env", description="A file of `NAME=value` lines in the checkout (relative to its "
                                                   "top): when it exists, every phase command of that checkout runs "
                                                   "with these variables. Knob strategies write their `env` and "
                                                   "`flags` knobs here, so a landed setting is part of the commit. "
                                                   "Only knob strategies may change it: for any other change it is "
                                                   "a protected path.")

    @field_validator("env_file")
    @classmethod
    def _inside(cls, path):
        if not is_checkout_file(path):
            raise ValueError("give a file path relative to the checkout's top, inside it (e.g. .farm-env)")
        return path


class BenchmarkConfig(Model):
    metric: Literal["printed", "peak_rss"] = Field("printed", description=(
        "`printed`: the value the bench command prints under this name. `peak_rss`: the peak resident memory of "
        "each benchmark run in bytes (the largest process of the run's tree, from the kernel's accounting), "
        "decided like any benchmark, lower is better."))
    direction: Direction = Field(Direction.LOWER, description="`lower` (times) or `higher` (throughput) is better.")
    min_effect: float | None = Field(None, ge=0, description="Effect floor for this benchmark (fraction); default: "
                                                             "acceptance.min_effect.")
    held_out: bool = Field(False, description=(
        "A hold-out against overfitting: never shown to an agent (not in its prompt, its memory or a log it can "
        "read) and not decided in screens; decided in merge re-measurements and the final confirmation. A kept "
        "change that regresses it beyond its floor is not landed (\"overfits the visible benchmarks\")."))

    @model_validator(mode="after")
    def _memory_is_lower(self):
        if self.metric == "peak_rss" and self.direction is Direction.HIGHER:
            raise ValueError("a `peak_rss` benchmark is memory: lower is better (drop `direction: higher`)")
        return self


class AcceptanceConfig(Model):
    alpha: float = Field(0.05, gt=0, lt=0.5, description="False-keep rate: each side of a benchmark's repeated "
                                                         "interval has error alpha over all looks (extension "
                                                         "included), and a keep is tested with Holm across "
                                                         "benchmarks at this level.")
    beta: float = Field(0.3, gt=0, lt=0.5, description="One-sided level of the screening bounds that stop early: "
                                                       "futility (nothing shows a sign of improving beyond its "
                                                       "floor) and a sign of regression that holds a keep back. "
                                                       "Lower is more careful and spends more blocks.")
    min_effect: float = Field(0.02, ge=0, lt=1, description="The practical minimum effect (fraction). A "
                                                            "benchmark's floor is this plus the measured "
                                                            "build-to-build bias (zero for a target that "
                                                            "builds nothing); it does not grow "
                                                            "with per-block noise.")
    aa_blocks: int = Field(10, ge=3, le=200, description="Blocks of each A/A canary: the parent's reference build "
                                                        "against a second build of the same source. They measure "
                                                        "the build-to-build bias and check for false positives.")
    canary_every: int = Field(16, ge=1, description="Run another A/A canary on a worker after this many "
                                                    "experiments (and before its first one).")
    min_blocks: int = Field(3, ge=3, le=1000, description="Blocks before the first look.")
    max_blocks: int = Field(20, ge=3, le=1000, description="Blocks at the last regular look.")
    looks: list[int] | None = Field(None, description="Explicit block counts of the regular looks (increasing, "
                                                      "at least 3; the last is the maximum); default: min_blocks, "
                                                      "then about 25 % more each look, up to max_blocks.")
    extension_looks: list[int] = Field([25, 30], description="Looks after the last regular one, taken only by an "
                                                             "experiment with a one-sided 1 - beta sign of "
                                                             "improving beyond its floor whose interval is not "
                                                             "there yet; the boundary accounts for them. [] for "
                                                             "none.")
    rework_tries: int = Field(0, ge=0, description="Guard failures: how many follow-up (rework) patches of the "
                                                   "hypothesis to try before the verdict is guard_fail.")

    @model_validator(mode="after")
    def _schedule(self):
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) is larger than max_blocks ({self.max_blocks})")
        validate_schedule(self.schedule())
        return self

    def regular_looks(self) -> tuple[int, ...]:
        return validate_schedule(self.looks) if self.looks else default_schedule(self.min_blocks, self.max_blocks)

    def schedule(self) -> tuple[int, ...]:
        """Every block count at which an experiment may look at its data, extension included."""
        return self.regular_looks() + tuple(self.extension_looks)


class MemoryConfig(Model):
    exhausted_after: int = Field(3, ge=1, description="K: a category with this many discards and no keep in a "
                                                      "strategy is exhausted: its remaining hypotheses are skipped "
                                                      "(an event row each) and the agent's memory says so.")
    stuck_after: int = Field(5, ge=1, description="N: after this many screens of a strategy in a row without a "
                                                  "keep, its agent's prompt asks for a different approach: combine "
                                                  "past wins, the opposite of recent failures, or a radical change.")


class MergeConfig(Model):
    enabled: bool = Field(True, description="Land kept experiments on the integration branch. `false`: a "
                                            "screen-only campaign, every hypothesis measured against the base "
                                            "(used to check verdicts against known outcomes).")
    remeasure: bool = Field(True, description="Re-measure every kept experiment against the current integration "
                                              "tip before it lands (the reported effect).")
    confirm_blocks: int = Field(12, ge=0, description="At the end, when something landed: the final integration "
                                                      "tip against the campaign base in this many interleaved "
                                                      "blocks, the campaign's headline number (0: no final "
                                                      "confirmation).")

    @field_validator("confirm_blocks")
    @classmethod
    def _enough_blocks(cls, blocks):
        if 0 < blocks < 3:
            raise ValueError("a confirmation needs at least 3 blocks (or 0 for none)")
        return blocks


class RaceConfig(Model):
    mode: Literal["shared", "race"] = Field("shared", description=(
        "`shared`: every strategy builds on the one integration branch. `race`: each strategy has its own lineage "
        "branch farm/<campaign>/<strategy>, starting at the base; its winners land there, re-measured against "
        "that lineage's tip. At the end the best lineage becomes the integration branch and the other lineages' "
        "winners are offered on top of it, each re-measured."))
    rung: int | None = Field(None, ge=0, description=(
        "Successive halving: every time each racing strategy has finished this many more screens (and its "
        "merges are done), the strategies whose landed gain is below the better half's lose their workers. "
        "0: no reallocation (hypotheses run in file order). Default: 4 in `race` mode, 0 in `shared` mode."))

    @model_validator(mode="before")
    @classmethod
    def _default_rung(cls, data):
        if isinstance(data, dict) and data.get("rung") is None:
            data = {**data, "rung": 4 if data.get("mode") == "race" else 0}
        return data


class HypothesisConfig(Model):
    id: str = Field(pattern=NAME_PATTERN, description="Unique id within the campaign.")
    category: str = Field("uncategorised", description="E.g. micro-opt, parallelism, memory, algorithm.")
    text: str = Field("", description="What the change is and why it should help.")
    patch: str | None = Field(None, description="Path of a `git apply`-able diff (the patch agent needs one; a "
                                                "command agent gets `text` in its prompt instead).")
    rework: list[str] = Field(default_factory=list, description="Paths of follow-up patches tried in order when "
                                                                "the guard fails (see acceptance.rework_tries).")
    after: str | None = Field(None, description="Id of a hypothesis that must have finished (and landed, for the "
                                                "patch to apply) before this one starts.")


class PackConfig(Model):
    dir: str = Field(description="Directory with a manifest.yaml and <id>.patch files (cpp_fixture/hypotheses "
                                 "format).")
    ids: list[str] | None = Field(None, description="Subset of hypothesis ids, in this order; default: all.")


class PlannerConfig(Model):
    command: str = Field(description=(
        "Shell command that proposes hypotheses: it reads the strategy memory ($FARM_MEMORY_FILE) and prints the "
        "next $FARM_PLANNER_COUNT hypotheses, one JSON object per line with `id`, `text` and optionally "
        "`category` (README, Planner). Invalid lines are rejected, each with an `events` row saying why."))
    batch: int = Field(4, ge=1, description="N: hypotheses asked for per call; lines beyond N are rejected.")
    max_hypotheses: int = Field(20, ge=1, description="The planner is not called again once it has proposed this "
                                                      "many valid hypotheses.")
    timeout: float = Field(600.0, gt=0, description="Seconds before the planner's whole process tree is killed.")


class RefsConfig(Model):
    range: str | None = Field(None, description="`A..B`: the commits after A up to B on B's first-parent line, "
                                                "oldest first, each measured against its first parent.")
    commits: list[str] = Field(default_factory=list, description="Commits (hashes, tags, `main~3`), each measured "
                                                                 "against its first parent.")
    branches: list[str] = Field(default_factory=list, description="Branches, each its tip measured against its "
                                                                  "merge base with target.base_ref (the branch's "
                                                                  "whole change).")
    category: str = Field("commit", description="The category recorded for these hypotheses.")

    @field_validator("commits", "branches", mode="before")
    @classmethod
    def _names_as_written(cls, names):
        return [as_written(name) for name in names] if isinstance(names, list) else names

    @model_validator(mode="after")
    def _something(self):
        if not (self.range or self.commits or self.branches):
            raise ValueError("give a `range`, `commits` or `branches`")
        if self.range is not None and ".." not in self.range:
            raise ValueError(f"range {self.range!r}: give `A..B` (a single commit goes under `commits`)")
        return self


def is_protected(path: str, protected: list[str]) -> bool:
    """Whether a checkout path is one of `protected` (protected_paths: files, or directories ending in /)."""
    for entry in protected:
        if entry.endswith("/") and path.startswith(entry):
            return True
        if path == entry.rstrip("/"):
            return True
    return False


def is_checkout_file(path: str) -> bool:
    """Whether `path` names a file inside a checkout, relative to its top: not absolute, no `..`, not in `.git`.
    (Symbolic links are the writer's to refuse: see farm/campaign_file/knobs.py.)"""
    parts = pathlib.PurePosixPath(path).parts
    return bool(path) and not path.startswith("/") and not path.endswith("/") and ".." not in parts \
        and ".git" not in parts


def knob_value_problem(value: str) -> str | None:
    """Why `value` cannot be a knob's value (a line break or a NUL in it), or None."""
    if any(character in KNOB_VALUE_FORBIDDEN for character in value):
        return f"the value {value!r} holds a line break or NUL; a knob value is one line of text"
    return None


class KnobWrite(Model):
    file: str | None = Field(None, description="A file in the repository (relative to its top, inside it: no `..`, "
                                                "nothing under .git, no link out of it), with `pattern`.")
    pattern: str | None = Field(None, description="For `file`: a regular expression with one group, the value's "
                                                  "place in the file's first match (multi-line mode: ^ and $ match "
                                                  "at each line).")
    env: str | None = Field(None, description="An environment variable of every phase, written to phases.env_file "
                                              "(not one the farm sets: PATH, PYTHONDONTWRITEBYTECODE, OMP_NUM_THREADS, "
                                              "OMP_PLACES, OMP_PROC_BIND).")
    flags: str | None = Field(None, description="A variable of compiler flags (e.g. CXXFLAGS) in phases.env_file: "
                                                "the values of every knob writing it, joined by spaces.")

    @field_validator("file")
    @classmethod
    def _in_checkout(cls, path):
        if path is not None and not is_checkout_file(path):
            raise ValueError(f"{path!r} is not a file inside the checkout; give a path relative to its top, without "
                             f"`..` or `.git`")
        return path

    @model_validator(mode="after")
    def _one_place(self):
        if sum(x is not None for x in (self.file, self.env, self.flags)) != 1:
            raise ValueError("give exactly one of `file` (with `pattern`), `env` or `flags`")
        if (self.file is None) != (self.pattern is None):
            raise ValueError("`file` and `pattern` go together")
        if self.pattern is not None:
            try:
                groups = re.compile(self.pattern, re.MULTILINE).groups
            except re.error as error:
                raise ValueError(f"pattern: not a regular expression: {error}") from None
            if groups != 1:
                raise ValueError(f"pattern: needs exactly one group (the value's place), has {groups}")
        for name in (self.env, self.flags):
            if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name in FARM_VARIABLES:
                raise ValueError(f"the farm sets {name} for every phase (its Python, the CPU pinning); a knob "
                                 f"cannot")
        return self


class KnobRange(Model):
    min: float = Field(description="First value.")
    max: float = Field(description="Last value (included when the steps reach it).")
    step: float = Field(gt=0, description="Added each time; integers when min and step are integers.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is larger than max ({self.max:g})")
        return self


class KnobParam(Model):
    name: str = Field(pattern=NAME_PATTERN, description="The knob's name (shown in hypothesis texts).")
    values: list[str | int | float] | None = Field(None, description="The values to try (each one line of text: "
                                                                      "no line break, no NUL).")
    range: KnobRange | None = Field(None, description="Or a range of numbers.")
    write: KnobWrite = Field(description="Where the value is written.")

    @field_validator("values")
    @classmethod
    def _one_line_each(cls, values):
        for value in values or []:
            problem = knob_value_problem(str(value))
            if problem:
                raise ValueError(problem)
        return values

    @model_validator(mode="after")
    def _values(self):
        if (self.values is None) == (self.range is None):
            raise ValueError("give exactly one of `values` or `range`")
        if not self.choices():
            raise ValueError("no values to try")
        if len(set(self.choices())) != len(self.choices()):
            raise ValueError(f"values repeat: {self.choices()}")
        if len(self.choices()) > MAX_KNOB_SETTINGS:
            raise ValueError(f"the range has more than {MAX_KNOB_SETTINGS} values; take a larger step")
        return self

    def choices(self) -> list[str]:
        """The values as the text written."""
        if self.values is not None:
            return [str(v) for v in self.values]
        r = self.range
        integral = float(r.min).is_integer() and float(r.step).is_integer()
        count = int((r.max - r.min) / r.step + 1e-9) + 1
        numbers = [r.min + i * r.step for i in range(max(count, 0))]
        return [str(int(x)) if integral else f"{x:.12g}" for x in numbers[:MAX_KNOB_SETTINGS + 1]]


class KnobsConfig(Model):
    search: Literal["grid", "random"] = Field("grid", description="`grid`: every combination of the values; "
                                                                  "`random`: `samples` distinct combinations "
                                                                  "drawn with `seed`.")
    samples: int = Field(10, ge=1, description="For `random`: how many combinations.")
    seed: int = Field(0, description="For `random`: the draw's seed (the same seed, the same hypotheses).")
    params: list[KnobParam] = Field(min_length=1, description="The knobs; each hypothesis sets all of them.")

    @model_validator(mode="after")
    def _size(self):
        names = [p.name for p in self.params]
        if len(names) != len(set(names)):
            raise ValueError(f"knob names must be unique, got {names}")
        # Several `flags` knobs share a variable by design; an `env` knob owns its variable.
        owners: dict[str, list[str]] = {}
        for param in self.params:
            for variable in filter(None, (param.write.env, param.write.flags)):
                owners.setdefault(variable, []).append(f"{param.name} ({'env' if param.write.env else 'flags'})")
        for variable, knobs in owners.items():
            if len(knobs) > 1 and any(k.endswith("(env)") for k in knobs):
                raise ValueError(f"knobs {', '.join(knobs)} all write {variable}; an `env` knob's variable is its "
                                 f"own (several `flags` knobs may share one)")
        size = math.prod(len(p.choices()) for p in self.params)
        if self.search == "grid" and size > MAX_KNOB_SETTINGS:
            raise ValueError(f"the grid has {size} combinations (more than {MAX_KNOB_SETTINGS}); use "
                             f"`search: random` with `samples`")
        return self


class BudgetConfig(Model):
    hours: float | None = Field(None, gt=0, description="Wall-clock hours since the campaign started (a resumed "
                                                        "campaign counts from its first start).")
    experiments: int | None = Field(None, ge=1, description="Screens started (like `farm run --max-experiments`; "
                                                            "the smaller of the two counts).")
    cost_usd: float | None = Field(None, gt=0, description=(
        "Agent spend in US dollars, as the agents' CLIs report it (command.report; a CLI that reports no money, "
        "Codex, counts nothing here). Checked after each experiment: the experiments running then finish."))
    tokens: int | None = Field(None, ge=1, description="Agent tokens, input and output, as the CLIs report them "
                                                       "(checked like cost_usd).")


class StopConfig(Model):
    plateau: int | None = Field(None, ge=1, description="Stop when none of the last N screens was kept.")
    target: float | None = Field(None, gt=0, description=(
        "Stop when the landed effect (the product of the landed re-measured ratios on the integration branch; "
        "< 1 is better) is at or below this, e.g. 0.8 for 20 % faster."))


class SandboxConfig(Model):
    mode: Literal["bwrap", "none"] = Field("bwrap", description=(
        "`bwrap`: every agent run (command agents, their reworks and rebases, planners) works in a scratch "
        "checkout under bubblewrap, with the filesystem read-only but for that checkout, its own files and "
        "`state_dirs`, the farm's directories hidden, a private /tmp and its own PID namespace. `none` (UNSAFE: "
        "the agent runs with the farm's own rights and can write the other slots, the store and the "
        "repository's configuration; only for agents you trust, where bubblewrap cannot run). `sandbox: none` "
        "is short for `{mode: none}`."))
    network: bool = Field(True, description="Whether agents reach the network (their APIs need it); false cuts "
                                            "it off (a new network namespace with loopback only).")
    state_dirs: list[str] = Field(default_factory=list, description=(
        "More directories (or files) an agent may write, ~ expanded, beside the scratch checkout and the "
        "preset's own (claude-code: ~/.claude and ~/.claude.json, codex: ~/.codex, opencode: its data, config "
        "and cache directories, aider: ~/.aider)."))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        return {"mode": data} if isinstance(data, str) else data


class CommandAgentConfig(Model):
    preset: Literal["claude-code", "codex", "aider", "opencode"] | None = Field(None, description=(
        "A coding-agent CLI with the farm's defaults (see farm/coding_agents/agents.py; `farm validate` shows the "
        "command "
        "line): `claude-code` (claude -p, a turn limit, permissions skipped), `codex` (codex exec, workspace-write "
        "sandbox), `aider` (aider --yes --message-file, no auto-commits), `opencode` (opencode run). Give this "
        "or `command`."))
    command: str | None = Field(None, description=(
        "The shell command that runs the agent in the candidate worktree (pinned to the worker's CPUs, in its own "
        "process tree, killed at `timeout`); it overrides the preset's. It reads its task from the file "
        "$FARM_PROMPT_FILE and may leave notes (why, what it expects) in $FARM_NOTES_FILE; see README, Agents."))
    model: str | None = Field(None, description="Passed to the preset's CLI as its model option.")
    max_turns: int = Field(30, ge=1, description="claude-code: the turn limit of one run.")
    timeout: float = Field(1800.0, gt=0, description="Seconds before the agent's whole process tree is killed "
                                                     "(status `timeout`).")
    stall_timeout: float | None = Field(900.0, gt=0, description=(
        "Seconds an agent may print nothing and change no file in its checkout before it is killed as `timeout` "
        "with the reason \"stalled\" (a hung CLI, a login prompt nobody answers); null: only `timeout`."))
    pause_after: int = Field(3, ge=1, description=(
        "Agent failures (crash or timeout of the agent itself) in a row with the same cause that pause the "
        "strategy: its remaining hypotheses are skipped, with one line and an `events` row (kind `paused`), "
        "instead of burning its queue on a CLI that cannot work."))
    preflight: bool = Field(True, description=(
        "For a preset: `farm validate` and `farm run` first ask its CLI whether it is logged in, with the CLI's own "
        "status command (no model call, nothing spent; farm/coding_agents/preflight.py), and refuse the campaign with "
        "one line "
        "if not. false: skip the check (for a login it cannot see)."))
    report: Literal["claude-json", "codex-jsonl", "opencode-json", "aider-text", "none"] | None = Field(
        None, description=(
        "The format of the session summary the CLI prints on stdout, read for its cost, tokens, turns and "
        "session id (farm/coding_agents/agent_spend.py; stored in `agent_runs`, counted by budget.cost_usd and "
        "budget.tokens). "
        "Default: the preset's (claude-code `claude-json`, codex `codex-jsonl`, opencode `opencode-json`, aider "
        "`aider-text`); `none` for a custom command unless given."))

    @model_validator(mode="after")
    def _one_command(self):
        if (self.preset is None) == (self.command is None):
            raise ValueError("give exactly one of `preset` or `command`")
        return self


class StrategyConfig(Model):
    name: str = Field(pattern=NAME_PATTERN, description="Strategy name (unique).")
    agent: Literal["patch", "command", "knobs", "refs"] = Field("patch", description=(
        "How hypotheses are realised. `patch`: apply the hypothesis' diff. `command`: run a coding agent (see "
        "`command`) in the worktree. `knobs`: write one setting of the knobs (see `knobs`; implied by it). "
        "`refs`: an existing commit's tree, measured against its own parent (see `refs`; implied by it)."))
    command: CommandAgentConfig | None = Field(None, description="The agent for `agent: command`.")
    hypotheses: list[HypothesisConfig] = Field(default_factory=list, description="Hypotheses listed inline.")
    pack: PackConfig | None = Field(None, description="Hypotheses read from a pack directory.")
    open: int = Field(0, ge=0, description="For `agent: command`: this many open hypotheses, where the agent "
                                           "picks its own idea (the prompt asks it to).")
    planner: PlannerConfig | None = Field(None, description="For `agent: command`: a command that proposes the "
                                                            "next hypotheses from the strategy memory whenever "
                                                            "the strategy has none left to run.")
    refs: RefsConfig | None = Field(None, description="Existing commits as hypotheses, each measured against its "
                                                      "own parent; screen-only (nothing lands).")
    knobs: KnobsConfig | None = Field(None, description="A search over build and run parameters; each "
                                                        "hypothesis is one setting of all of them.")

    @model_validator(mode="before")
    @classmethod
    def _implied_agent(cls, data):
        """`refs:` or `knobs:` alone says which agent realises them."""
        if isinstance(data, dict) and "agent" not in data:
            implied = [name for name in ("refs", "knobs") if data.get(name) is not None]
            if len(implied) == 1:
                data = {**data, "agent": implied[0]}
        return data

    @model_validator(mode="after")
    def _has_source(self):
        for source in ("refs", "knobs"):
            given = getattr(self, source) is not None
            if given and self.agent != source:
                raise ValueError(f"`{source}` hypotheses are realised by `agent: {source}` (or leave `agent` out)")
            if self.agent == source and not given:
                raise ValueError(f"agent `{source}` needs `{source}: ...`")
            if given and (self.hypotheses or self.pack or self.open or self.planner):
                raise ValueError(f"a `{source}` strategy has no other hypotheses; give them their own strategy")
        # A strategy with no source is a typo (e.g. `hypothesis:`) that would silently contribute nothing.
        if not (self.hypotheses or self.pack or self.open or self.planner or self.refs or self.knobs):
            raise ValueError("give inline `hypotheses`, a `pack` directory, `refs`, `knobs`, or (agent: command) "
                             "`open: N` or a `planner`")
        if self.agent == "command" and self.command is None:
            raise ValueError("agent `command` needs `command: {preset: ...}` or `command: {command: ...}`")
        if self.agent != "command" and (self.open or self.planner):
            raise ValueError("`open` and `planner` hypotheses are texts: they need a coding agent (agent: command)")
        if self.agent == "patch":
            missing = [h.id for h in self.hypotheses if h.patch is None]
            if missing:
                raise ValueError(f"the patch agent needs a `patch` for every hypothesis; missing for {missing}")
        return self


class CampaignConfig(Model):
    campaign: str = Field(pattern=NAME_PATTERN, description="Campaign name; branches are farm/<campaign>/...")
    target: TargetConfig = Field(description="The repository to optimise.")
    workdir: str | None = Field(None, description="Where worktrees, logs, the store and reports go; "
                                                  "default .farm/<campaign> under the current directory.")
    db: str | None = Field(None, description="DuckDB file; default <workdir>/farm.duckdb.")
    workers: WorkersConfig = Field(default_factory=WorkersConfig, description="Worker actors and their CPU sets.")
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig, description="Whether the workers "
                                           "of a node measure one at a time.")
    phases: PhasesConfig = Field(description="Commands run in each checkout.")
    benchmarks: dict[str, BenchmarkConfig] = Field(default_factory=dict, description="Benchmarks that decide; "
                                                   "default: every benchmark the bench command prints, lower is "
                                                   "better.")
    protected_paths: list[str] = Field(default_factory=list, description="Paths (files, or directories ending in /) "
                                                                         "an experiment may not touch: the benchmark "
                                                                         "harness, guard data. Touching one is "
                                                                         "`tampered`.")
    acceptance: AcceptanceConfig = Field(default_factory=AcceptanceConfig, description="Statistics of the verdict.")
    merge: MergeConfig = Field(default_factory=MergeConfig, description="How kept experiments land.")
    memory: MemoryConfig = Field(default_factory=MemoryConfig, description="The strategy memory command agents "
                                                                           "read, and when categories are given up.")
    race: RaceConfig = Field(default_factory=RaceConfig, description="How several strategies share the workers "
                                                                     "and the integration branch.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description=(
        "Limits of the campaign. Reaching one ends it like one Ctrl-C, but whole: no new screen starts, what runs "
        "finishes, kept screens land, the final confirmation runs, and the reason is an `events` row (kind "
        "`stopped`)."))
    stop: StopConfig = Field(default_factory=StopConfig, description="Rules that end the campaign early, as a "
                                                                     "budget does.")
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig, description="Where agents run: bubblewrap "
                                                                              "(default) or, unsafe, `none`.")
    strategies: list[StrategyConfig] = Field(min_length=1, description="Hypothesis sources.")
    source_dir: str = Field("", description="Set by the loader: the directory of the config file.", exclude=True)
    source_file: str = Field("", description="Set by the loader: the config file, named in error messages.",
                             exclude=True)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [s.name for s in self.strategies]
        if len(names) != len(set(names)):
            raise ValueError(f"strategy names must be unique, got {names}")
        if self.race.mode == "race":
            # A lineage branch farm/<campaign>/<strategy> must not be the integration branch or an experiment's.
            clashes = [n for n in names if n == "integrated" or re.fullmatch(rf"{re.escape(self.campaign)}-\d+", n)]
            if clashes:
                raise ValueError(f"race mode: strategy names {clashes} would clash with the campaign's own branches "
                                 f"(farm/{self.campaign}/integrated, farm/{self.campaign}/{self.campaign}-NNNN); "
                                 f"rename them")
        return self

    @model_validator(mode="after")
    def _instructions_per_benchmark(self):
        if "instructions" not in self.measurement.channels:
            return self
        command = self.phases.bench.instructions_command
        printed = self.printed_benchmarks()
        if not printed:
            raise ValueError("measurement.channels: instructions: name the benchmarks (benchmarks:) whose "
                             "instructions are counted")
        if len(printed) > 1 and (command is None or "{benchmark}" not in command):
            raise ValueError("measurement.channels: instructions with several benchmarks: give "
                             "phases.bench.instructions_command with {benchmark} in it (one count per benchmark)")
        return self

    def instructions_command(self, benchmark: str) -> str:
        """The command whose instructions count as `benchmark`'s (phases.bench.instructions_command)."""
        command = self.phases.bench.instructions_command or self.phases.bench.command
        return command.replace("{benchmark}", shlex.quote(benchmark))

    def strategy(self, name: str) -> StrategyConfig:
        return next(s for s in self.strategies if s.name == name)

    def problem(self, where: str, message: str) -> str:
        """One error line in the loader's style, `file: field.path: message` (no file when built in code)."""
        return f"{self.source_file}: {where}: {message}" if self.source_file else f"{where}: {message}"

    def printed_benchmarks(self) -> list[str]:
        """The configured benchmarks the bench command must print (not those measured by the farm)."""
        return [name for name, settings in self.benchmarks.items() if settings.metric == "printed"]

    def memory_benchmarks(self) -> list[str]:
        """The benchmarks on the runs' peak resident memory (benchmarks.NAME.metric: peak_rss)."""
        return [name for name, settings in self.benchmarks.items() if settings.metric == "peak_rss"]

    def held_out(self) -> list[str]:
        """The benchmarks kept from agents and screens (benchmarks.NAME.held_out)."""
        return [name for name, settings in self.benchmarks.items() if settings.held_out]

    def resolve(self, path: str) -> pathlib.Path:
        """A path from the file, made absolute against the file's directory."""
        return (pathlib.Path(self.source_dir or ".") / os.path.expanduser(path)).resolve()


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: `file: field.path: message`."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{source}: {where}: {problem['msg']}")
    return "\n".join(lines)


class YamlInt(int):
    """A YAML integer that remembers how it was written: `commits: [6995621]` is a commit id, not a number."""

    text: str


class YamlFloat(float):
    """A YAML float that remembers how it was written (`7e76581`, a commit id, would be inf)."""

    text: str


class _NumbersKeepTheirText(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (its C parser, libyaml, where PyYAML was built with it: a tenth of the time, 10-100 ms of
    `farm validate` on a pack's manifest), but a number also carries the text it was read from (YamlInt,
    YamlFloat)."""

    def construct_yaml_int(self, node):
        number = YamlInt(super().construct_yaml_int(node))
        number.text = node.value
        return number

    def construct_yaml_float(self, node):
        number = YamlFloat(super().construct_yaml_float(node))
        number.text = node.value
        return number


_NumbersKeepTheirText.add_constructor("tag:yaml.org,2002:int", _NumbersKeepTheirText.construct_yaml_int)
_NumbersKeepTheirText.add_constructor("tag:yaml.org,2002:float", _NumbersKeepTheirText.construct_yaml_float)


def as_written(value):
    """A name YAML read as a number (a commit id such as 6995621 or 7e76581), as the file wrote it; any other
    number is refused with what to do (ValueError); anything else is left for the field to check."""
    if isinstance(value, (YamlInt, YamlFloat)):
        return value.text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is a number: quote a commit id or ref (\"{value}\")")
    return value


def parse_yaml_mapping(path: str | os.PathLike, text: str, expected: str, example: str) -> dict:
    """The YAML mapping in `text` (read from `path`); ConfigError with the line and column of a syntax error,
    or what was found instead of `expected` (with `example` to look at). Numbers remember their text
    (YamlInt, YamlFloat): a commit id YAML took for a number is read as written (as_written)."""
    try:
        data = yaml.load(text, Loader=_NumbersKeepTheirText)  # a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: not valid YAML: {where}{getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: (top level): expected {expected}, got {got} (see {example})")
    return data


def load_config(path: str | os.PathLike) -> CampaignConfig:
    """Read and validate a campaign file. Raises ConfigError with one line per problem."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: (top level): not UTF-8 text (byte {error.start}); give a YAML campaign file "
                          f"(see configs/demo.yaml)") from None
    data = parse_yaml_mapping(path, text, "a mapping of campaign fields", "configs/demo.yaml")
    loader_fields = sorted({"source_dir", "source_file"} & set(data))
    if loader_fields:
        raise ConfigError(f"{path}: {loader_fields[0]}: set by the loader, not the file; remove it")
    try:
        # model_validate, not CampaignConfig(**data): YAML keys need not be strings (`1: x`).
        return CampaignConfig.model_validate({**data, "source_dir": str(path.resolve().parent),
                                              "source_file": str(path)})
    except ValidationError as error:
        raise ConfigError(format_validation_error(str(path), error)) from None
