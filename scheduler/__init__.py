"""The campaign: what runs next and what lands, and the Ray runtime that carries it out.

scheduler/ itself is Ray-free and pure: the campaign's state machine (campaign.py), its hypothesis and merge
queues, the strategy race and the acceptance monitor, tested without Ray as stats/ is. scheduler/runtime/ is
the only place that imports Ray: the coordinator, the worker actors, the store actor and the nodes
(`from scheduler.runtime import run_campaign`).
"""
