"""robust_controller: an AI operator runs reliably: CRDs, webhook, reconciliation, repair.

Judged per operator (KubeRay, Kubeflow Trainer): each check is parametrized by `operator` and
marked `solution="operator"`, so any one operator that passes all its checks proves the
requirement (the other's failures become notes). An operator that is not installed is not
applicable; none installed at all is the failure.

Supporting (presence): the operator's CRDs are Established and the operator behind them is
found as the API server reaches it: the admission webhook whose rules name its API group, the
Service it calls and the Deployment and Ready pods that Service selects, or the URL of an
operator run outside the cluster; the chart's labels are only a hint, and CRDs alone do not
pass.

Essential (operation), per operator:
- Webhook: an object that passes the CRD schema but breaks the operator's admission rule is
  denied by the operator's validating webhook, named in the error, with server-side dry run
  (nothing is stored), while the same object made valid passes the same dry run. KubeRay: a
  RayCluster with two worker groups of one name. Trainer: a TrainJob whose name is not a
  DNS-1035 label (it starts with a digit), which the API server accepts for custom resources.
- Reconciled: KubeRay: a valid RayCluster reaches ready with its head, workers and head
  service. Trainer: a valid TrainJob gets its JobSet, named like it and controlled by it.
- Repaired: KubeRay: a deleted head pod is recreated. Trainer: a deleted JobSet is recreated.
Supporting too: a Ray task runs on the cluster (exec).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_aiconformance.kit import (
    POD_WIDE,
    ApiError,
    EvidenceRecorder,
    Kube,
    OperatorManager,
    RunContext,
    Settings,
    Target,
    condition_true,
    get_table,
    name,
    not_applicable,
    robust_controller,
    simulation,
    table,
    watch_until,
)

REQ = "robust_controller"
# KubeRay builds the Ray pods itself (its injected containers carry no restricted
# securityContext), so these namespaces enforce the baseline Pod Security level.
pytestmark = pytest.mark.pod_security("baseline")
AO = robust_controller
OPERATORS = tuple(o.name for o in AO.OPERATORS)
RAY = AO.RAY
TRAINER = AO.TRAINER
JOBSET = AO.JOBSET
ADMISSION = "admissionregistration.k8s.io/v1"
Obj = dict[str, Any]
Timeout = Callable[[float], float]


def present(kube: Kube, operator: str) -> bool:
    """Whether the operator's workload kind is served (its CRDs exist)."""
    return kube.serves(*AO.BY_NAME[operator].api)


def require_operator(kube: Kube, operator: str, operators: OperatorManager) -> None:
    """This operator's check is not applicable when another AI operator is installed; with
    none installed at all, the requirement's operator is missing and the check fails. With
    --aic-install and none installed, KubeRay is installed first."""
    if operators.install and not any(present(kube, o) for o in OPERATORS):
        operators.ensure(AO.BY_NAME[AO.DEFAULT].operator)
    if present(kube, operator):
        return
    others = [AO.BY_NAME[o].title for o in OPERATORS if o != operator and present(kube, o)]
    if others:
        not_applicable(f"{AO.BY_NAME[operator].not_installed()}; {', '.join(others)} is")
    raise AssertionError(AO.none_found())


