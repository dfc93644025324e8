"""Coding agents and planners: how their CLIs run and what they cost, what they read before they work (the strategy
memory, fenced text), and the check that each can start."""
