package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
	"google.golang.org/grpc"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

var inv = simtest.SampleInventory()

func stateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := simtest.WriteStateDir(dir, inv); err != nil {
		t.Fatal(err)
	}
	return dir
}

func scrape(t *testing.T, args ...string) string {
	t.Helper()
	cfg, err := parseFlags(append([]string{"--hostname", "aic-real-0"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newExporter(cfg).handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("%d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return string(body)
}

// sample is the value of the series of name whose labels contain match.
func sample(t *testing.T, page, name, match string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], match) {
			return m[2]
		}
	}
	t.Fatalf("no %s{..%s..} in\n%s", name, match, page)
	return ""
}

func TestMetricsFollowLoad(t *testing.T) {
	dir := stateDir(t)
	page := scrape(t, "--state-dir", dir)
	want := `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="` + inv.Devices[0].UUID + `",pci_bus_id="00000000:00:04.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15"} 0`
	if !strings.Contains(page, want+"\n") {
		t.Fatalf("missing %s in\n%s", want, page)
	}
	for _, name := range []string{"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"} {
		if !strings.Contains(page, "# TYPE "+name+" gauge\n") {
			t.Errorf("no %s", name)
		}
	}
	if err := sim.WriteBusyUntil(filepath.Join(dir, "util"), inv.Devices[1].UUID, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	page = scrape(t, "--state-dir", dir)
	if v := sample(t, page, "DCGM_FI_DEV_GPU_UTIL", inv.Devices[1].UUID); v != "100" {
		t.Fatalf("loaded device at %s", v)
	}
	if v := sample(t, page, "DCGM_FI_DEV_GPU_UTIL", inv.Devices[0].UUID); v != "0" {
		t.Fatalf("idle device at %s", v)
	}
	if v := sample(t, page, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", inv.Devices[1].UUID); v != "1.000000" {
		t.Fatalf("ratio %s", v)
	}
	// An expired deadline is idle again.
	if err := sim.WriteBusyUntil(filepath.Join(dir, "util"), inv.Devices[1].UUID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if v := sample(t, scrape(t, "--state-dir", dir), "DCGM_FI_DEV_GPU_UTIL", inv.Devices[1].UUID); v != "0" {
		t.Fatalf("after the load: %s", v)
	}
}

func TestNegativeVariants(t *testing.T) {
	dir := stateDir(t)
	if err := sim.WriteBusyUntil(filepath.Join(dir, "util"), inv.Devices[0].UUID, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	page := scrape(t, "--state-dir", dir, "--frozen-util")
	if v := sample(t, page, "DCGM_FI_DEV_GPU_UTIL", inv.Devices[0].UUID); v != "0" {
		t.Fatalf("frozen utilisation moved: %s", v)
	}
	page = scrape(t, "--state-dir", dir, "--no-device-labels")
	for _, label := range []string{`gpu="`, `UUID="`, `device="`, `pci_bus_id="`} {
		if strings.Contains(page, label) {
			t.Fatalf("label %s present:\n%s", label, page)
		}
	}
	if !strings.Contains(page, `DCGM_FI_DEV_GPU_UTIL{modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15"}`) {
		t.Fatalf("\n%s", page)
	}
}

type fakePodResources struct {
	podresources.UnimplementedPodResourcesListerServer
}

func (fakePodResources) List(context.Context, *podresources.ListPodResourcesRequest) (*podresources.ListPodResourcesResponse, error) {
	return &podresources.ListPodResourcesResponse{PodResources: []*podresources.PodResources{{
		Name: "gpu-load", Namespace: "aic-test",
		Containers: []*podresources.ContainerResources{{Name: "load", Devices: []*podresources.ContainerDevices{
			{ResourceName: "nvidia.com/gpu", DeviceIds: []string{inv.Devices[1].UUID + "::2"}},
		}}},
	}, {
		Name: "shared-0", Namespace: "aic-test",
		Containers: []*podresources.ContainerResources{{Name: "c", Devices: []*podresources.ContainerDevices{
			{ResourceName: "nvidia.com/gpu.shared", DeviceIds: []string{inv.Devices[0].UUID + "::1"}},
		}}},
	}}}, nil
}

func podResourcesSocket(t *testing.T) string {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "pr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "kubelet.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresources.RegisterPodResourcesListerServer(srv, fakePodResources{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

// Whole GPUs and renamed time-sliced replicas (nvidia.com/gpu.shared) are both attributed.
func TestPodAttributionOfSharedReplicas(t *testing.T) {
	dir := stateDir(t)
	sock := podResourcesSocket(t)
	page := scrape(t, "--state-dir", dir, "--pod-resources-socket", sock,
		"--resource", "nvidia.com/gpu,nvidia.com/gpu.shared")
	if !strings.Contains(page, `device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15",container="c",namespace="aic-test",pod="shared-0"} `) ||
		!strings.Contains(page, `device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15",container="load",namespace="aic-test",pod="gpu-load"} `) {
		t.Fatalf("\n%s", page)
	}
}

func TestPodAttribution(t *testing.T) {
	dir := stateDir(t)
	sockDir, err := os.MkdirTemp("", "pr")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "kubelet.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresources.RegisterPodResourcesListerServer(srv, fakePodResources{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	page := scrape(t, "--state-dir", dir, "--pod-resources-socket", sock)
	if !strings.Contains(page, `UUID="`+inv.Devices[1].UUID+`",pci_bus_id="00000000:00:05.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15",container="load",namespace="aic-test",pod="gpu-load"} `) ||
		!strings.Contains(page, `UUID="`+inv.Devices[0].UUID+`",pci_bus_id="00000000:00:04.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="aic-real-0",DCGM_FI_DRIVER_VERSION="550.54.15",container="",namespace="",pod=""} `) {
		t.Fatalf("\n%s", page)
	}
}

func TestBadInput(t *testing.T) {
	for _, args := range [][]string{{}, {"--state-dir"}, {"--state-dir", "/x", "more"}, {"--bogus"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	cfg, _ := parseFlags([]string{"--state-dir", t.TempDir()})
	rec := httptest.NewRecorder()
	newExporter(cfg).handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("no devices.json served %d", rec.Code)
	}
}
