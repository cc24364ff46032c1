"""Validator: the CNCF program's offline rules over a submission directory
(``aiconformance validate``).

May import ``verdicts`` (the catalog) and ``parsers``; never ``run``, ``cluster`` or the lab.
"""
