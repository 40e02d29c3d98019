"""The provider-free core: errors, models, file I/O, logging and the ports each provider role offers.

It imports nothing else of the project (an import-linter contract in `bash scripts/dev.sh test`), so the
planners, the drivers under adapters/ and the engine can all build on it.
"""
