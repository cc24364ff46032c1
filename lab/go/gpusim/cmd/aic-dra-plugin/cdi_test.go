package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
)

func testDriver(t *testing.T) *driver {
	t.Helper()
	root := t.TempDir()
	state := filepath.Join(root, "gpusim")
	if err := simtest.WriteStateDir(state, simtest.SampleInventory()); err != nil {
		t.Fatal(err)
	}
	devices := filepath.Join(root, "devices.json")
	idx := func(n int64) map[resourceapi.QualifiedName]resourceapi.DeviceAttribute {
		return map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{"index": {IntValue: &n}}
	}
	raw, _ := json.Marshal([]resourceapi.Device{{Name: "gpu-0", Attributes: idx(0)},
		{Name: "gpu-1", Attributes: idx(1)}, {Name: "gpu-2", Attributes: idx(2)}})
	if err := os.WriteFile(devices, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config{stateDir: state, driver: "gpu.example.com", node: "aic-real-0",
		devices: devices, cdiDir: filepath.Join(root, "cdi"), envPrefix: "GPU_DEVICE_",
		smi: "/opt/nvidia-smi"}
	inv, err := sim.Load(filepath.Join(state, "devices.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, index, err := loadDevices(devices)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.cdiDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &driver{cfg: cfg, inv: inv, index: index, cancel: func() {}}
}

func claim(uid string, results ...resourceapi.DeviceRequestAllocationResult) *resourceapi.ResourceClaim {
	return &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: types.UID("uid-" + uid)},
		Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{
			Devices: resourceapi.DeviceAllocationResult{Results: results}}},
	}
}

func TestPrepareWritesOneCDISpecPerClaim(t *testing.T) {
	d := testDriver(t)
	inv := simtest.SampleInventory()
	c := claim("a", resourceapi.DeviceRequestAllocationResult{Request: "accel",
		Driver: "gpu.example.com", Pool: "aic-real-0", Device: "gpu-1"},
		// Another driver's or node's device is not ours to prepare.
		resourceapi.DeviceRequestAllocationResult{Request: "other", Driver: "gpu.nvidia.com",
			Pool: "aic-real-0", Device: "gpu-0"})
	res, err := d.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{c})
	if err != nil {
		t.Fatal(err)
	}
	r := res[c.UID]
	if r.Err != nil || len(r.Devices) != 1 || r.Devices[0].DeviceName != "gpu-1" ||
		r.Devices[0].PoolName != "aic-real-0" || r.Devices[0].Requests[0] != "accel" ||
		r.Devices[0].CDIDeviceIDs[0] != "aic-lab.local/gpu=uid-a-gpu-1" {
		t.Fatalf("%+v", r)
	}
	raw, err := os.ReadFile(specPath(d.cfg.cdiDir, string(c.UID)))
	if err != nil {
		t.Fatal(err)
	}
	var spec cdiSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	dev := spec.Devices[0]
	if spec.Kind != "aic-lab.local/gpu" || dev.Name != "uid-a-gpu-1" ||
		strings.Join(dev.Edits.Env, " ") != "GPU_DEVICE_0=gpu-1" ||
		dev.Edits.DeviceNodes[0].Path != "/dev/nvidia1" || dev.Edits.DeviceNodes[0].Minor != 1 ||
		dev.Edits.DeviceNodes[1].Path != "/dev/nvidiactl" {
		t.Fatalf("%s", raw)
	}
	alloc, err := sim.Load(dev.Edits.Mounts[1].HostPath)
	if err != nil || len(alloc.Devices) != 1 || alloc.Devices[0].UUID != inv.Devices[1].UUID {
		t.Fatalf("inventory %+v %v", alloc, err)
	}
	// gpu-2 on a two-GPU inventory wraps to GPU 0; unknown names fail the claim.
	if g, _ := gpuFor(d.index, d.inv, "gpu-2"); g.UUID != inv.Devices[0].UUID {
		t.Fatalf("gpu-2 -> %v", g)
	}
	bad := claim("b", resourceapi.DeviceRequestAllocationResult{Request: "accel",
		Driver: "gpu.example.com", Pool: "aic-real-0", Device: "gpu-9"})
	res, _ = d.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{bad})
	if res[bad.UID].Err == nil {
		t.Fatal("an unknown device was prepared")
	}
	un, err := d.UnprepareResourceClaims(context.Background(), []kubeletplugin.NamespacedObject{{UID: c.UID}, {UID: "never"}})
	if err != nil || un[c.UID] != nil || un["never"] != nil {
		t.Fatalf("%v %v", un, err)
	}
	if _, err := os.Stat(specPath(d.cfg.cdiDir, string(c.UID))); !os.IsNotExist(err) {
		t.Fatalf("spec left: %v", err)
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"--state-dir", "/x"}); err == nil {
		t.Fatal("missing flags accepted")
	}
}
