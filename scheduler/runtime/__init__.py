"""The Ray runtime: the coordinator (the driver's loop), the worker actors, the store actor, the nodes.

Ray is imported only in this package (and its tests): what decides (scheduler/: the campaign's state machine,
its queues, the race, the acceptance monitor) and everything in farm/ run without it.
"""
from scheduler.runtime.coordinator import CampaignSummary, run_campaign

__all__ = ["CampaignSummary", "run_campaign"]
