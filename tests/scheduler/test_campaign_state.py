"""The campaign's decisions without Ray: assignment, lost attempts, stored state, resume (with a real store)."""
import dataclasses
import json
import re
import time

import pytest

from farm.campaign_file.config import CampaignConfig
from farm.records import ExperimentResult, Hypothesis, Kind, Status
from farm.storage.store import Store
from farm.storage.store_writes import AddArtifact, AddEvents
from scheduler.campaign import Campaign
from stats import BenchmarkDecision, Verdict
from tests.scheduler.tiny_repo import config_dict

BASE = "b" * 40


def _hypotheses(*ids, after=None, agent="patch"):
    return [Hypothesis(id=i, strategy="s", category="c", text="", agent=agent, patch="x",
                       after=(after or {}).get(i)) for i in ids]


def _campaign(tmp_path, ids=("h1", "h2"), workers=("w0", "w1"), after=None, exhausted_after=3, agent="patch",
              **acceptance):
    config = CampaignConfig(**config_dict(tmp_path, [{"id": i, "patch": "x"} for i in ids],
                                          acceptance={"aa_blocks": 3, "min_blocks": 3, "max_blocks": 4,
                                                      "extension_looks": [], "canary_every": 100, **acceptance},
                                          memory={"exhausted_after": exhausted_after}))
    return Campaign(config, _hypotheses(*ids, after=after, agent=agent), BASE, list(workers), say=lambda line: None)


def _result(assignment, status, *, effect=None, commit=None, ratio=1.0):
    now = time.time()
    decisions = (BenchmarkDecision("loop", ratio, ratio * 0.99, ratio * 1.01, Verdict.SAME, 3, 0.05),)
    return ExperimentResult(assignment.experiment_id, status, "test", "w0", (0,), now, now, commit=commit,
                            decisions=decisions, blocks=3, effect=effect, ref_means=(("loop", 1.0),),
                            aa_log_ratios=(("loop", (0.0, 0.01, -0.01)),) if assignment.kind is Kind.AA else ())


class Recorder:
    """Applies the campaign's writes to a real store, as the coordinator does through the store actor."""

    def __init__(self, tmp_path, campaign):
        self.store = Store(tmp_path / "farm.duckdb")
        self.store.start_campaign("tiny", "{}", str(tmp_path), "main", BASE, "farm/tiny/integrated", 2)
        self.campaign = campaign

    def save(self):
        self.store.apply("tiny", self.campaign.writes, json.loads(json.dumps(self.campaign.to_dict())))
        self.campaign.writes.clear()

    def rows(self, sql):
        return self.store.query(sql)[1]


def test_a_reserved_assignment_reaches_its_worker_when_an_earlier_worker_has_nothing(tmp_path):
    # w1 runs its canary while its screen of h1 is held for it; w0 has run its canary and there is nothing else
    # to do. On main the loop returned at w0 and the held h1 was dropped with the campaign ending.
    campaign = _campaign(tmp_path, ids=("h1",))
    canary_w0 = campaign.assign("w0", (0,))
    assert canary_w0.kind is Kind.AA
    campaign.finish(_result(canary_w0, Status.AA_CLEAN))
    held = campaign.reserved["w0"]
    assert held.hypothesis.id == "h1"
    campaign.reserved["w1"] = campaign.reserved.pop("w0")  # held for w1 after w1's canary
    campaign.monitor.aa_logs["w1"] = {"loop": [0.0, 0.0, 0.0]}
    assert campaign.assign("w0", (0,)) is None
    given = campaign.assign("w1", (1,))
    assert given is not None and given.hypothesis.id == "h1" and given.kind is Kind.SCREEN


