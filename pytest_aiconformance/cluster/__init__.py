"""Cluster access: the API client, waits, discovery, workload builders, allocation, probes,
images, accelerator profiles, operators and helm.

May import ``verdicts`` (outcomes a check ends with) and ``parsers``; never ``run``,
``requirements``, ``reports`` or the lab.
"""
