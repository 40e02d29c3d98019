"""Importers: build an inventory from files other tools export, without access to vCenter."""

from __future__ import annotations

from migrate.importers.rvtools import import_rvtools

__all__ = ["import_rvtools"]
