"""The local AI lab: a real Kubernetes control plane with simulated GPU nodes, built offline.

``Lab(state_dir).up(LabShape(...))`` builds the binaries if needed (from the Go modules under
``lab/``), starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kwok
controller and metrics-server as host processes on 127.0.0.1, creates simulated GPU and CPU
nodes plus a simulated DRA driver, and returns the kubeconfig.  The same is available as
``python -m pytest_aiconformance.lab build|up|down|status``.
"""

from .build import MODULES, GoModule, build_all, cache_root
from .errors import LabError
from .lab import COMPONENTS, ComponentStatus, Lab, LabInfo, LabStatus, default_state_dir
from .shape import LabShape

__all__ = [
    "COMPONENTS",
    "MODULES",
    "ComponentStatus",
    "GoModule",
    "Lab",
    "LabError",
    "LabInfo",
    "LabShape",
    "LabStatus",
    "build_all",
    "cache_root",
    "default_state_dir",
]
