"""The `migrate` command line (migrate.cli.main), one module per verb.

Every `migrate ...` process imports all of these modules, so at module level they import only click and
small parts of migrate.core; each command imports what it runs (the engine, planners, drivers, openpyxl,
...) inside its function. Those function-level imports are for start-up time, never to dodge an import
cycle, and help texts and option defaults must not need them (tests/unit/test_cli_startup.py).
"""
