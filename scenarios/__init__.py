"""The built-in scenario library: one TOML file per scenario, loaded with importlib.resources.

Read them with :func:`simulator.scenarios.load_scenario` (by file stem, e.g.
``"black-thursday-2020"``) or list them with ``shortfall scenarios list``. The schema is
documented in :mod:`simulator.scenarios.model`; each file cites the sources of its numbers
in its ``source`` and ``notes`` fields.
"""
