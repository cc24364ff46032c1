"""ai_service_metrics: the decisions of its checks (checks/test_ai_service_metrics.py), as pure functions."""

from __future__ import annotations
