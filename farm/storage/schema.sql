-- The farm's DuckDB schema, version 8. Bump SCHEMA_VERSION in farm/storage/store.py and add a
-- migration there when this file changes. Version 2 added `blocks`; version 3 `experiments.retry_of`,
-- `experiments.agent_notes` and `campaign_state`; version 4 `experiments.lineage`, `merges.lineage`,
-- `allocations` and the view `race_results`; version 5 `phases`; version 6 `samples.peak_rss` and
-- `agent_runs`; version 7 `campaign_state_parts` (the view `campaign_state` assembles them);
-- version 8 `spool_positions`. Added columns go last (ALTER TABLE adds them there).
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS campaigns (
    id VARCHAR PRIMARY KEY,          -- the campaign name
    config_json VARCHAR NOT NULL,    -- the validated configuration
    repo VARCHAR NOT NULL,           -- target repository path
    base_ref VARCHAR NOT NULL,
    base_commit VARCHAR NOT NULL,
    integrated_branch VARCHAR NOT NULL,
    workers INTEGER NOT NULL,
    status VARCHAR NOT NULL,         -- running | finished | interrupted | failed (see README: Faults)
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS strategies (  -- the campaign file's strategies
    campaign VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    agent VARCHAR NOT NULL,          -- patch | command | knobs | refs
    hypotheses INTEGER NOT NULL,     -- how many it has (planned ones added as a planner proposes them)
    PRIMARY KEY (campaign, name)
);

CREATE TABLE IF NOT EXISTS hypotheses (  -- what each experiment tries: a patch, an agent's task, a setting, a commit
    campaign VARCHAR NOT NULL,
    id VARCHAR NOT NULL,             -- unique in the campaign; experiments.hypothesis_id
    strategy VARCHAR NOT NULL,
    category VARCHAR NOT NULL,       -- e.g. micro-opt, algorithm (the strategy memory counts per category)
    text VARCHAR NOT NULL,           -- what the change is and why it should help
    agent VARCHAR NOT NULL,          -- the agent that realises it
    source VARCHAR NOT NULL,         -- where the patch came from
    PRIMARY KEY (campaign, id)
);

CREATE TABLE IF NOT EXISTS experiments (
    id VARCHAR PRIMARY KEY,          -- e.g. demo-0003
    campaign VARCHAR NOT NULL,
    strategy VARCHAR NOT NULL,
    hypothesis_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,           -- screen | merge | aa (the parent against itself: noise, canary) |
                                     -- confirm (the final tip against the base, at the end)
    screened_experiment VARCHAR,     -- for kind = merge: the experiment being re-measured
    parent_commit VARCHAR NOT NULL,
    "commit" VARCHAR,
    branch VARCHAR NOT NULL,
    status VARCHAR NOT NULL,         -- running | keep | discard | guard_fail | crash | timeout |
                                     -- no_change | tampered | stale_build | conflict | invalidated |
                                     -- lost | aa_clean | aa_false_positive. `lost`: the attempt never ended
                                     -- (worker or coordinator died, abandoned); its samples are kept, and
                                     -- the hypothesis ran again as the experiment whose retry_of is this id
    reason VARCHAR,
    worker VARCHAR,
    cpus INTEGER[],
    blocks INTEGER,                  -- blocks measured (the sequential decision stops early)
    effect DOUBLE,                   -- geometric mean of the benchmark ratios, < 1 is better
    reworked INTEGER,
    ref_fingerprint VARCHAR,
    cand_fingerprint VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    retry_of VARCHAR,                -- the lost attempt this experiment runs again
    agent_notes VARCHAR,             -- what a command agent left in $FARM_NOTES_FILE (why, what it expects)
    lineage VARCHAR                  -- the branch a kept screen lands on / a merge lands on: 'integrated', or
                                     -- in race mode the strategy's lineage farm/<campaign>/<strategy>
);

CREATE TABLE IF NOT EXISTS samples (
    experiment_id VARCHAR NOT NULL,
    arm VARCHAR NOT NULL,            -- ref | cand (| aa: the second run of the parent in an A/A block)
    block INTEGER NOT NULL,
    benchmark VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    unit VARCHAR NOT NULL,
    cpus INTEGER[] NOT NULL,         -- the CPU list the benchmark process saw
    pid INTEGER,
    worker VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    peak_rss BIGINT                  -- bytes: the peak resident memory of the benchmark run (the largest process
                                     -- of its tree, the kernel's ru_maxrss); the same for every sample of a run
);

CREATE TABLE IF NOT EXISTS blocks (    -- one row per measurement block, written with its samples
    experiment_id VARCHAR NOT NULL,
    block INTEGER NOT NULL,
    worker VARCHAR NOT NULL,
    arm_order VARCHAR NOT NULL,      -- the arms in the order they ran, e.g. 'ref,cand' (ABBA: alternating)
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    loadavg_1m DOUBLE NOT NULL,      -- the node's 1-minute load average at the end of the block
    cpu_mhz DOUBLE,                  -- mean clock of the worker's CPUs (cpufreq, else /proc/cpuinfo); NULL: unknown
    others VARCHAR,                  -- the other workers' phases, e.g. 'w1:build', 'w1:agent>build'; NULL: none seen
    waited_s DOUBLE NOT NULL         -- seconds waited for the node's measurement lock before the block
);

CREATE TABLE IF NOT EXISTS decisions (
    experiment_id VARCHAR NOT NULL,
    benchmark VARCHAR NOT NULL,
    ratio DOUBLE,                    -- cand/ref geometric mean (ref/cand when higher is better)
    ci_low DOUBLE,
    ci_high DOUBLE,
    verdict VARCHAR NOT NULL,        -- improved | regressed | same | unknown | insufficient
    n_blocks INTEGER NOT NULL,
    effect_floor DOUBLE NOT NULL,
    note VARCHAR
);

CREATE TABLE IF NOT EXISTS merges (
    experiment_id VARCHAR NOT NULL,  -- the screened experiment
    campaign VARCHAR NOT NULL,
    position INTEGER,                -- 1, 2, ... in landing order; NULL if it did not land
    screening_ratio DOUBLE,
    remeasured_ratio DOUBLE,
    remeasure_experiment_id VARCHAR,
    landed BOOLEAN NOT NULL,
    integrated_commit VARCHAR,
    reason VARCHAR,
    merged_at TIMESTAMP NOT NULL,
    lineage VARCHAR                  -- where it landed (or not): 'integrated' or a race lineage (a strategy).
                                     -- At the end of a race the winning lineage becomes the integration
                                     -- branch, and the others' winners get a row here each, lineage
                                     -- 'integrated', screening_ratio their re-measured ratio on their lineage
);

CREATE TABLE IF NOT EXISTS allocations (  -- the race (scheduler/race.py): every strategy, after each change
    campaign VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    rung INTEGER NOT NULL,           -- rungs passed so far
    strategy VARCHAR NOT NULL,
    status VARCHAR NOT NULL,         -- racing | dropped | finished (nothing left to run) | winner
    workers DOUBLE NOT NULL,         -- its share of the workers from now on (racing strategies share them equally)
    started INTEGER NOT NULL,        -- screens started
    screens INTEGER NOT NULL,        -- screens with a verdict
    kept INTEGER NOT NULL,
    landed INTEGER NOT NULL,         -- landed on its lineage (shared mode: on the integration branch)
    landed_ratio DOUBLE NOT NULL,    -- product of those landings' re-measured ratios (< 1: faster)
    reason VARCHAR NOT NULL          -- why this change (also an `events` row of kind 'reallocation')
);

CREATE VIEW IF NOT EXISTS race_results AS  -- each strategy's latest allocations row: who won, and by how much
    SELECT * EXCLUDE (last) FROM (
        SELECT *, row_number() OVER (PARTITION BY campaign, strategy ORDER BY ts DESC, rung DESC) AS last
        FROM allocations) WHERE last = 1;

CREATE TABLE IF NOT EXISTS artifacts (  -- measurement artifacts the farm flagged
    campaign VARCHAR NOT NULL,
    experiment_id VARCHAR,           -- where it was seen (NULL: about a parent, e.g. a suspect baseline)
    kind VARCHAR NOT NULL,           -- canary | control_chart | suspect_baseline | stale_build | build_bias
    benchmark VARCHAR,
    reason VARCHAR NOT NULL,         -- what was seen and what the farm did about it
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS events (  -- the campaign's log: what the workers and the coordinator did, when
    campaign VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    worker VARCHAR,                  -- NULL: the coordinator
    experiment_id VARCHAR,
    kind VARCHAR NOT NULL,           -- agent | build | guard | measure | lock | verdict (workers); reallocation |
                                     -- planner | planner_rejected | skipped (the coordinator); store_error (a
                                     -- block, event or phase the store refused and left out, and why)
    message VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS phases (  -- where each worker's time went: one row per phase it left
    campaign VARCHAR NOT NULL,
    worker VARCHAR NOT NULL,
    experiment_id VARCHAR,           -- NULL: between experiments
    phase VARCHAR NOT NULL,          -- agent (with checkout and commit) | build | guard | wait (for the node's
                                     -- measurement lock) | measure | count (instruction counts) | idle (no
                                     -- command: bookkeeping, or nothing to do)
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS agent_runs (  -- every run of a command agent (first try, reworks, a rebase) and its cost
    campaign VARCHAR NOT NULL,
    experiment_id VARCHAR NOT NULL,
    attempt INTEGER NOT NULL,        -- 0, then 1, 2, ... for reworks
    strategy VARCHAR NOT NULL,
    cli VARCHAR,                     -- the preset (claude-code, codex, opencode, aider); NULL: a custom command
    outcome VARCHAR NOT NULL,        -- ok | failed | timeout
    seconds DOUBLE NOT NULL,
    cost_usd DOUBLE,                 -- as the CLI reported it; NULL: it did not say (see README: Agent spend)
    input_tokens BIGINT,             -- cached input included
    output_tokens BIGINT,
    turns INTEGER,
    session_id VARCHAR,
    summary VARCHAR,                 -- the CLI's own session summary as it printed it (JSON), cut to 20,000 chars
    finished_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS campaign_state_parts (  -- the coordinator's state for --resume, a part per row:
    campaign VARCHAR NOT NULL,       -- each save writes only the parts that changed
    part VARCHAR NOT NULL,           -- a top-level key of the state, or hypotheses.<key> (scheduler/campaign_state.py)
    state JSON NOT NULL,             -- queues, merge queue, landed order, A/A logs, control charts (scheduler/campaign.py)
    saved_at TIMESTAMP NOT NULL,     -- when this part last changed
    PRIMARY KEY (campaign, part)
);

CREATE VIEW IF NOT EXISTS campaign_state AS  -- the state as one JSON object per campaign
    SELECT campaign, json_group_object(part, state) AS state, max(saved_at) AS saved_at
    FROM campaign_state_parts GROUP BY campaign;

CREATE TABLE IF NOT EXISTS spool_positions (  -- how far the store actor read each log of the campaign's spool
    campaign VARCHAR NOT NULL,                -- (farm/storage/spool.py), written with what it read: a --resume
    log VARCHAR NOT NULL,                     -- reads on from there, neither losing nor repeating a send
    bytes_read BIGINT NOT NULL,
    PRIMARY KEY (campaign, log)
);
