"""One experiment in a worker's slots: the pipeline, how each kind of hypothesis becomes a change, how a phase's
command runs and what it costs in memory, and the benchmark's output."""