# Supporting: presence, not operation; the webhook and the reconciliation checks prove the
# controller answers. The operator is found the way the API server reaches it (operators.py
# find_operator), so any release name, namespace or installer is recognised.
@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.requirement(REQ, role="supporting", solution="operator")
def test_operator_installed(operator: str, kube: Kube, operators: OperatorManager,
                            evidence: EvidenceRecorder) -> None:
    """The operator behind its API group is found, not its CRDs alone.

    Its CRDs are Established, and the admission webhook that names the group leads to Ready
    pods in the cluster or to a process outside it (or, with no webhook, a Ready Deployment
    carrying the chart's labels)."""
    require_operator(kube, operator, operators)
    detection = operators.ensure(AO.BY_NAME[operator].operator)
    found = detection.operator
    assert found is not None, f"operators.yaml gives {operator} no apiGroups to find it by"
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


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.requirement(REQ, solution="operator")
def test_webhook_denies_invalid(operator: str, kube: Kube, operators: OperatorManager,
                                namespace: str, run_context: RunContext,
                                evidence: EvidenceRecorder, timeout: Timeout,
                                aic_settings: Settings) -> None:
    """An object valid for the CRD schema but not for the operator is denied by its webhook."""
    require_operator(kube, operator, operators)
    op = AO.BY_NAME[operator]
    webhooks = AO.validating_webhooks(kube.items(ADMISSION, "ValidatingWebhookConfiguration"),
                                     op.group, op.resource)
    evidence.command("kubectl get validatingwebhookconfigurations -o json  # webhooks with a "
                     f"rule for {op.resource}.{op.group}",
                     table([list(w) for w in webhooks], ["CONFIGURATION", "WEBHOOK"]))
    assert webhooks, f"no validating webhook is registered for {op.group} {op.resource}"
    if operator == "kuberay":
        valid = AO.ray_cluster("rc-webhook", namespace, ["workers-a", "workers-b"],
                               aic_settings.image("ray"))
        invalid = AO.duplicate_worker_groups(valid)
        what = "a RayCluster with duplicate worker group names"
        valid_note = "the same RayCluster with unique worker group names"
        file = "raycluster-duplicate-groups.yaml"
        kube.create(valid, dry_run=True)
    else:
        runtime = AO.training_runtime("aic-webhook-runtime", namespace,
                                      aic_settings.image("probe"))
        run_context.create(runtime)
        evidence.yaml("TrainingRuntime the TrainJobs run (the webhook looks it up)", runtime)
        valid = AO.train_job("tj-webhook", namespace, "aic-webhook-runtime")
        invalid = AO.renamed(valid, AO.invalid_trainjob_name("tj-webhook"))
        what = (f"a TrainJob named {invalid['metadata']['name']} (not a DNS-1035 label; the API "
                "server accepts it for custom resources)")
        valid_note = "the same TrainJob named tj-webhook"
        file = "trainjob-bad-name.yaml"
        admitted_once_runtime_seen(kube, valid, timeout)
    evidence.note(f"server-side dry run of {valid_note}: accepted (so the schema accepts this "
                  "shape)")
    try:
        kube.create(invalid, dry_run=True)
    except ApiError as exc:
        message = exc.message
    else:
        raise AssertionError(f"{what} was accepted: the operator's webhook did not deny it")
    evidence.command(f"kubectl apply --dry-run=server -n {namespace} -f {file}",
                     f"Error from server: {message}")
    names = [w for _, w in webhooks]
    assert AO.denied_by_webhook(message, names), (
        f"the denial does not come from the operator's webhook ({', '.join(names)}): {message}"
    )
    kind = op.api[1]
    assert kube.get_or_none(op.api[0], kind, invalid["metadata"]["name"], namespace) is None, \
        f"the dry run stored {kind} {invalid['metadata']['name']}"


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.requirement(REQ, solution="operator")
def test_workload_reconciled(operator: str, kube: Kube, operators: OperatorManager,
                             namespace: str, run_context: RunContext,
                             evidence: EvidenceRecorder, timeout: Timeout,
                             aic_settings: Settings) -> None:
    """A valid workload is reconciled by the operator.

    KubeRay: a RayCluster reaches ready with its head, workers and head service. Trainer: a
    TrainJob gets its JobSet, controlled by it."""
    require_operator(kube, operator, operators)
    if operator == "kuberay":
        ready_ray_cluster(kube, namespace, run_context, evidence, timeout, aic_settings)
        ray_cluster_parts(kube, namespace, evidence)
    else:
        train_job_with_jobset(kube, namespace, run_context, evidence, timeout, aic_settings)


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.requirement(REQ, solution="operator")
def test_child_repaired(operator: str, kube: Kube, operators: OperatorManager, namespace: str,
                        run_context: RunContext, evidence: EvidenceRecorder, timeout: Timeout,
                        aic_settings: Settings) -> None:
    """A deleted child of a reconciled workload is recreated by the operator.

    KubeRay: a new Ready head pod. Trainer: the TrainJob's JobSet again, controlled by it."""
    require_operator(kube, operator, operators)
    if operator == "kuberay":
        ready_ray_cluster(kube, namespace, run_context, evidence, timeout, aic_settings)
        head_pod_repaired(kube, namespace, evidence, timeout)
    else:
        job, jobset = train_job_with_jobset(kube, namespace, run_context, evidence, timeout,
                                            aic_settings)
        jobset_repaired(kube, namespace, job, jobset, evidence, timeout)


