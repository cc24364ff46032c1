"""Dummy checks (pytester module text) with known outcomes, and the verdicts they must give."""

CHECKS = '''
import pytest
from pytest_aiconformance.verdicts.outcomes import not_applicable, not_observable

# dra_support: essential pass + supporting not observable -> Implemented (note on supporting)
@pytest.mark.requirement("dra_support", junit="TestDRASupport/APIKindsServed")
def test_dra_pass(evidence):
    """DRA kinds are served."""
    evidence.command("kubectl api-resources --api-group=resource.k8s.io",
                     "NAME          APIVERSION           KIND\\n"
                     "deviceclasses resource.k8s.io/v1   DeviceClass")
    evidence.note("all four kinds are served")
    evidence.yaml("a secret", {"kind": "Secret", "data": {"token": "c2VjcmV0"}},
                  "kubectl get secret s -o yaml")
    evidence.command("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123' https://x",
                     "ok")

@pytest.mark.requirement("dra_support", role="supporting",
                         junit="TestDRASupport/DeviceMetadataInContainer")
def test_dra_supporting_unobservable():
    """Device metadata reaches the container."""
    not_observable("simulated nodes run no containers")

# gang_scheduling: essential pass + essential fail -> Partially Implemented
@pytest.mark.requirement("gang_scheduling", junit="TestGangScheduling/AllOrNothing")
def test_gang_pass():
    """All members bound together."""

@pytest.mark.requirement("gang_scheduling", junit="TestGangScheduling/NoneBoundWhenShort")
def test_gang_fail():
    """No member bound when capacity is short."""
    assert False, "2 of 4 gang members were bound"

# ai_inference: essential fail only -> Not Implemented
@pytest.mark.requirement("ai_inference", junit="TestAIInference/GatewayRoutes")
def test_inference_fail():
    """The Gateway routes by path."""
    assert False, "no GatewayClass is accepted"

# cluster_autoscaling (conditional MUST): not applicable -> N/A with the reason as a note
@pytest.mark.requirement("cluster_autoscaling", junit="TestClusterAutoscaling/ScaleUp")
def test_autoscaler_na():
    """Accelerator node group grows."""
    not_applicable("no cluster autoscaler is deployed")

# accelerator_metrics: a plain skip -> Not verified (a skip is never a pass)
@pytest.mark.requirement("accelerator_metrics", junit="TestAcceleratorMetrics/Exported")
def test_metrics_plain_skip():
    """Per-device metrics are exported."""
    pytest.skip("metrics endpoint not reachable from here")

# ai_service_metrics: essential pass + essential not observable -> Not verified
@pytest.mark.requirement("ai_service_metrics", junit="TestAIServiceMetrics/Discovered")
def test_service_metrics_pass():
    """Monitoring discovers the workload."""

@pytest.mark.requirement("ai_service_metrics", junit="TestAIServiceMetrics/Scraped")
def test_service_metrics_unobservable():
    """The workload's metrics are scraped."""
    not_observable("the lab runs no Prometheus")

# secure_accelerator_access: essential pass -> Implemented
@pytest.mark.requirement("secure_accelerator_access",
                         junit="TestSecureAcceleratorAccess/NegativeIsolationTest")
def test_secure_pass():
    """A container sees only its own accelerator."""

# gpu_sharing: only in 1.35+ (SHOULD): a plain skip
@pytest.mark.requirement("gpu_sharing", junit="TestGPUSharing/TimeSlicing")
def test_sharing_skip():
    """Two pods share one GPU."""
    pytest.skip("no shareable GPU")

# disaggregated_inference: only in 1.36 (SHOULD): passes
@pytest.mark.requirement("disaggregated_inference", junit="TestDisaggregatedInference/Serve")
def test_disagg_pass():
    """Prefill and decode serve together."""

def test_not_a_check():
    """Plain tests live alongside checks and are left alone."""
'''

# requirement -> (status for 1.34, reason fragment)
EXPECTED_134 = {
    "dra_support": "Implemented",
    "gang_scheduling": "Partially Implemented",
    "ai_inference": "Not Implemented",
    "cluster_autoscaling": "N/A",
    "accelerator_metrics": "Not verified",
    "ai_service_metrics": "Not verified",
    "secure_accelerator_access": "Implemented",
    "pod_autoscaling": "Not verified",
    "robust_controller": "Not verified",
}

NODE = "test_checks.py::"


# One check that needs the cluster connection (for bad-input and option tests).
KUBE_CHECK = """
import pytest

@pytest.mark.requirement("gang_scheduling")
def test_check(kube):
    pass
"""
