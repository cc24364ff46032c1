"""Command line: ``python -m aiconformance_lab build|up|down|status``.

``up`` prints the kubeconfig path as its last line so scripts can do
``export KUBECONFIG=$(python -m aiconformance_lab up | tail -1)``.  Errors are one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import LabError
from .lab import Lab
from .shape import (
    GATEWAY_IMPLS,
    GPU_EXPORTERS,
    GPU_INJECTIONS,
    GPU_PLUGIN_MODES,
    MIG_STRATEGIES,
    VENDORS,
    LabShape,
    shape_names,
)
from .spec import COMPONENTS


def _progress(message: str) -> None:
    # Progress goes to stderr so stdout carries only results (the kubeconfig path).
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiconformance_lab",
        description="Local AI lab: Kubernetes control plane with simulated GPU nodes.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="lab state directory"
        " (default $AIC_LAB_STATE_DIR, else ~/.cache/pytest-aiconformance/lab)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the lab binaries (cached)")
    build.add_argument("modules", nargs="*", metavar="MODULE",
                       help="only these Go modules (e.g. helm); default: all")
    up = sub.add_parser("up", help="start the lab (or reuse it); print the kubeconfig path")
    up.add_argument(
        "--shape",
        metavar="NAME|FILE",
        help=f"a named shape ({', '.join(shape_names())}) or a YAML file; options below go on top",
    )
    up.add_argument("--gpu-nodes", type=int)
    up.add_argument("--gpus-per-node", type=int)
    up.add_argument("--time-sliced-nodes", type=int)
    up.add_argument("--time-slice-replicas", type=int)
    up.add_argument("--cpu-nodes", type=int)
    up.add_argument("--no-dra", action="store_true", help="no simulated DRA driver")
    up.add_argument(
        "--no-dra-api",
        action="store_true",
        help="also switch resource.k8s.io/v1 off (the 1.35 scheduler then schedules nothing)",
    )
    up.add_argument("--no-metrics-server", action="store_true")
    up.add_argument(
        "--no-workload-api",
        action="store_true",
        help="leave the alpha Workload API (kube-scheduler's gang policy) switched off",
    )
    up.add_argument(
        "--kuberay",
        action="store_true",
        help="run the KubeRay operator with its CRDs and validating webhook (port 9443)",
    )
    up.add_argument("--kueue", action="store_true", help="run Kueue with its CRDs and webhooks")
    up.add_argument(
        "--trainer",
        action="store_true",
        help="run Kubeflow Trainer with its CRDs, the JobSet CRD and its validating webhooks",
    )
    up.add_argument(
        "--karpenter",
        action="store_true",
        help="run Karpenter (kwok provider) with a GPU NodePool: nodes come and go with GPU pods",
    )
    up.add_argument(
        "--keda",
        action="store_true",
        help="run KEDA (operator and external metrics API server) with its CRDs",
    )
    up.add_argument(
        "--coscheduling",
        action="store_true",
        help="run scheduler-plugins' Coscheduling (second scheduler scheduler-plugins-scheduler"
        " and PodGroup controller) with its CRDs",
    )
    up.add_argument(
        "--no-coscheduling-plugin",
        action="store_true",
        help="with --coscheduling: the second scheduler without the Coscheduling plugin",
    )
    up.add_argument(
        "--no-extended-resources",
        action="store_true",
        help="GPUs only through the simulated DRA driver (no device-plugin resource)",
    )
    up.add_argument("--gpu-taint", metavar="KEY[=VALUE]:EFFECT", help="taint every GPU node")
    up.add_argument("--vendor", choices=VENDORS)
    up.add_argument("--dra-driver", metavar="NAME", help="simulated DRA driver and DeviceClass")
    up.add_argument("--mig", choices=MIG_STRATEGIES, help="partition every GPU with MIG")
    up.add_argument("--busy", action="store_true", help="lab-owned pods hold every GPU")
    up.add_argument(
        "--real-nodes",
        type=int,
        metavar="N",
        help="real nodes (0 or 1: kubelet, containerd, CNI, kube-proxy; needs root)",
    )
    up.add_argument("--gateway", action="store_true",
                    help="run a Gateway API implementation (needs --real-nodes 1)")
    up.add_argument("--gateway-impl", choices=GATEWAY_IMPLS,
                    help="which one (default envoy-gateway)")
    up.add_argument("--prometheus", action="store_true",
                    help="run the Prometheus Operator and a Prometheus (needs --real-nodes 1)")
    up.add_argument("--shared-gpus", type=int, metavar="N",
                    help="N more time-sliced GPUs on the real node (nvidia.com/gpu.shared)")
    up.add_argument("--gpu-injection", choices=GPU_INJECTIONS,
                    help="who puts GPUs into the real node's containers (default plugin)")
    up.add_argument("--gpu-plugin-mode", choices=GPU_PLUGIN_MODES,
                    help="the real node's device plugin (all-devices: isolation broken)")
    up.add_argument("--gpu-exporter", choices=GPU_EXPORTERS,
                    help="the real node's DCGM-style exporter, or a negative variant of it")
    up.add_argument("--real-node-dra", action="store_true",
                    help="a DRA kubelet plugin for the real node's GPUs (needs DRA)")
    sub.add_parser("down", help="stop every lab process")
    sub.add_parser("status", help="exit 0 only when the lab is up and healthy")
    for verb in ("stop", "start"):
        cmd = sub.add_parser(verb, help=f"{verb} one component of a running lab")
        cmd.add_argument("component", choices=COMPONENTS)
    return parser


def _shape(args: argparse.Namespace) -> LabShape:
    shape = LabShape.load(args.shape) if args.shape else LabShape()
    changes: dict[str, object] = {}
    for name in (
        "gpu_nodes",
        "gpus_per_node",
        "time_sliced_nodes",
        "time_slice_replicas",
        "cpu_nodes",
        "gpu_taint",
        "vendor",
        "dra_driver",
        "real_nodes",
        "shared_gpus",
        "gpu_injection",
        "gpu_plugin_mode",
        "gpu_exporter",
        "gateway_impl",
    ):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.no_dra or args.no_dra_api:
        changes["dra"] = False
    if args.no_dra_api:
        changes["dra_api"] = False
    if args.no_metrics_server:
        changes["metrics_server"] = False
    if args.no_workload_api:
        changes["workload_api"] = False
    if args.kuberay:
        changes["kuberay"] = True
    if args.kueue:
        changes["kueue"] = True
    if args.trainer:
        changes["trainer"] = True
    if args.karpenter:
        changes["karpenter"] = True
    if args.keda:
        changes["keda"] = True
    if args.coscheduling:
        changes["coscheduling"] = True
    for flag in ("gateway", "prometheus", "real_node_dra"):
        if getattr(args, flag):
            changes[flag] = True
    if args.no_coscheduling_plugin:
        changes["coscheduling_plugin"] = False
    if args.no_extended_resources:
        changes["extended_resources"] = False
    if args.mig:
        changes.update(mig=True, mig_strategy=args.mig)
    if args.busy:
        changes["busy"] = True
    return shape.replace(**changes)


def main(argv: list[str] | None = None) -> int:
    """Run one lab command; return the exit status."""
    args = _parser().parse_args(argv)
    lab = Lab(args.state_dir)
    try:
        if args.command == "build":
            started = time.monotonic()
            for name, path in lab.build(_progress, tuple(args.modules) or None).items():
                print(f"{name}: {path}")
            _progress(f"build done in {time.monotonic() - started:.1f} s")
        elif args.command == "up":
            info = lab.up(_shape(args), _progress)
            print(f"server: {info.server}")
            print(info.kubeconfig)
        elif args.command == "down":
            started = time.monotonic()
            stopped = lab.down(_progress)
            print(
                f"lab down ({len(stopped)} processes stopped in {time.monotonic() - started:.1f} s)"
            )
        elif args.command == "status":
            status = lab.status()
            print(status.summary())
            return 0 if status.up and status.healthy else 1
        elif args.command == "stop":
            lab.stop_component(args.component, _progress)
        elif args.command == "start":
            lab.start_component(args.component, _progress)
    except LabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
