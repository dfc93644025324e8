"""Racing strategies without Ray: the share of the workers, rungs, stuck strategies, lineages and the end of a race
(with a real store). The same with real Ray and git: tests/scheduler/test_race_campaign.py."""
import itertools
import json

from farm.campaign_file.config import CampaignConfig
from farm.records import Hypothesis, Kind, Status
from farm.storage.store_writes import AddAllocations, MarkLost
from scheduler.campaign import Campaign
from scheduler.race import Race
from tests.scheduler.test_campaign_state import BASE, Recorder, _improving_discard, _result
from tests.scheduler.tiny_repo import config_dict


def _race(tmp_path, strategies: dict[str, int], workers=("w0", "w1"), **race):
    """A campaign racing `strategies` (name -> number of hypotheses, ids <name>1, <name>2, ...)."""
    config = CampaignConfig(**config_dict(
        tmp_path, [], acceptance={"aa_blocks": 3, "min_blocks": 3, "max_blocks": 4, "extension_looks": [],
                                  "canary_every": 100},
        memory={"stuck_after": 3}, race={"mode": "race", **race},
        strategies=[{"name": name, "hypotheses": [{"id": f"{name}{i}", "patch": "x"} for i in range(1, n + 1)]}
                    for name, n in strategies.items()]))
    hypotheses = [Hypothesis(id=f"{name}{i}", strategy=name, category="c", text="", agent="patch", patch="x")
                  for name, n in strategies.items() for i in range(1, n + 1)]
    return Campaign(config, hypotheses, BASE, list(workers), say=lambda line: None)


def _drive(campaign, effects: dict[str, float], recorder=None, stop_after=None):
    """Run the campaign: every experiment ends at once. A screen or merge of a hypothesis whose strategy is in
    `effects` is kept with that effect, any other is discarded. Returns the assignments in order."""
    commits = itertools.count(1)
    started = []
    while stop_after is None or len(started) < stop_after:
        batch = [a for a in (campaign.assign(w, (0,)) for w in campaign.workers) if a is not None]
        if not batch:
            if recorder:  # what the last look decided (the coordinator saves it when it stops)
                recorder.save()
            return started
        for a in batch:
            started.append(a)
            effect = effects.get(a.hypothesis.strategy) if a.kind in (Kind.SCREEN, Kind.MERGE) else 1.0
            status = {Kind.AA: Status.AA_CLEAN, Kind.CONFIRM: Status.KEEP}.get(
                a.kind, Status.KEEP if effect else Status.DISCARD)
            campaign.finish(_result(a, status, effect=effect, commit=f"{next(commits):040x}", ratio=effect or 1.0))
            if recorder:
                recorder.save()
    return started


def test_the_workers_are_shared_and_the_weaker_half_loses_them_at_a_rung(tmp_path):
    campaign = _race(tmp_path, {"fast": 6, "slow": 6}, rung=2)
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {"fast": 0.8}, recorder)

    screens = [a.hypothesis.id for a in started if a.kind is Kind.SCREEN]
    # Shared equally until the first rung (two screens each, merges done): then slow is below the better half.
    assert sorted(screens[:4]) == ["fast1", "fast2", "slow1", "slow2"]
    assert screens[4:] == ["fast3", "fast4", "fast5", "fast6"]
    # Each strategy builds on its own lineage: fast's screens start from fast's last landing.
    fast = campaign.lineages["fast"]
    assert [k.hypothesis_id for k in fast.landed] == [f"fast{i}" for i in range(1, 7)]
    assert all(a.parent_commit == BASE for a in started if a.hypothesis.strategy == "slow")
    assert [a.lineage for a in started if a.kind is Kind.MERGE] == ["fast"] * 6
    # The race is over: fast's lineage is the integration branch, and the final confirmation measured it.
    assert campaign.tip == fast.tip and campaign.landed == [k.experiment_id for k in fast.landed]
    assert started[-1].kind is Kind.CONFIRM and started[-1].pick_tip == fast.tip

    events = recorder.rows("SELECT message FROM events WHERE kind = 'reallocation' ORDER BY ts")
    assert len(events) == 4, events  # the start, the rung, fast has nothing left, the end
    assert events[2] == ("fast has nothing left to run",) and events[3][0].startswith("race over: fast wins")
    assert "rung 1 (2 screens each; landed fast 0.640x, slow 1.000x): slow is below the better half; 4 of its " \
           "hypotheses will not run" == events[1][0]
    assert recorder.rows("SELECT strategy, status, workers, screens, kept, landed, round(landed_ratio, 4) "
                         "FROM race_results ORDER BY strategy") == [
        ("fast", "winner", 0.0, 6, 6, 6, round(0.8 ** 6, 4)), ("slow", "dropped", 0.0, 2, 0, 0, 1.0)]
    assert recorder.rows("SELECT reason FROM race_results WHERE strategy = 'slow'") == [events[1]]
    # Workers over time: equal shares at the start, all to fast after the rung.
    assert recorder.rows("SELECT rung, strategy, status, workers FROM allocations ORDER BY ts, strategy") == [
        (0, "fast", "racing", 1.0), (0, "slow", "racing", 1.0), (1, "fast", "racing", 2.0), (1, "slow", "dropped", 0.0),
        (1, "fast", "finished", 0.0), (1, "slow", "dropped", 0.0), (1, "fast", "winner", 0.0),
        (1, "slow", "dropped", 0.0)]
    assert recorder.rows("SELECT count(*) FROM merges WHERE lineage = 'fast' AND landed") == [(6,)]


