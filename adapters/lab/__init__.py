"""Seeding the lab's simulators through the real vSphere APIs (used by `migrate lab up` only)."""

__all__: list[str] = []
