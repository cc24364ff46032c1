"""accelerator_metrics: the decisions of its checks (checks/test_accelerator_metrics.py), as pure functions."""

from __future__ import annotations