def test_a_lost_attempt_keeps_its_row_and_runs_again_under_a_new_id(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1",), workers=("w0",))
    recorder = Recorder(tmp_path, campaign)
    canary = campaign.assign("w0", (0,))
    recorder.save()
    campaign.finish(_result(canary, Status.AA_CLEAN))
    screen = campaign.assign("w0", (0,))
    recorder.save()
    campaign.lose(screen.experiment_id, "worker w0 died: ActorDiedError")
    recorder.save()
    retry = campaign.assign("w0", (0,))
    recorder.save()  # on main: a duplicate-key error here (the same experiment id inserted again)
    assert retry.experiment_id != screen.experiment_id and retry.retry_of == screen.experiment_id
    campaign.finish(_result(retry, Status.DISCARD))
    recorder.save()
    rows = recorder.rows("SELECT id, status, retry_of FROM experiments WHERE kind = 'screen' ORDER BY id")
    assert rows == [(screen.experiment_id, "lost", None), (retry.experiment_id, "discard", screen.experiment_id)]
    assert campaign.assign("w0", (0,)) is None and not campaign.in_flight and campaign.statuses["lost"] == 1


def test_a_lost_canary_is_not_retried_but_due_again(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1",), workers=("w0",))
    canary = campaign.assign("w0", (0,))
    campaign.lose(canary.experiment_id, "worker died")
    again = campaign.assign("w0", (0,))
    assert again.kind is Kind.AA and again.experiment_id != canary.experiment_id and not campaign.retry


def test_stored_state_resumes_with_queues_monitor_and_in_flight_work(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3"), workers=("w0",))
    recorder = Recorder(tmp_path, campaign)
    canary = campaign.assign("w0", (0,))
    campaign.finish(_result(canary, Status.AA_CLEAN))
    first = campaign.assign("w0", (0,))
    campaign.finish(_result(first, Status.KEEP, effect=0.8, commit="c" * 40, ratio=0.8))
    merge = campaign.assign("w0", (0,))
    assert merge.kind is Kind.MERGE and merge.screened_experiment == first.experiment_id
    recorder.save()
    # The coordinator dies here. A new one restores the stored state: the merge in flight runs again.
    stored = recorder.store.load_state("tiny")
    resumed = _campaign(tmp_path, ids=("h1", "h2", "h3"), workers=("w0",))
    resumed.restore(stored)
    resumed.resume()
    recorder.campaign = resumed
    recorder.save()
    assert resumed.monitor.aa_logs == {"w0": {"loop": [0.0, 0.01, -0.01]}}
    assert resumed.monitor.ref_history == campaign.monitor.ref_history
    again = resumed.assign("w0", (0,))
    assert again.kind is Kind.MERGE and again.retry_of == merge.experiment_id
    assert again.experiment_id not in (canary.experiment_id, first.experiment_id, merge.experiment_id)
    assert again.build_bias == campaign.monitor.build_bias("w0")
    resumed.finish(_result(again, Status.KEEP, effect=0.8, commit="d" * 40, ratio=0.8))
    assert resumed.tip == "d" * 40 and resumed.landed == [first.experiment_id]
    assert [resumed.assign("w0", (0,)).hypothesis.id for _ in range(1)] == ["h2"]
    recorder.save()
    assert recorder.rows("SELECT status FROM experiments WHERE id = ?".replace("?", f"'{merge.experiment_id}'")) \
        == [("lost",)]
    assert recorder.rows("SELECT position, landed FROM merges") == [(1, True)]


def test_a_stopping_campaign_assigns_nothing_and_abandoned_work_runs_again_on_resume(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0",))
    canary = campaign.assign("w0", (0,))
    campaign.finish(_result(canary, Status.AA_CLEAN))
    screen = campaign.assign("w0", (0,))
    campaign.stopping = True
    assert campaign.assign("w0", (0,)) is None
    campaign.abandon("abandoned: a second interrupt")
    assert [a.hypothesis.id for a in campaign.retry] == ["h1"] and campaign.retry[0].retry_of == screen.experiment_id
    state = json.loads(json.dumps(campaign.to_dict()))
    resumed = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0",))
    resumed.restore(state)
    assert [resumed.assign("w0", (0,)).hypothesis.id for _ in range(2)] == ["h1", "h2"]


def test_a_merge_whose_hypothesis_was_measured_again_still_lands_or_settles(tmp_path):
    # On main a merge re-measurement flagged by the control chart after its hypothesis had been measured again
    # returned early: the merge stayed "in flight" forever and its dependants never started.
    campaign = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0",), after={"h2": "h1"})
    canary = campaign.assign("w0", (0,))
    campaign.finish(_result(canary, Status.AA_CLEAN))
    screen = campaign.assign("w0", (0,))
    campaign.finish(_result(screen, Status.KEEP, effect=0.8, commit="c" * 40, ratio=0.8))
    merge = campaign.assign("w0", (0,))
    campaign.monitor.remeasured.add("h1")
    history = campaign.monitor.ref_history
    history[f"w0|{BASE}|loop"] = [1.0] * 6
    result = _result(merge, Status.KEEP, effect=0.8, commit="d" * 40, ratio=0.8)
    result = ExperimentResult(**{**result.__dict__, "ref_means": (("loop", 5.0),)})  # far off its chart
    campaign.finish(result)
    assert campaign.landed == [screen.experiment_id] and campaign.lineages["integrated"].idle()
    assert campaign.assign("w0", (0,)).hypothesis.id == "h2"


def test_resuming_with_other_hypotheses_in_the_campaign_file_is_refused(tmp_path):
    state = _campaign(tmp_path, ids=("h1", "h2")).to_dict()
    with pytest.raises(ValueError, match=r"missing now: \['h2'\], new: \[\]"):
        _campaign(tmp_path, ids=("h1",)).restore(state)
    with pytest.raises(ValueError, match=r"missing now: \[\], new: \['h3'\]"):
        _campaign(tmp_path, ids=("h1", "h2", "h3")).restore(state)
    # The same ids doing something else (a knob's values reordered, a branch that moved, an edited patch).
    config = _campaign(tmp_path, ids=("h1", "h2")).config
    h1, h2 = _hypotheses("h1", "h2")
    edited = Campaign(config, [h1, dataclasses.replace(h2, knobs=(("opt", "-O2"),))], BASE, ["w0", "w1"],
                      say=lambda line: None)
    with pytest.raises(ValueError, match=r"hypotheses \['h2'\] are not what they were"):
        edited.restore(state)
    _campaign(tmp_path, ids=("h1", "h2")).restore(state)  # unchanged: resumes


def test_a_baseline_suspect_on_two_benchmarks_at_once_measures_each_experiment_again_once(tmp_path):
    # Found in review: the second suspect benchmark found the experiments already voided by the first -> KeyError.
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4"), workers=("w0",), exhausted_after=10)
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    for index in range(4):
        screen = campaign.assign("w0", (0,))
        now = time.time()
        decisions = tuple(BenchmarkDecision(name, 0.8, 0.79, 0.81, Verdict.IMPROVED, 3, 0.05)
                          for name in ("loop", "sort"))
        campaign.finish(ExperimentResult(screen.experiment_id, Status.DISCARD, "t", "w0", (0,), now, now,
                                         decisions=decisions, blocks=3, ref_means=(("loop", 1.0),),
                                         changed_paths=(f"file{index}.py",)))
    artifacts = [(w.kind, w.benchmark) for w in campaign.writes if isinstance(w, AddArtifact)]
    assert artifacts == [("suspect_baseline", "loop"), ("suspect_baseline", "sort")]
    assert campaign.statuses["invalidated"] == 4
    assert sorted(campaign.hypotheses.waiting()) == ["h1", "h2", "h3", "h4"]


def test_a_voided_verdict_is_measured_again_whatever_the_experiment_budget(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0",))
    campaign.hypotheses.max_screens = 1
    assert campaign.hypotheses.next().id == "h1" and campaign.hypotheses.next() is None
    campaign.hypotheses.again("h1")
    assert campaign.hypotheses.next().id == "h1" and campaign.hypotheses.next() is None


def test_after_k_discards_in_a_category_its_other_hypotheses_are_skipped(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4"), workers=("w0",), exhausted_after=2,
                         agent="command")
    campaign.hypotheses.by_id["h4"] = Hypothesis(id="h4", strategy="s", category="other", text="",
                                                 agent="command", patch="")
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    for _ in range(2):
        campaign.finish(_result(campaign.assign("w0", (0,)), Status.DISCARD))
    assert campaign.exhausted("s") == ["c"]
    assert campaign.assign("w0", (0,)).hypothesis.id == "h4"  # h3 (category c) is skipped, settled, recorded
    assert "h3" in campaign.hypotheses.settled and campaign.hypotheses.waiting() == []
    events = [w.events[0][4] for w in campaign.writes if isinstance(w, AddEvents)]
    assert events == ["h3: skipped, category c of s is exhausted (2 discards, no keep)"]
    restored = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4"), workers=("w0",), exhausted_after=2,
                         agent="command")
    restored.hypotheses.by_id["h4"] = campaign.hypotheses.by_id["h4"]
    restored.restore(json.loads(json.dumps(campaign.to_dict())))
    assert restored.exhausted("s") == ["c"]


def test_a_pack_of_patches_is_measured_whole_whatever_its_categories_did(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3"), workers=("w0",), exhausted_after=1)
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.DISCARD))
    assert campaign.assign("w0", (0,)).hypothesis.id == "h2"


def test_the_final_confirmation_runs_once_at_the_end_the_tip_against_the_base(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0", "w1"))
    recorder = Recorder(tmp_path, campaign)
    for worker in ("w0", "w1"):
        campaign.finish(_result(campaign.assign(worker, (0,)), Status.AA_CLEAN))
    first, second = campaign.assign("w0", (0,)), campaign.assign("w1", (1,))
    campaign.finish(_result(first, Status.KEEP, effect=0.8, commit="c" * 40, ratio=0.8))
    merge = campaign.assign("w0", (0,))
    assert merge.kind is Kind.MERGE and campaign.assign("w0", (0,)) is None  # nothing else while h2 runs
    campaign.finish(_result(merge, Status.KEEP, effect=0.8, commit="d" * 40, ratio=0.8))
    assert campaign.assign("w0", (0,)) is None  # h2 still runs: the tip may still move
    campaign.finish(_result(second, Status.DISCARD))
    confirm = campaign.assign("w1", (1,))
    assert confirm.kind is Kind.CONFIRM and confirm.parent_commit == BASE and confirm.pick_tip == "d" * 40
    assert campaign.assign("w0", (0,)) is None  # once
    recorder.save()
    # A lost confirmation runs again, and the stored state knows it started.
    campaign.lose(confirm.experiment_id, "worker w1 died")
    again = campaign.assign("w0", (0,))
    assert again.kind is Kind.CONFIRM and again.retry_of == confirm.experiment_id and again.pick_tip == "d" * 40
    recorder.save()
    resumed = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0", "w1"))
    resumed.restore(json.loads(json.dumps(campaign.to_dict())))
    resumed.resume()
    retried = resumed.assign("w0", (0,))
    assert retried.kind is Kind.CONFIRM and retried.parent_commit == BASE and resumed.assign("w1", (1,)) is None
    resumed.finish(_result(retried, Status.KEEP, effect=0.8, ratio=0.8))
    assert resumed.assign("w0", (0,)) is None and not resumed.in_flight


def test_nothing_landed_means_no_final_confirmation(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1",), workers=("w0",))
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.DISCARD))
    assert campaign.assign("w0", (0,)) is None


def test_a_winner_whose_gain_vanishes_on_top_of_earlier_winners_is_reported_as_such(tmp_path):
    campaign = _campaign(tmp_path, ids=("h1", "h2"), workers=("w0", "w1"))
    recorder = Recorder(tmp_path, campaign)
    for worker in ("w0", "w1"):
        campaign.finish(_result(campaign.assign(worker, (0,)), Status.AA_CLEAN))
    first, second = campaign.assign("w0", (0,)), campaign.assign("w1", (1,))  # both screened on the base
    campaign.finish(_result(first, Status.KEEP, effect=0.7, commit="c" * 40, ratio=0.7))
    campaign.finish(_result(second, Status.KEEP, effect=0.8, commit="e" * 40, ratio=0.8))
    merge = campaign.assign("w0", (0,))
    assert merge.screened_experiment == first.experiment_id  # the larger win lands first
    campaign.finish(_result(merge, Status.KEEP, effect=0.7, commit="d" * 40, ratio=0.7))
    late = campaign.assign("w1", (1,))
    assert late.screened_experiment == second.experiment_id and late.parent_commit == "d" * 40
    campaign.finish(_result(late, Status.DISCARD, effect=0.99, ratio=0.99))
    recorder.save()
    assert recorder.rows("SELECT reason FROM merges WHERE NOT landed")[0][0].startswith(
        "its gain vanished on top of the winners landed since it was screened (screened 0.800x, re-measured "
        "0.990x against the tip)")


def _failed(assignment, status):
    """A result that ended without a verdict (crash, timeout): no decisions, no A/A ratios."""
    return dataclasses.replace(_result(assignment, status), decisions=(), ref_means=(), aa_log_ratios=())


def test_a_canary_that_crashed_or_timed_out_is_not_a_completed_canary_and_stays_due(tmp_path):
    # On main such a canary counted as done: no build bias measured, no canary for the next canary_every
    # experiments, and one more canary in the worker's false-positive rate.
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4", "h5"), workers=("w0",), canary_every=2)
    first = campaign.assign("w0", (0,))
    assert first.kind is Kind.AA
    campaign.finish(_failed(first, Status.CRASH))
    assert campaign.monitor.canaries == {} and campaign.monitor.aa_logs == {}
    # The experiment held for it runs (a parent whose benchmark never runs must not loop in canaries), and the
    # canary is due again before the next one, also after a resume.
    held = campaign.assign("w0", (0,))
    assert held.kind is Kind.SCREEN and held.hypothesis.id == "h1" and held.build_bias == ()
    resumed = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4", "h5"), workers=("w0",), canary_every=2)
    resumed.restore(json.loads(json.dumps(campaign.to_dict())))
    campaign = resumed
    campaign.finish(_result(held, Status.DISCARD))
    again = campaign.assign("w0", (0,))
    assert again.kind is Kind.AA
    campaign.finish(_result(again, Status.AA_CLEAN))
    assert campaign.monitor.canaries == {"w0": [1, 0]}
    for hypothesis_id in ("h2", "h3"):  # canary_every 2 experiments
        screen = campaign.assign("w0", (0,))
        assert screen.hypothesis.id == hypothesis_id
        campaign.finish(_result(screen, Status.DISCARD))
    # The second canary times out: not counted either; h4 runs, then the canary once more before h5.
    second = campaign.assign("w0", (0,))
    assert second.kind is Kind.AA
    campaign.finish(_failed(second, Status.TIMEOUT))
    assert campaign.monitor.canaries == {"w0": [1, 0]}
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.DISCARD))
    assert campaign.assign("w0", (0,)).kind is Kind.AA


def _improving_discard(assignment, changed: str):
    """A discard that "improves" loop 0.8x like every other one on its parent: the suspect-baseline pattern."""
    now = time.time()
    decision = BenchmarkDecision("loop", 0.8, 0.79, 0.81, Verdict.IMPROVED, 3, 0.05)
    return ExperimentResult(assignment.experiment_id, Status.DISCARD, "t", "w0", (0,), now, now, decisions=(decision,),
                            blocks=3, ref_means=(("loop", 1.0),), changed_paths=(changed,))


def test_a_voided_verdict_counts_in_no_category_and_its_re_measurement_counts_once(tmp_path):
    # Four discards on one parent all "improve" loop by the same factor: the baseline is suspect, their verdicts
    # are voided and measured again. On main the voided four still counted as discards: with exhausted_after 4
    # the category was exhausted at once and h5 skipped, whatever the re-measurements said.
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3", "h4", "h5"), workers=("w0",), exhausted_after=4,
                         agent="command")
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    for index in range(4):
        campaign.finish(_improving_discard(campaign.assign("w0", (0,)), f"file{index}.py"))
    assert campaign.statuses["invalidated"] == 4
    assert campaign.categories == {"s|c": [0, 0]} and campaign.exhausted("s") == []
    for status in (Status.DISCARD, Status.DISCARD, Status.DISCARD, Status.CRASH):
        again = campaign.assign("w0", (0,))
        assert again.hypothesis.id in ("h1", "h2", "h3", "h4")
        campaign.finish(_result(again, status))
    assert campaign.categories == {"s|c": [3, 0]}
    assert campaign.assign("w0", (0,)).hypothesis.id == "h5"


