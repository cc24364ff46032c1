"""Requirements: one module per requirement id (``requirements/<id>.py``) holding the decision
logic of that requirement's checks, as functions over what the cluster answered.

May import ``cluster``, ``verdicts`` and ``parsers``; never ``run``, ``reports`` or the lab.
The check file of the same id (``checks/test_<id>.py``) reaches it through ``kit``.
"""
