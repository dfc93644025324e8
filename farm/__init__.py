"""The farm: its CLI, the campaign file, one experiment (its agent, phases and measurement), the node's processes
and locks, and the store with its readers. README, Layout."""
