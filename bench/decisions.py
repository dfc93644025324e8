"""Decision quality of the farm's acceptance rule against the rules people use.

Simulated experiments with known truth, each on two benchmarks ("a" carries
the effect, "b" is unchanged unless the scenario says otherwise), decided by:

  farm       stats/: A/A noise floor, group-sequential repeated intervals,
             Holm across benchmarks (the code the pipeline runs)
  naive      keep if the total went down against one stored baseline run (karpathy/autoresearch)
  agr        keep if any benchmark gained > 5 % or > 2 sigma and none lost > 5 %, against 3 stored
             baseline runs (the founding case study's rule)
  mwu_fixed  Mann-Whitney U per benchmark at alpha 0.05 on a fixed number of blocks (benchstat),
             keep if one benchmark is significantly faster and none significantly slower

Noise model, in log space: every run = effect + drift + a block term shared by the two runs of a block
(half the variance) + an independent term (the other half); the noise CV is the total per-run standard
deviation. The stored-baseline rules measure their baseline at campaign start and the candidate later.

    python bench/decisions.py --out decisions.json        # about a minute on one core
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from stats import Outlook, decide_benchmark, decide_experiment, default_schedule  # noqa: E402
from stats.noise import aa_log_ratios, aa_noise, effect_floor, robust_noise  # noqa: E402

BENCHMARKS = ("a", "b")


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: str  # null | better | worse
    effect_cv: float  # effect on benchmark "a" in units of the noise CV (negative is faster)
    other_cv: float = 0.0  # effect on benchmark "b"
    drift_cv: float = 0.0  # machine drift between the stored baseline and the experiment, in CVs
    outlier: float = 1.0  # factor on the first reference run (and on the stored baseline)
    heavy_tails: bool = False
    cand_noise: float = 1.0  # factor on the candidate's own noise (a change that makes timings noisier)


SCENARIOS = (
    Scenario("null", "null", 0.0),
    Scenario("null_drift", "null", 0.0, drift_cv=-3.0),
    Scenario("null_outlier_baseline", "null", 0.0, outlier=1.08),
    Scenario("null_heavy_tails", "null", 0.0, heavy_tails=True),
    Scenario("null_noisier_candidate", "null", 0.0, cand_noise=3.0),
    Scenario("better_0.5cv", "better", -0.5),
    Scenario("better_1cv", "better", -1.0),
    Scenario("better_2cv", "better", -2.0),
    Scenario("better_3cv", "better", -3.0),
    Scenario("better_5cv", "better", -5.0),
    Scenario("better_10cv", "better", -10.0),
    Scenario("better_3cv_heavy_tails", "better", -3.0, heavy_tails=True),
    Scenario("win_with_regression", "worse", -5.0, other_cv=3.0),
    Scenario("worse_3cv", "worse", 3.0),
)


@dataclass(frozen=True)
class Settings:
    cv: float = 0.02
    min_effect: float = 0.01
    noise_k: float = 1.0
    aa_blocks: int = 8
    min_blocks: int = 3
    max_blocks: int = 20
    mwu_blocks: int = 10
    alpha: float = 0.05
    beta: float = 0.2
    shared: float = 0.5  # share of the per-run variance common to the two runs of a block


class Simulator:
    def __init__(self, settings: Settings, seed: int):
        self.s = settings
        self.rng = np.random.default_rng(seed)

    def _noise(self, shape, heavy: bool) -> np.ndarray:
        if heavy:  # Student t with 3 degrees of freedom, scaled to unit variance
            return self.rng.standard_t(3, size=shape) / math.sqrt(3.0)
        return self.rng.standard_normal(shape)

    def blocks(self, sc: Scenario, n_exp: int, n_blocks: int, with_effect: bool = True):
        """(ref, cand) of shape (experiments, blocks, benchmarks), interleaved ABBA blocks."""
        s = self.s
        shape = (n_exp, n_blocks, len(BENCHMARKS))
        shared = math.sqrt(s.shared) * s.cv * self._noise(shape, sc.heavy_tails)
        own = math.sqrt(1.0 - s.shared) * s.cv
        ref = shared + own * self._noise(shape, sc.heavy_tails)
        cand = shared + sc.cand_noise * own * self._noise(shape, sc.heavy_tails)
        # Drift continues during the experiment at the pace that moved it drift_cv over 100 runs;
        # the arm that runs second in a block runs one step later (ABBA order).
        step = sc.drift_cv * s.cv / 100.0
        block_time = 2.0 * np.arange(n_blocks)[None, :, None]
        cand_first = (np.arange(n_blocks) % 2 == 1)[None, :, None]
        ref = ref + step * (block_time + np.where(cand_first, 1.0, 0.0))
        cand = cand + step * (block_time + np.where(cand_first, 0.0, 1.0))
        if with_effect:
            cand = cand + s.cv * np.array([sc.effect_cv, sc.other_cv])[None, None, :]
        ref[:, 0, :] += math.log(sc.outlier)
        return np.exp(ref), np.exp(cand)

    def stored_baseline(self, sc: Scenario, n_exp: int, runs: int) -> np.ndarray:
        """Baseline runs measured at campaign start: shape (experiments, runs, benchmarks)."""
        values = self.s.cv * self._noise((n_exp, runs, len(BENCHMARKS)), sc.heavy_tails)
        values[:, 0, :] += math.log(sc.outlier)
        return np.exp(values)

    def later_runs(self, sc: Scenario, n_exp: int, runs: int) -> np.ndarray:
        """Candidate runs measured 100 runs after the baseline (where the drift has got to)."""
        s = self.s
        values = sc.cand_noise * s.cv * self._noise((n_exp, runs, len(BENCHMARKS)), sc.heavy_tails)
        values = values + sc.drift_cv * s.cv + s.cv * np.array([sc.effect_cv, sc.other_cv])[None, None, :]
        return np.exp(values)


def farm_rule(sim: Simulator, sc: Scenario, n_exp: int):
    s = sim.s
    looks = default_schedule(s.min_blocks, s.max_blocks)
    aa_first, aa_second = sim.blocks(Scenario("aa", "null", 0.0, heavy_tails=sc.heavy_tails,
                                              drift_cv=sc.drift_cv), n_exp, s.aa_blocks, with_effect=False)
    ref, cand = sim.blocks(sc, n_exp, s.max_blocks)
    keeps, blocks = 0, 0
    for e in range(n_exp):
        aa = [aa_log_ratios(aa_first[e, :, b], aa_second[e, :, b]) for b in range(len(BENCHMARKS))]
        noise = [aa_noise(logs) for logs in aa]
        floors = [effect_floor(s.min_effect, robust_noise(logs), s.noise_k) for logs in aa]
        for n in looks:
            decisions = [decide_benchmark(name, ref[e, :n, b], cand[e, :n, b], floors[b], alpha=s.alpha,
                                          looks=looks, aa_sd=noise[b], aa_df=s.aa_blocks - 1, beta=s.beta)
                         for b, name in enumerate(BENCHMARKS)]
            result = decide_experiment(decisions, alpha=s.alpha, looks=looks, final=n == looks[-1])
            if result.outlook is not Outlook.CONTINUE:
                break
        keeps += result.outlook is Outlook.KEEP
        blocks += n
    return keeps / n_exp, blocks / n_exp


def naive_rule(sim: Simulator, sc: Scenario, n_exp: int):
    base = sim.stored_baseline(sc, n_exp, 1).sum(axis=2)[:, 0]
    cand = sim.later_runs(sc, n_exp, 1).sum(axis=2)[:, 0]
    return float(np.mean(cand < base)), 1.0


def agr_rule(sim: Simulator, sc: Scenario, n_exp: int):
    base = sim.stored_baseline(sc, n_exp, 3)
    mean, sigma = base.mean(axis=1), base.std(axis=1, ddof=1)
    cand = sim.later_runs(sc, n_exp, 1)[:, 0, :]
    gain = (mean - cand) / mean
    improved = (gain > 0.05) | (mean - cand > 2.0 * sigma)
    regressed = gain < -0.05
    keep = improved.any(axis=1) & ~regressed.any(axis=1)
    return float(np.mean(keep)), 1.0


def mwu_rule(sim: Simulator, sc: Scenario, n_exp: int, n_blocks: int | None = None):
    n = n_blocks or sim.s.mwu_blocks
    ref, cand = sim.blocks(sc, n_exp, n)
    p = scipy_stats.mannwhitneyu(cand, ref, axis=1, alternative="two-sided").pvalue
    faster = np.median(cand, axis=1) < np.median(ref, axis=1)
    significant = p < sim.s.alpha
    keep = (significant & faster).any(axis=1) & ~(significant & ~faster).any(axis=1)
    return float(np.mean(keep)), float(n)


RULES = {"farm": farm_rule, "naive": naive_rule, "agr": agr_rule, "mwu_fixed": mwu_rule}


def run(settings: Settings, experiments: int, seed: int) -> dict:
    out = {"alpha": settings.alpha, "rules": {name: {} for name in RULES}}
    for i, sc in enumerate(SCENARIOS):
        for name, rule in RULES.items():
            keep_rate, mean_blocks = rule(Simulator(settings, seed + 1000 * i), sc, experiments)
            out["rules"][name][sc.name] = {"truth": sc.truth, "effect_cv": sc.effect_cv, "keep_rate": keep_rate,
                                           "mean_blocks": mean_blocks}
    return out


def equal_power_comparison(settings: Settings, results: dict, experiments: int, seed: int) -> list[dict]:
    """Per effect where the farm has power >= 0.9: the fewest fixed blocks with which Mann-Whitney U
    keeps at least as often as the farm did, less 0.01 (near a power of 1, Monte-Carlo noise would
    otherwise decide the match)."""
    rows = []
    for sc in SCENARIOS:
        farm = results["rules"]["farm"][sc.name]
        if sc.truth != "better" or farm["keep_rate"] < 0.9:
            continue
        p = farm["keep_rate"]
        target = p - 0.01
        row = {"scenario": sc.name, "farm_power": p, "farm_mean_blocks": farm["mean_blocks"],
               "mwu_blocks_for_equal_power": None, "mwu_power": None, "blocks_saved": None}
        for n in range(3, 41):
            power, _ = mwu_rule(Simulator(settings, seed + 7), sc, experiments, n)
            if power >= target:
                row.update(mwu_blocks_for_equal_power=n, mwu_power=power, blocks_saved=1 - farm["mean_blocks"] / n)
                break
        rows.append(row)
    return rows


def format_table(results: dict) -> str:
    rules = list(results["rules"])
    scenarios = list(results["rules"]["farm"])
    header = f"{'scenario':<24} {'truth':<6} {'effect':>6}  " + "  ".join(f"{r + ' keep/blocks':>21}" for r in rules)
    lines = [header, "-" * len(header)]
    for name in scenarios:
        row = results["rules"]["farm"][name]
        cells = []
        for rule in rules:
            r = results["rules"][rule][name]
            cells.append(f"{r['keep_rate']:>13.3f} {r['mean_blocks']:>7.1f}")
        lines.append(f"{name:<24} {row['truth']:<6} {row['effect_cv']:>6.1f}  " + "  ".join(cells))
    return "\n".join(lines)


def check_targets(results: dict, comparison: list[dict]) -> list[str]:
    alpha = results["alpha"]
    farm = results["rules"]["farm"]
    lines = []
    for name, row in farm.items():
        if row["truth"] != "better":
            verdict = "ok" if row["keep_rate"] <= alpha else "MISSED"
            lines.append(f"false keeps {name}: {row['keep_rate']:.3f} <= {alpha} {verdict}")
    power = farm["better_3cv"]["keep_rate"]
    lines.append(f"power at 3 CV: {power:.3f} >= 0.9 {'ok' if power >= 0.9 else 'MISSED'}")
    mwu = results["rules"]["mwu_fixed"]["better_3cv"]
    lines.append(f"against benchstat's fixed {mwu['mean_blocks']:.0f} blocks at 3 CV: farm power {power:.3f} with "
                 f"{farm['better_3cv']['mean_blocks']:.2f} blocks, Mann-Whitney U power {mwu['keep_rate']:.3f}")
    for row in comparison:
        if row["blocks_saved"] is None:
            lines.append(f"equal power, {row['scenario']}: Mann-Whitney U does not reach {row['farm_power']:.3f} "
                         f"within 40 blocks")
            continue
        verdict = "ok" if row["blocks_saved"] >= 0.3 else "MISSED"
        lines.append(f"equal power, {row['scenario']}: farm {row['farm_mean_blocks']:.2f} blocks (power "
                     f"{row['farm_power']:.3f}) vs Mann-Whitney U {row['mwu_blocks_for_equal_power']} blocks (power "
                     f"{row['mwu_power']:.3f}) -> {row['blocks_saved']:.0%} fewer (target 30%) {verdict}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write the results to")
    parser.add_argument("--experiments", type=int, default=2000, help="simulated experiments per scenario and rule")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise-k", type=float, default=Settings.noise_k, help="effect floor = k x A/A noise")
    args = parser.parse_args(argv)
    settings = Settings(noise_k=args.noise_k)
    started = time.time()
    results = run(settings, args.experiments, args.seed)
    comparison = equal_power_comparison(settings, results, args.experiments, args.seed)
    results["settings"] = settings.__dict__ | {"experiments": args.experiments, "seed": args.seed,
                                               "looks": list(default_schedule(settings.min_blocks,
                                                                              settings.max_blocks))}
    results["equal_power"] = comparison
    table = format_table(results)
    targets = check_targets(results, comparison)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    pathlib.Path(args.out).with_suffix(".txt").write_text(table + "\n\n" + "\n".join(targets) + "\n")
    print(table)
    print()
    print("\n".join(targets))
    print(f"\n{args.experiments} experiments per cell, {time.time() - started:.0f} s; wrote {args.out} and "
          f"{pathlib.Path(args.out).with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
