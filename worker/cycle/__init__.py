"""Orchestration: sync, protect, decide, deliver, run; the only layer that holds a Runtime."""