def _failed(assignment, reason):
    now = time.time()
    return ExperimentResult(assignment.experiment_id, Status.CRASH, reason, "w0", (0,), now, now)


def test_an_agent_failing_the_same_way_pause_after_times_in_a_row_pauses_its_strategy(tmp_path):
    data = config_dict(tmp_path, [], acceptance={"canary_every": 100})
    data["strategies"] = [
        {"name": "s", "agent": "command", "command": {"command": "x", "pause_after": 2},
         "hypotheses": [{"id": f"h{i}", "text": "t"} for i in range(5)]},
        {"name": "p", "hypotheses": [{"id": "patch1", "patch": "x"}]}]
    agents = _hypotheses("h0", "h1", "h2", "h3", "h4", agent="command")
    other = [Hypothesis(id="patch1", strategy="p", category="c", text="", agent="patch", patch="x")]
    campaign = Campaign(CampaignConfig(**data), agents + other, BASE, ["w0"], say=lambda line: None)
    recorder = Recorder(tmp_path, campaign)
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    # A failure with another cause in between starts the count again; the same cause on another worker or
    # experiment (its numbers differ) counts as the same.
    causes = ["agent failed: exit 1: claude: not logged in (w0, 17)", "agent: agent timed out after 60s",
              "agent failed: exit 1: claude: not logged in (w1, 23)",
              "agent failed: exit 1: claude: not logged in (w0, 31)"]
    for cause in causes:
        assignment = campaign.assign("w0", (0,))
        assert assignment.hypothesis.strategy == "s"
        campaign.finish(_failed(assignment, cause))
    recorder.save()
    assert campaign.hypotheses.waiting() == ["patch1"]  # h4 skipped; the other strategy goes on
    events = recorder.rows("SELECT message FROM events WHERE kind = 'paused'")
    assert len(events) == 1 and events[0][0].startswith("strategy s paused: its agent failed 2 times in a row the "
                                                        "same way (agent failed: exit 1: claude: not logged in")
    assert events[0][0].endswith("1 of its hypotheses will not run")
    restored = Campaign(CampaignConfig(**data), agents + other, BASE, ["w0"], say=lambda line: None)
    restored.restore(json.loads(json.dumps(campaign.to_dict())))
    assert restored.agent_failures == campaign.agent_failures


