"""Run machinery: the plugin object, session start and end, selection, check records, settings.

May import every other layer (cluster, verdicts, requirements, reports, parsers, validator);
it is the only layer that imports the lab (``run.lifecycle``, lazily, with ``--aic-lab``).
Nothing outside ``plugin``, ``kit`` and ``__main__`` imports it.
"""
