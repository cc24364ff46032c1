"""The local AI lab: a real Kubernetes control plane with simulated GPU nodes, built offline.

``Lab(state_dir).up(LabShape(...))`` builds the binaries if needed (from the Go modules under
``lab/go/``), starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kwok
controller and metrics-server as host processes on 127.0.0.1, creates simulated GPU and CPU
nodes plus a simulated DRA driver, and returns the kubeconfig.  The same is available as
``python -m aiconformance_lab build|up|down|status``.
"""

__version__ = "0.1.0"  # the one version source of this distribution

from .build import MODULES, GoModule, build_all, cache_root
from .errors import LabError
from .info import ComponentStatus, LabInfo, LabStatus
from .lab import Lab
from .shape import LabShape, shape_file
from .spec import COMPONENTS
from .statedir import default_state_dir

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
    "shape_file",
]