@pytest.mark.parametrize("rule, expected", [
    ({"stop": {"plateau": 2}}, "plateau: none of the last 2 screens was kept (stop.plateau 2)"),
    ({"budget": {"experiments": 2}}, "budget.experiments 2 reached"),
    ({"budget": {"hours": 1}}, "budget.hours 1 reached"),
])
def test_a_budget_or_stop_rule_ends_the_screens_and_is_recorded_once(tmp_path, rule, expected):
    ids = ("h1", "h2", "h3", "h4")
    data = {**config_dict(tmp_path, [{"id": i, "patch": "x"} for i in ids], acceptance={"canary_every": 100}),
            **rule}
    campaign = Campaign(CampaignConfig(**data), _hypotheses(*ids), BASE, ["w0"], say=lambda line: None)
    recorder = Recorder(tmp_path, campaign)
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    for _ in range(2):
        campaign.check_stop(time.time())
        campaign.finish(_result(campaign.assign("w0", (0,)), Status.DISCARD))
    assert campaign.stopped is None or "hours" not in expected
    later = time.time() + 3600 if "hours" in expected else time.time()
    campaign.check_stop(later)
    campaign.check_stop(later)
    assert campaign.stopped.startswith(expected)
    assert campaign.assign("w0", (0,)) is None  # no new screen; h3 and h4 never start
    recorder.save()
    assert [m for (m,) in recorder.rows("SELECT message FROM events WHERE kind = 'stopped'")] == [campaign.stopped]
    restored = Campaign(CampaignConfig(**data), _hypotheses(*ids), BASE, ["w0"], say=lambda line: None)
    restored.restore(json.loads(json.dumps(campaign.to_dict())))
    restored.check_stop(time.time())
    assert restored.stopped == campaign.stopped and restored.assign("w0", (0,)) is None


