"""robust_controller: an AI operator (KubeRay) runs reliably: CRDs, webhook, reconciliation.

Supporting (presence): the ray.io CRDs are Established and the operator behind them is found
as the API server reaches it: the admission webhook whose rules name ray.io, the Service it
calls and the Deployment and Ready pods that Service selects, or the URL of an operator run
outside the cluster; the chart's labels are only a hint, and CRDs alone do not pass.
Essential (operation): a RayCluster that passes the
CRD schema but breaks the operator's admission rule (duplicate worker group names) is
denied by the operator's validating webhook, named in the error, with server-side dry run
(nothing is stored), while the same object made valid passes the same dry run; a valid
RayCluster is reconciled to ready with its head, workers and head service; a deleted head
pod is recreated by the operator. Supporting too: a Ray task runs on the cluster (exec).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    Target,
    condition_true,
    get_table,
    name,
    probing,
    table,
    watch_until,
    workloads,
)

REQ = "robust_controller"
# KubeRay builds the Ray pods itself (its injected containers carry no restricted
# securityContext), so these namespaces enforce the baseline Pod Security level.
pytestmark = pytest.mark.pod_security("baseline")
RAY = "ray.io/v1"


@pytest.fixture
def kuberay(operators, kube):
    """KubeRay as detected (or installed with --aic-install)."""
    detection = operators.ensure("kuberay")
    _require_kuberay(kube)
    return detection


def _require_kuberay(kube) -> None:
    assert kube.serves(RAY, "RayCluster"), (
        "KubeRay is not installed (ray.io/v1 RayCluster is not served); install it or run "
        "with --aic-install"
    )


def ray_cluster(cluster: str, namespace: str, groups: list[str], image: str) -> dict[str, Any]:
    """A small RayCluster: one head, one worker per named group."""
    def pod_spec(role: str) -> dict[str, Any]:
        ctr = workloads.container(f"ray-{role}", ["sleep", "infinity"], image=image,
                                  resources_={"requests": {"cpu": "100m", "memory": "256Mi"},
                                              "limits": {"cpu": "1", "memory": "1Gi"}})
        ctr.pop("command")  # KubeRay generates the ray start command
        spec = workloads.pod("x", namespace, [ctr])["spec"]
        spec.pop("restartPolicy")
        spec.pop("securityContext")
        ctr.pop("securityContext")
        return {"spec": spec}

    return {
        "apiVersion": RAY, "kind": "RayCluster",
        "metadata": {"name": cluster, "namespace": namespace},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": pod_spec("head")},
            "workerGroupSpecs": [{"groupName": g, "replicas": 1, "minReplicas": 1,
                                  "maxReplicas": 1, "rayStartParams": {},
                                  "template": pod_spec("worker")} for g in groups],
        },
    }


# Supporting: presence, not operation; the webhook and the reconciliation checks prove the
# controller answers. The operator is found the way the API server reaches it (operators.py
# find_operator), so any release name, namespace or installer is recognised.
@pytest.mark.requirement(REQ, role="supporting")
def test_operator_installed(operators, evidence):
    """The operator behind ray.io is found: its CRDs Established, and the admission webhook
    that names ray.io leads to Ready pods in the cluster or to a process outside it (or, with
    no webhook, a Ready Deployment carrying the chart's labels). CRDs alone do not pass."""
    detection = operators.ensure("kuberay")
    found = detection.operator
    assert found is not None, "operators.yaml gives kuberay no apiGroups to find it by"
    groups = ",".join(found.groups)
    evidence.command(
        f"kubectl get crd {' '.join(n for n, _ in found.crds)} -o custom-columns=NAME:"
        ".metadata.name,ESTABLISHED:.status.conditions[?(@.type=='Established')].status",
        table(found.crds, ["NAME", "ESTABLISHED"]), f"CRDs of API group {groups}")
    evidence.command(
        "kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations -o json "
        f"# webhooks with a rule for API group {groups}",
        table([[r.kind, r.configuration, r.webhook, r.target] for r in found.routes],
              ["KIND", "CONFIGURATION", "WEBHOOK", "CALLS"]))
    for backend in found.backends.values():
        namespace = backend.service.partition("/")[0]
        sel = ",".join(f"{k}={v}" for k, v in backend.selector)
        evidence.command(f"kubectl get svc,deploy,pods -n {namespace}"
                         + (f" -l {sel}" if sel else ""),
                         backend.describe() + ("\n" + table(
                             [[pod, "True" if ready else "False"] for pod, ready in backend.pods],
                             ["POD", "READY"]) if backend.pods else ""))
    if found.hints:
        evidence.command("; ".join(f"kubectl get deploy -A -l {h}" for h in found.hints)
                         + "  # the chart's labels: a hint only",
                         table([list(h) for h in found.hinted], ["DEPLOYMENT", "READY", "PODS"])
                         if found.hinted else "(no Deployment carries these labels)")
    verdict = found.assess()
    evidence.note(f"operator {verdict.location}: {verdict.reason}" if verdict.ok
                  else verdict.reason)
    assert verdict.ok, verdict.reason


@pytest.mark.requirement(REQ)
def test_webhook_denies_invalid(kube, kuberay, namespace, evidence, aic_settings):
    """A RayCluster valid for the CRD schema but not for the operator is denied by its webhook."""
    webhooks = [
        (cfg["metadata"]["name"], wh["name"])
        for cfg in kube.items("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
        for wh in cfg.get("webhooks", [])
        if any("ray.io" in r.get("apiGroups", []) and "rayclusters" in r.get("resources", [])
               for r in wh.get("rules", []))
    ]
    evidence.command("kubectl get validatingwebhookconfigurations",
                     table([list(w) for w in webhooks], ["CONFIGURATION", "WEBHOOK"]))
    assert webhooks, "no validating webhook is registered for ray.io rayclusters"
    valid = ray_cluster("rc-webhook", namespace, ["workers-a", "workers-b"],
                        aic_settings.image("ray"))
    kube.create(valid, dry_run=True)
    evidence.note("server-side dry run of the same RayCluster with unique worker group names: "
                  "accepted (so the schema accepts this shape)")
    invalid = copy.deepcopy(valid)
    invalid["spec"]["workerGroupSpecs"][1]["groupName"] = "workers-a"
    try:
        kube.create(invalid, dry_run=True)
    except ApiError as exc:
        message = exc.message
    else:
        raise AssertionError("a RayCluster with duplicate worker group names was accepted: "
                             "the operator's webhook did not deny it")
    evidence.command(f"kubectl apply --dry-run=server -n {namespace} -f raycluster-duplicate-"
                     "groups.yaml", f"Error from server: {message}")
    names = [w for _, w in webhooks]
    from_webhook = "admission webhook" in message and any(f'"{w}"' in message for w in names)
    assert from_webhook, (
        f"the denial does not come from the operator's webhook ({', '.join(names)}): {message}"
    )
    assert kube.get_or_none(RAY, "RayCluster", "rc-webhook", namespace) is None


def _ray_pods(kube, namespace: str, cluster: str, node_type: str | None = None) -> Target:
    sel = f"ray.io/cluster={cluster}" + (f",ray.io/node-type={node_type}" if node_type else "")
    return Target("v1", "Pod", namespace, label_selector=sel)


@pytest.fixture
def ready_ray_cluster(kube, kuberay, namespace, run_context, evidence, timeout, aic_settings):
    """A valid RayCluster, reconciled to ready."""
    rc = ray_cluster("rc", namespace, ["workers"], aic_settings.image("ray"))
    run_context.create(rc)
    done = watch_until(
        kube, Target(RAY, "RayCluster", namespace, name="rc"),
        lambda objs: any(o.get("status", {}).get("state") == "ready" for o in objs.values()),
        timeout=timeout(300), expected="RayCluster rc to reach state ready",
    )
    obj = next(iter(done.values()))
    st = obj.get("status", {})
    evidence.command(f"kubectl get raycluster -n {namespace}", table(
        [["rc", st.get("desiredWorkerReplicas", ""), st.get("availableWorkerReplicas", ""),
          st.get("state", "")]], ["NAME", "DESIRED WORKERS", "AVAILABLE WORKERS", "STATUS"]))
    return obj


@pytest.mark.requirement(REQ, junit="RayClusterReconciled")
def test_raycluster_reconciled(kube, namespace, ready_ray_cluster, evidence):
    """A valid RayCluster is reconciled to ready with its head, workers and head service."""
    pods = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc")
    evidence.command(f"kubectl get pods -n {namespace} -l ray.io/cluster=rc -o wide",
                     get_table(pods, POD_WIDE))
    heads = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
    workers = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "worker"]
    assert len(heads) == 1, f"{len(heads)} head pods, expected 1"
    assert all(condition_true(p, "Ready") for p in heads), "the head pod is not Ready"
    assert len(workers) == 1, f"{len(workers)} worker pods, expected 1"
    assert all(condition_true(p, "Ready") for p in workers), "the worker pod is not Ready"
    services = kube.items("v1", "Service", namespace, label_selector="ray.io/cluster=rc")
    evidence.command(f"kubectl get svc -n {namespace} -l ray.io/cluster=rc",
                     get_table(services, [("NAME", name),
                                          ("TYPE", lambda o: o["spec"].get("type", "")),
                                          ("PORTS", lambda o: ",".join(
                                              f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                                              for p in o["spec"].get("ports", [])))]))
    assert any(s["metadata"]["labels"].get("ray.io/node-type") == "head" or
               s["metadata"]["name"].endswith("head-svc") for s in services), \
        "the operator created no head service"


@pytest.mark.requirement(REQ)
def test_head_pod_repaired(kube, namespace, ready_ray_cluster, evidence, timeout):
    """Deleting the head pod is repaired: the operator creates a new Ready head pod."""
    heads = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc,"
                                                              "ray.io/node-type=head")
    old = heads[0]
    kube.delete("v1", "Pod", old["metadata"]["name"], namespace, grace=0)
    evidence.command(f"kubectl delete pod {old['metadata']['name']} -n {namespace}",
                     f'pod "{old["metadata"]["name"]}" deleted')
    new = watch_until(
        kube, _ray_pods(kube, namespace, "rc", "head"),
        lambda objs: any(o["metadata"]["uid"] != old["metadata"]["uid"]
                         and condition_true(o, "Ready") for o in objs.values()),
        timeout=timeout(300), expected="the operator to recreate a Ready head pod",
    )
    fresh = [o for o in new.values() if o["metadata"]["uid"] != old["metadata"]["uid"]]
    evidence.command(f"kubectl get pods -n {namespace} -l ray.io/node-type=head -o wide",
                     get_table(fresh, POD_WIDE))


@pytest.mark.gpu
@pytest.mark.requirement(REQ, role="supporting")
def test_ray_task_runs(kube, namespace, ready_ray_cluster, evidence):
    """A Ray task runs on the reconciled cluster (exec in the head pod)."""
    heads = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc,"
                                                              "ray.io/node-type=head")
    probing.require_running_containers(kube, [h["spec"]["nodeName"] for h in heads])
    code = ("import ray; ray.init(); "
            "print('RESULT', ray.get(ray.remote(lambda: 6 * 7).remote()))")
    out = kube.exec(namespace, heads[0]["metadata"]["name"], ["python", "-c", code],
                    timeout=120)
    evidence.command(f"kubectl exec -n {namespace} {heads[0]['metadata']['name']} -- "
                     f"python -c \"{code}\"", out)
    assert "RESULT 42" in out, f"the Ray task did not return 42: {out[-300:]}"
