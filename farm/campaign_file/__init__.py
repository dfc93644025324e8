"""The campaign file and what it names: the configuration, its hypotheses and knob searches, the target repository,
and the checks before a campaign starts."""
