"""Process specs of the control plane: etcd, kube-apiserver, controller-manager, scheduler.

All four run from the one ``aiclab`` binary (a multi-call build of the upstream commands),
bound to 127.0.0.1 on the ports chosen at start.
"""

from __future__ import annotations

from .spec import ProcessSpec, SpecInputs, insecure_healthz, kubeconfig_flags

SERVICE_CIDR = "10.96.0.0/16"


def specs(inputs: SpecInputs) -> list[ProcessSpec]:
    """The control plane's components, in start order."""
    return [etcd(inputs), apiserver(inputs), controller_manager(inputs), scheduler(inputs)]


def etcd(inputs: SpecInputs) -> ProcessSpec:
    """A single-member etcd without fsync (the lab's data is disposable)."""
    etcd_url = inputs.url("etcd", "http")
    peer_url = inputs.url("etcd-peer", "http")
    argv = [
        inputs.binary("aiclab"),
        "etcd",
        "--name=aic-lab",
        f"--data-dir={inputs.state.root / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=aic-lab={peer_url}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    return ProcessSpec("etcd", argv, f"{etcd_url}/health", "plain", inputs.ports["etcd"])


# Kubernetes 1.35's alpha Workload API: the API and the pods' workloadRef (GenericWorkload),
# and kube-scheduler's GangScheduling plugin (GangScheduling, which needs GenericWorkload).
WORKLOAD_GATES = "GenericWorkload=true,GangScheduling=true"
WORKLOAD_API = "scheduling.k8s.io/v1alpha1=true"


def feature_gates(inputs: SpecInputs) -> list[str]:
    """The alpha feature gates the shape turns on, as flags (the same on the API server and
    the scheduler: the API server serves the objects, the scheduler acts on them)."""
    return [f"--feature-gates={WORKLOAD_GATES}"] if inputs.shape.workload_api else []


def apiserver(inputs: SpecInputs) -> ProcessSpec:
    """kube-apiserver with RBAC, the aggregation layer, (unless switched off) DRA and
    (when the shape asks for it) the Workload API."""
    f = inputs.pki.file
    dra_api = inputs.shape.dra_api
    runtime_config = [*([] if dra_api else ["resource.k8s.io/v1=false"]),
                      *([WORKLOAD_API] if inputs.shape.workload_api else [])]
    argv = [
        inputs.binary("aiclab"),
        "kube-apiserver",
        f"--bind-address={inputs.host('apiserver')}",
        f"--advertise-address={inputs.host('apiserver')}",
        f"--secure-port={inputs.ports['apiserver']}",
        f"--etcd-servers={inputs.url('etcd', 'http')}",
        f"--client-ca-file={f('ca.crt')}",
        f"--tls-cert-file={f('apiserver.crt')}",
        f"--tls-private-key-file={f('apiserver.key')}",
        # The Node authorizer watches ResourceSlices and keeps the API server
        # unready while resource.k8s.io/v1 is off; no kubelet needs it without DRA.
        "--authorization-mode=" + ("Node,RBAC" if dra_api else "RBAC"),
        "--enable-admission-plugins=NodeRestriction",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={f('sa.pub')}",
        f"--service-account-signing-key-file={f('sa.key')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        f"--requestheader-client-ca-file={f('front-proxy-ca.crt')}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={f('front-proxy-client.crt')}",
        f"--proxy-client-key-file={f('front-proxy-client.key')}",
        "--profiling=false",
        *_kubelet_client(inputs),
        *feature_gates(inputs),
        *([f"--runtime-config={','.join(runtime_config)}"] if runtime_config else []),
    ]
    health = f"{inputs.url('apiserver')}/readyz"
    # Half the garbage collections: a start creates some fifty CRDs (7 MB of schemas), each
    # copied, converted and encoded many times, and collecting took a third of the API
    # server's CPU, the lab's bottleneck on 2 cores.  Costs about 0.7 GiB more resident.
    return ProcessSpec("apiserver", argv, health, "admin", inputs.ports["apiserver"],
                       env={"GOGC": "200"})


def _kubelet_client(inputs: SpecInputs) -> list[str]:
    """How the API server reaches a real node's kubelet (logs, exec, port-forward): with a
    client certificate, at the node's InternalIP (the kubelet listens on the bridge only)."""
    if not inputs.shape.real_nodes:
        return []
    cert, key = inputs.pki.client("apiserver-kubelet-client")
    return [f"--kubelet-client-certificate={cert}", f"--kubelet-client-key={key}",
            "--kubelet-preferred-address-types=InternalIP"]


def controller_manager(inputs: SpecInputs) -> ProcessSpec:
    """kube-controller-manager, with an HPA tuned to react in seconds."""
    f = inputs.pki.file
    kubeconfig = inputs.state.etc / "controller-manager.kubeconfig"
    argv = [
        inputs.binary("aiclab"),
        "kube-controller-manager",
        *kubeconfig_flags(str(kubeconfig)),
        "--bind-address=127.0.0.1",
        f"--secure-port={inputs.ports['controller-manager']}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={f('sa.key')}",
        f"--root-ca-file={f('ca.crt')}",
        f"--cluster-signing-cert-file={f('ca.crt')}",
        f"--cluster-signing-key-file={f('ca.key')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The lab's HPA reacts in seconds, not minutes: tests wait on it.
        "--horizontal-pod-autoscaler-sync-period=5s",
        "--horizontal-pod-autoscaler-downscale-stabilization=15s",
        "--horizontal-pod-autoscaler-cpu-initialization-period=10s",
        "--horizontal-pod-autoscaler-initial-readiness-delay=5s",
        "--profiling=false",
    ]
    return insecure_healthz("controller-manager", argv, inputs)


def scheduler(inputs: SpecInputs) -> ProcessSpec:
    """kube-scheduler with its default profile (which gains the GangScheduling plugin when
    the gate is on)."""
    argv = [
        inputs.binary("aiclab"),
        "kube-scheduler",
        *kubeconfig_flags(str(inputs.state.etc / "scheduler.kubeconfig")),
        "--bind-address=127.0.0.1",
        f"--secure-port={inputs.ports['scheduler']}",
        "--leader-elect=false",
        "--profiling=false",
        *feature_gates(inputs),
    ]
    return insecure_healthz("scheduler", argv, inputs)