# --- KubeRay ----------------------------------------------------------------------------------

def _ray_pods(namespace: str, cluster: str, node_type: str | None = None) -> Target:
    sel = f"ray.io/cluster={cluster}" + (f",ray.io/node-type={node_type}" if node_type else "")
    return Target("v1", "Pod", namespace, label_selector=sel)


def ready_ray_cluster(kube: Kube, namespace: str, run_context: RunContext,
                      evidence: EvidenceRecorder, timeout: Timeout,
                      aic_settings: Settings) -> Obj:
    """A valid RayCluster, reconciled to ready."""
    rc = AO.ray_cluster("rc", namespace, ["workers"], aic_settings.image("ray"))
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


def ray_cluster_parts(kube: Kube, namespace: str, evidence: EvidenceRecorder) -> None:
    """The ready RayCluster has one Ready head, one Ready worker and a head service."""
    pods = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc")
    evidence.command(f"kubectl get pods -n {namespace} -l ray.io/cluster=rc -o wide",
                     get_table(pods, POD_WIDE))
    problem = AO.ray_pods_problem(pods)
    assert not problem, problem
    services = kube.items("v1", "Service", namespace, label_selector="ray.io/cluster=rc")
    evidence.command(f"kubectl get svc -n {namespace} -l ray.io/cluster=rc",
                     get_table(services, [("NAME", name),
                                          ("TYPE", lambda o: o["spec"].get("type", "")),
                                          ("PORTS", lambda o: ",".join(
                                              f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                                              for p in o["spec"].get("ports", [])))]))
    assert AO.has_head_service(services), "the operator created no head service"


def head_pod_repaired(kube: Kube, namespace: str, evidence: EvidenceRecorder,
                      timeout: Timeout) -> None:
    """Deleting the head pod is repaired: the operator creates a new Ready head pod."""
    heads = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc,"
                                                              "ray.io/node-type=head")
    assert heads, "the ready RayCluster has no head pod"
    old = heads[0]
    kube.delete("v1", "Pod", old["metadata"]["name"], namespace, grace=0)
    evidence.command(f"kubectl delete pod {old['metadata']['name']} -n {namespace}",
                     f'pod "{old["metadata"]["name"]}" deleted')
    new = watch_until(
        kube, _ray_pods(namespace, "rc", "head"),
        lambda objs: any(o["metadata"]["uid"] != old["metadata"]["uid"]
                         and condition_true(o, "Ready") for o in objs.values()),
        timeout=timeout(300), expected="the operator to recreate a Ready head pod",
    )
    fresh = [o for o in new.values() if o["metadata"]["uid"] != old["metadata"]["uid"]]
    evidence.command(f"kubectl get pods -n {namespace} -l ray.io/node-type=head -o wide",
                     get_table(fresh, POD_WIDE))


@pytest.mark.gpu
@pytest.mark.requirement(REQ, role="supporting")
def test_ray_task_runs(kube: Kube, operators: OperatorManager, namespace: str,
                       run_context: RunContext, evidence: EvidenceRecorder, timeout: Timeout,
                       aic_settings: Settings) -> None:
    """A Ray task runs on the reconciled cluster (exec in the head pod)."""
    require_operator(kube, "kuberay", operators)
    ready_ray_cluster(kube, namespace, run_context, evidence, timeout, aic_settings)
    heads = kube.items("v1", "Pod", namespace, label_selector="ray.io/cluster=rc,"
                                                              "ray.io/node-type=head")
    simulation.require_running_containers(kube, [h["spec"]["nodeName"] for h in heads])
    code = ("import ray; ray.init(); "
            "print('RESULT', ray.get(ray.remote(lambda: 6 * 7).remote()))")
    out = kube.exec(namespace, heads[0]["metadata"]["name"], ["python", "-c", code],
                    timeout=120)
    evidence.command(f"kubectl exec -n {namespace} {heads[0]['metadata']['name']} -- "
                     f"python -c \"{code}\"", out)
    assert "RESULT 42" in out, f"the Ray task did not return 42: {out[-300:]}"


# --- Kubeflow Trainer -------------------------------------------------------------------------

