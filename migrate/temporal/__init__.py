"""The Temporal engine: the same methods' phases run as Temporal workflows and activities on workers anywhere.

    migrate lab up --temporal                       # a dev server on loopback, `engine:` in site.yaml
    migrate worker --config site.yaml               # any number, on any machines
    migrate run plan.yaml --config site.yaml --engine temporal

One workflow per run, a child per wave, a child per VM (migrate.temporal.workflows); each phase is an
activity (migrate.temporal.activities) on the control task queue, or on the source site's data queue
when it moves disk bytes. The journal + threads runner (migrate.engine.runner) stays the default.
"""
