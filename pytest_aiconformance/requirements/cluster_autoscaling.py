"""cluster_autoscaling: the decisions of its checks (checks/test_cluster_autoscaling.py), as pure functions."""

from __future__ import annotations