@pytest.mark.parametrize("edit, where", [
    (lambda s: s.pop("lineages"), "lineages"), (lambda s: s.update(statuses=[1, 2]), "statuses"),
    (lambda s: s["hypotheses"].clear(), "hypotheses.all"), (lambda s: s.update(in_flight={"x": 3}), "in_flight.x"),
    (lambda s: s["lineages"]["integrated"].update(tip=7), "lineages.integrated.tip"),
    (lambda s: s.update(surprise=1), "surprise")])
def test_a_malformed_saved_state_is_refused_in_one_line_that_says_where(tmp_path, edit, where):
    # On main a saved state with a key missing or of the wrong type was a traceback on --resume; the models of
    # scheduler/campaign_state.py name the place.
    state = _campaign(tmp_path, ids=("h1", "h2")).to_dict()
    edit(state)
    with pytest.raises(ValueError, match=rf"^the saved campaign state is malformed at {re.escape(where)}: .*; "
                                         r"start over with --fresh$"):
        _campaign(tmp_path, ids=("h1", "h2")).restore(state)


def test_a_saved_state_has_the_shape_of_its_model(tmp_path):
    # What a campaign saves after a canary, a keep, a merge in flight and a reservation passes the model that
    # --resume checks (saving does not validate: the coordinator saves every turn).
    from scheduler.campaign_state import CampaignState
    campaign = _campaign(tmp_path, ids=("h1", "h2", "h3"), workers=("w0", "w1"))
    campaign.finish(_result(campaign.assign("w0", (0,)), Status.AA_CLEAN))
    first = campaign.assign("w0", (0,))
    campaign.finish(_result(first, Status.KEEP, effect=0.8, commit="c" * 40, ratio=0.8))
    campaign.assign("w0", (0,))
    campaign.assign("w1", (1,))
    CampaignState.model_validate(json.loads(json.dumps(campaign.to_dict())))