def test_without_a_difference_nobody_is_dropped(tmp_path):
    campaign = _race(tmp_path, {"a": 4, "b": 4}, rung=2)
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {}, recorder)
    assert sorted(a.hypothesis.id for a in started if a.kind is Kind.SCREEN) == \
        ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]
    messages = [m for (m,) in recorder.rows("SELECT message FROM events WHERE kind = 'reallocation' ORDER BY ts")]
    assert any("rung 1" in m and "no difference, every strategy keeps racing" in m for m in messages)
    assert messages[-1].startswith("race over: nothing landed")
    assert campaign.tip == BASE and not any(a.kind is Kind.CONFIRM for a in started)


def test_a_stuck_strategy_loses_its_workers_before_any_rung(tmp_path):
    campaign = _race(tmp_path, {"good": 6, "stuck": 8}, rung=50)
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {"good": 0.9}, recorder)
    stuck = [a.hypothesis.id for a in started if a.kind is Kind.SCREEN and a.hypothesis.strategy == "stuck"]
    assert stuck == ["stuck1", "stuck2", "stuck3"]  # memory.stuck_after = 3 misses in a row
    assert recorder.rows("SELECT message FROM events WHERE message LIKE 'stuck is stuck%'") == [
        ("stuck is stuck: its last 3 screens were not kept; 5 of its hypotheses will not run",)]


def test_the_other_lineages_winners_are_offered_on_top_of_the_best_and_re_measured(tmp_path):
    campaign = _race(tmp_path, {"a": 2, "b": 2})
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {"a": 0.7, "b": 0.9}, recorder)
    a, b = campaign.lineages["a"], campaign.lineages["b"]
    offered = [x for x in started if x.kind is Kind.MERGE and x.lineage == "integrated"]
    # b's two landings, each re-measured on the integration branch, which starts at a's lineage tip.
    assert [x.hypothesis.id for x in offered] == ["b1", "b2"]
    assert offered[0].parent_commit == a.tip
    assert [(x.pick_base, x.pick_tip) for x in offered] == [(k.parent_commit, k.commit) for k in b.landed]
    assert campaign.landed == [k.experiment_id for k in a.landed] + [k.experiment_id for k in b.landed]
    assert recorder.rows("SELECT lineage, position FROM merges WHERE landed ORDER BY merged_at") == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("integrated", 3), ("integrated", 4)]
    assert recorder.rows("SELECT strategy FROM race_results WHERE status = 'winner'") == [("a",)]
    assert started[-1].kind is Kind.CONFIRM and started[-1].pick_tip == campaign.tip


def test_a_race_resumes_where_it_stopped(tmp_path):
    campaign = _race(tmp_path, {"fast": 4, "slow": 4}, rung=2)
    recorder = Recorder(tmp_path, campaign)
    first = _drive(campaign, {"fast": 0.8}, recorder, stop_after=8)
    running = campaign.assign("w0", (0,))  # the coordinator dies while this runs
    state = json.loads(json.dumps(campaign.to_dict()))
    resumed = _race(tmp_path, {"fast": 4, "slow": 4}, rung=2)
    resumed.restore(state)
    resumed.resume()
    assert isinstance(resumed.writes[0], MarkLost) and not any(isinstance(w, AddAllocations) for w in resumed.writes)
    assert resumed.race.to_dict() == campaign.race.to_dict()
    assert {n: lineage.to_dict() for n, lineage in resumed.lineages.items()} == \
        {n: lineage.to_dict() for n, lineage in campaign.lineages.items()}
    rest = _drive(resumed, {"fast": 0.8})
    assert rest[0].retry_of == running.experiment_id and rest[0].lineage == running.lineage
    screened = {a.hypothesis.id for a in first + rest if a.kind is Kind.SCREEN}
    assert screened == {"fast1", "fast2", "fast3", "fast4", "slow1", "slow2"}
    assert resumed.tip == resumed.lineages["fast"].tip != BASE