JOBSET_NOTE = ("The JobSet is Trainer's child object: Trainer's controller builds it from the "
               "TrainJob and its runtime and owns it. Running the JobSet's Jobs and pods is the "
               "JobSet controller's part, not Trainer's, and is not judged here.")


def admitted_once_runtime_seen(kube: Kube, job: Obj, timeout: Timeout) -> None:
    """A server-side dry run of the TrainJob, admitted. Trainer's webhook looks the runtime up
    in its informer cache, which sees a runtime just created a moment later, and nothing the
    API server serves tells when: the dry run is retried on exactly that denial (runtime not
    found) until the deadline, then its answer stands."""
    deadline = time.monotonic() + timeout(30)
    while True:
        try:
            kube.create(job, dry_run=True)
            return
        except ApiError as exc:
            if AO.RUNTIME_NOT_SEEN not in exc.message or time.monotonic() >= deadline:
                raise
        time.sleep(0.5)


def train_job_with_jobset(kube: Kube, namespace: str, run_context: RunContext,
                          evidence: EvidenceRecorder, timeout: Timeout,
                          aic_settings: Settings) -> tuple[Obj, Obj]:
    """A valid TrainJob on a runtime of the check's own, and the JobSet Trainer made for it."""
    assert kube.serves(JOBSET, "JobSet"), (
        f"{JOBSET} JobSet is not served: Kubeflow Trainer builds a JobSet for every TrainJob, "
        "so JobSet must be installed with it")
    runtime = AO.training_runtime("aic-runtime", namespace, aic_settings.image("probe"))
    run_context.create(runtime)
    evidence.yaml("TrainingRuntime (namespaced, created by the check)", runtime)
    admitted_once_runtime_seen(kube, AO.train_job("tj", namespace, "aic-runtime"), timeout)
    job = run_context.create(AO.train_job("tj", namespace, "aic-runtime"))
    evidence.yaml("TrainJob", AO.train_job("tj", namespace, "aic-runtime"))
    found = watch_until(
        kube, Target(JOBSET, "JobSet", namespace, name="tj"), AO.controlled_jobset(job),
        timeout=timeout(120), expected="Trainer to create JobSet tj controlled by TrainJob tj",
        describe=lambda objs: AO.jobset_states(objs, job),
    )
    jobset = next(iter(found.values()))
    meta = job["metadata"]
    evidence.command(f"kubectl get trainjob tj -n {namespace} -o custom-columns=NAME:"
                     ".metadata.name,UID:.metadata.uid,RUNTIME:.spec.runtimeRef.name",
                     table([[meta["name"], meta.get("uid", ""), "aic-runtime"]],
                           ["NAME", "UID", "RUNTIME"]))
    evidence.command(f"kubectl get jobset tj -n {namespace} -o custom-columns=NAME:"
                     ".metadata.name,UID:.metadata.uid,CREATED:.metadata.creationTimestamp,"
                     "OWNER_REFERENCES:.metadata.ownerReferences", AO.jobset_table([jobset]))
    evidence.note(JOBSET_NOTE)
    return job, jobset


def jobset_repaired(kube: Kube, namespace: str, job: Obj, jobset: Obj,
                    evidence: EvidenceRecorder, timeout: Timeout) -> None:
    """Deleting the TrainJob's JobSet is repaired: Trainer creates it again, controlled by
    the TrainJob."""
    old_uid = jobset["metadata"]["uid"]
    kube.delete(JOBSET, "JobSet", "tj", namespace)
    evidence.command(f"kubectl delete jobset tj -n {namespace}",
                     f'jobset.jobset.x-k8s.io "tj" deleted (uid {old_uid})')
    found = watch_until(
        kube, Target(JOBSET, "JobSet", namespace, name="tj"),
        AO.controlled_jobset(job, old_uid),
        timeout=timeout(120),
        expected="Trainer to recreate JobSet tj (a new uid) controlled by TrainJob tj",
        describe=lambda objs: AO.jobset_states(objs, job, old_uid),
    )
    evidence.command(f"kubectl get jobset tj -n {namespace} -o custom-columns=NAME:"
                     ".metadata.name,UID:.metadata.uid,CREATED:.metadata.creationTimestamp,"
                     "OWNER_REFERENCES:.metadata.ownerReferences",
                     AO.jobset_table(list(found.values())))
