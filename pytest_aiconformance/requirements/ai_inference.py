"""ai_inference: the decisions of its checks (checks/test_ai_inference.py), as pure functions."""

from __future__ import annotations