def test_in_shared_mode_the_race_ranks_what_each_strategy_landed_on_the_integration_branch(tmp_path):
    campaign = _race(tmp_path, {"fast": 3, "slow": 3}, mode="shared", rung=1)
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {"fast": 0.8}, recorder)
    assert set(campaign.lineages) == {"integrated"}
    assert [a.hypothesis.id for a in started if a.kind is Kind.SCREEN][2:] == ["fast2", "fast3"]
    assert [k.hypothesis_id for k in campaign.lineages["integrated"].landed] == ["fast1", "fast2", "fast3"]
    assert recorder.rows("SELECT strategy, status, landed FROM race_results ORDER BY strategy") == [
        ("fast", "winner", 3), ("slow", "dropped", 0)]


def test_the_last_strategy_with_work_keeps_it_even_below_the_bar(tmp_path):
    campaign = _race(tmp_path, {"done": 1, "rest": 3}, rung=1)
    recorder = Recorder(tmp_path, campaign)
    started = _drive(campaign, {"done": 0.8}, recorder)
    assert [a.hypothesis.id for a in started if a.kind is Kind.SCREEN and a.hypothesis.strategy == "rest"] == \
        ["rest1", "rest2", "rest3"]
    assert recorder.rows("SELECT count(*) FROM events WHERE message LIKE 'rung 1 %: none above the bar has anything "
                         "left to run, every strategy keeps racing'") == [(1,)]


def test_a_voided_verdict_counts_nowhere_in_the_race():
    race = Race(["a", "b"], rung=0, stuck_after=3)
    for experiment_id in ("e1", "e2", "e3"):
        race.screened("b", experiment_id, False, None, True)
    race.screened("a", "e4", True, 0.9, False)  # kept, screen-only: its effect is a's gain
    race.voided("b", "e2", False, None, True)
    race.voided("a", "e4", True, 0.9, False)
    assert (race.strategies["b"]["finished"], race.strategies["b"]["missed"]) == (2, ["e1", "e3"])
    assert (race.strategies["a"]["finished"], race.strategies["a"]["kept"], race.strategies["a"]["gain"]) == (0, 0, 0)
    assert race.step(lambda s: True, lambda s: False, lambda s: False) == []  # b missed 2 of stuck_after 3
    race.screened("b", "e5", False, None, True)
    assert race.step(lambda s: True, lambda s: False, lambda s: False) == [
        ("b", "dropped", "b is stuck: its last 3 screens were not kept")]


def test_voided_verdicts_do_not_make_a_strategy_stuck(tmp_path):
    # shaky's and good's first two screens all "improve" loop 0.8x on the base: a suspect baseline voids the four.
    # On main their misses still counted: shaky's first re-measurement made it 3 misses in a row, and shaky was
    # dropped as stuck after one real miss.
    campaign = _race(tmp_path, {"shaky": 5, "good": 5}, workers=("w0",), rung=50)
    recorder = Recorder(tmp_path, campaign)
    started = [campaign.assign("w0", (0,))]
    campaign.finish(_result(started[0], Status.AA_CLEAN))
    for index in range(4):
        started.append(campaign.assign("w0", (0,)))
        campaign.finish(_improving_discard(started[-1], f"file{index}.py"))
    assert [a.hypothesis.id for a in started[1:]] == ["shaky1", "good1", "shaky2", "good2"]
    assert campaign.statuses["invalidated"] == 4
    assert all(campaign.race.strategies[s]["finished"] == 0 and campaign.race.strategies[s]["missed"] == []
               for s in ("shaky", "good"))
    recorder.save()
    started += _drive(campaign, {"good": 0.8}, recorder)
    shaky = [a.hypothesis.id for a in started if a.kind is Kind.SCREEN and a.hypothesis.strategy == "shaky"]
    # Voided, measured again (each counts once: misses 1 and 2), then shaky3 is its third miss in a row.
    assert shaky == ["shaky1", "shaky2", "shaky1", "shaky2", "shaky3"]
    assert recorder.rows("SELECT message FROM events WHERE message LIKE 'shaky is stuck%'") == [
        ("shaky is stuck: its last 3 screens were not kept; 2 of its hypotheses will not run",)]


def test_a_race_state_saved_with_a_count_of_misses_resumes_with_them():
    stored = Race(["a"], rung=0, stuck_after=3).to_dict()
    stored["strategies"]["a"] = {k: v for k, v in stored["strategies"]["a"].items() if k != "missed"} | {"misses": 2}
    race = Race(["a"], rung=0, stuck_after=3)
    race.restore(stored)
    race.screened("a", "e1", False, None, True)
    assert len(race.strategies["a"]["missed"]) == 3 and "misses" not in race.strategies["a"]
