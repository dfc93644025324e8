"""The Ray runtime: coordinator, worker actors, the store actor, CPU sets.

Ray is imported only in this package (and its tests).
"""
from scheduler.coordinator import CampaignSummary, run_campaign
from scheduler.cpusets import allocate_cpu_sets

__all__ = ["CampaignSummary", "allocate_cpu_sets", "run_campaign"]
