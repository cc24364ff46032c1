"""dra_support: the decisions of its checks (checks/test_dra_support.py), as pure functions."""

from __future__ import annotations
