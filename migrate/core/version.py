"""The package version (what `migrate --version` prints and inventories record)."""

VERSION = "0.1.0"
