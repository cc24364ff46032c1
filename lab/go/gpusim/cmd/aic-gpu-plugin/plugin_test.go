package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// fakeKubelet is the kubelet's Registration service on <dir>/kubelet.sock.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	srv  *grpc.Server
	reqs chan *pluginapi.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.reqs <- r
	return &pluginapi.Empty{}, nil
}

func startKubelet(t *testing.T, dir string) *fakeKubelet {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(dir, "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKubelet{srv: grpc.NewServer(), reqs: make(chan *pluginapi.RegisterRequest, 4)}
	pluginapi.RegisterRegistrationServer(k.srv, k)
	go func() { _ = k.srv.Serve(lis) }()
	t.Cleanup(k.srv.Stop)
	return k
}

func (k *fakeKubelet) waitRegister(t *testing.T) *pluginapi.RegisterRequest {
	t.Helper()
	select {
	case r := <-k.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin did not register")
		return nil
	}
}

// setup writes a state dir and points the plugin at a temporary device-plugin directory.
func setup(t *testing.T, args ...string) *plugin {
	t.Helper()
	root := t.TempDir()
	state := filepath.Join(root, "gpusim")
	if err := simtest.WriteStateDir(state, simtest.SampleInventory()); err != nil {
		t.Fatal(err)
	}
	smi := filepath.Join(root, "nvidia-smi")
	if err := os.WriteFile(smi, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A short directory: unix socket paths are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "dp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	old, oldPoll := devicePluginDir, pollInterval
	devicePluginDir, pollInterval = sockDir, 20*time.Millisecond
	t.Cleanup(func() { devicePluginDir, pollInterval = old, oldPoll })

	cfg, err := parseFlags(append([]string{"--state-dir", state, "--nvidia-smi", smi}, args...))
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlugin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dial(t *testing.T, p *plugin) pluginapi.DevicePluginClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+p.socketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pluginapi.NewDevicePluginClient(conn)
}

func health(p *plugin) int {
	rec := httptest.NewRecorder()
	p.healthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code
}

func TestRegisterListAndWatchAllocate(t *testing.T) {
	p := setup(t)
	inv := simtest.SampleInventory()
	if health(p) != http.StatusServiceUnavailable {
		t.Fatal("healthy before registering")
	}
	kubelet := startKubelet(t, devicePluginDir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx) }()

	reg := kubelet.waitRegister(t)
	if reg.Version != "v1beta1" || reg.ResourceName != "nvidia.com/gpu" ||
		!strings.HasPrefix(reg.Endpoint, "aic-gpusim-") || strings.Contains(reg.Endpoint, "/") {
		t.Fatalf("register request %+v", reg)
	}
	deadline := time.Now().Add(5 * time.Second)
	for health(p) != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if health(p) != http.StatusOK {
		t.Fatal("not healthy after registering")
	}

	client := dial(t, p)
	stream, err := client.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 2 || list.Devices[0].ID != inv.Devices[0].UUID ||
		list.Devices[1].Health != pluginapi.Healthy {
		t.Fatalf("ListAndWatch %v", list.Devices)
	}

	resp, err := client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[1].UUID}},
		{DevicesIds: []string{inv.Devices[1].UUID, inv.Devices[0].UUID}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	one, both := resp.ContainerResponses[0], resp.ContainerResponses[1]
	if got := one.Envs["NVIDIA_VISIBLE_DEVICES"]; got != inv.Devices[1].UUID {
		t.Fatalf("NVIDIA_VISIBLE_DEVICES=%q", got)
	}
	if got := both.Envs["NVIDIA_VISIBLE_DEVICES"]; got != inv.Devices[0].UUID+","+inv.Devices[1].UUID {
		t.Fatalf("two devices not in index order: %q", got)
	}
	if len(one.Devices) != 2 || one.Devices[0].ContainerPath != "/dev/nvidia1" ||
		one.Devices[0].HostPath != filepath.Join(p.cfg.stateDir, "dev", "nvidia1") ||
		one.Devices[0].Permissions != "rw" || one.Devices[1].ContainerPath != "/dev/nvidiactl" {
		t.Fatalf("device specs %v", one.Devices)
	}
	mounts := map[string]*pluginapi.Mount{}
	for _, m := range one.Mounts {
		mounts[m.ContainerPath] = m
	}
	if m := mounts["/usr/bin/nvidia-smi"]; m == nil || !m.ReadOnly || m.HostPath != p.cfg.smiPath {
		t.Fatalf("nvidia-smi mount %v", m)
	}
	if m := mounts["/run/aic-gpusim/util"]; m == nil || m.ReadOnly {
		t.Fatalf("util mount %v", m)
	}
	m := mounts["/etc/aic-gpusim/devices.json"]
	if m == nil || !m.ReadOnly || !strings.HasPrefix(m.HostPath, filepath.Join(p.cfg.stateDir, "alloc")+"/") {
		t.Fatalf("inventory mount %v", m)
	}
	alloc, err := sim.Load(m.HostPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(alloc.Devices) != 1 || alloc.Devices[0].UUID != inv.Devices[1].UUID ||
		alloc.DriverVersion != "550.54.15" || alloc.CUDAVersion != "12.4" {
		t.Fatalf("allocation file %+v", alloc)
	}

	if _, err := client.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"GPU-nope"}}}}); err == nil {
		t.Fatal("an unknown device was allocated")
	}

	// A restarted kubelet wipes the directory and listens again: the plugin registers again.
	kubelet.srv.Stop()
	entries, _ := os.ReadDir(devicePluginDir)
	for _, e := range entries {
		os.Remove(filepath.Join(devicePluginDir, e.Name()))
	}
	kubelet2 := startKubelet(t, devicePluginDir)
	if again := kubelet2.waitRegister(t); again.Endpoint != reg.Endpoint {
		t.Fatalf("re-registered as %q", again.Endpoint)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p.socketPath()); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(p.socketPath()); err != nil {
		t.Fatalf("socket not recreated: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, err := os.Stat(p.socketPath()); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestTimeSlicingReplicasShareUUID(t *testing.T) {
	p := setup(t, "--mode", "time-slicing", "--replicas", "3")
	inv := simtest.SampleInventory()
	if len(p.ids) != 6 || p.ids[0] != inv.Devices[0].UUID+"::0" || p.ids[5] != inv.Devices[1].UUID+"::2" {
		t.Fatalf("ids %v", p.ids)
	}
	resp, err := p.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[0].UUID + "::1", inv.Devices[0].UUID + "::2"}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.ContainerResponses[0]
	if c.Envs["NVIDIA_VISIBLE_DEVICES"] != inv.Devices[0].UUID || len(c.Devices) != 2 {
		t.Fatalf("two replicas of one GPU: %v %v", c.Envs, c.Devices)
	}
}

func TestAllDevicesBreaksIsolation(t *testing.T) {
	p := setup(t, "--mode", "all-devices")
	inv := simtest.SampleInventory()
	resp, err := p.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[1].UUID}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.ContainerResponses[0]
	if c.Envs["NVIDIA_VISIBLE_DEVICES"] != inv.Devices[0].UUID+","+inv.Devices[1].UUID || len(c.Devices) != 3 {
		t.Fatalf("all-devices gave %v %v", c.Envs, c.Devices)
	}
}

func TestSocketNamePerStateDir(t *testing.T) {
	a := &plugin{cfg: config{stateDir: "/a/gpusim"}}
	b := &plugin{cfg: config{stateDir: "/b/gpusim"}}
	// The lab's Python side (gpusim.socket_name) computes the same name to clean up after us.
	if a.socketName() != "aic-gpusim-81b30614f2da.sock" || a.socketName() == b.socketName() {
		t.Fatalf("%s %s", a.socketName(), b.socketName())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--state-dir", "/x", "--mode", "shared"},
		{"--state-dir", "/x", "--mode", "time-slicing"},
		{"--state-dir", "/x", "--replicas", "4"},
		{"--state-dir", "/x", "--resource", "gpu"},
		{"--state-dir", "/x", "extra"},
		{"--nope"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error spans lines: %q", args, err)
		}
	}
	if _, err := newPlugin(config{stateDir: t.TempDir(), smiPath: "/bin/sh", replicas: 1}); err == nil {
		t.Error("a state dir without devices.json was accepted")
	}
}

// The GPU Operator's time-slicing of a device subset with renameByDefault: device 1's
// replicas as nvidia.com/gpu.shared on a second socket, device 0 whole as nvidia.com/gpu.
func TestSharedResourceBesideWholeGPUs(t *testing.T) {
	main := setup(t, "--shared-resource", "nvidia.com/gpu.shared", "--shared-devices", "1",
		"--replicas", "3")
	ps, err := newPlugins(main.cfg)
	if err != nil {
		t.Fatal(err)
	}
	inv := simtest.SampleInventory()
	whole, shared := ps[0], ps[1]
	if len(ps) != 2 || whole.resource != "nvidia.com/gpu" || len(whole.ids) != 1 ||
		whole.ids[0] != inv.Devices[0].UUID {
		t.Fatalf("whole GPUs: %s %v", whole.resource, whole.ids)
	}
	if shared.resource != "nvidia.com/gpu.shared" || len(shared.ids) != 3 ||
		shared.ids[2] != inv.Devices[1].UUID+"::2" {
		t.Fatalf("shared replicas: %s %v", shared.resource, shared.ids)
	}
	if whole.socketPath() == shared.socketPath() || !strings.HasSuffix(shared.socketName(), "-shared.sock") {
		t.Fatalf("sockets %s %s", whole.socketName(), shared.socketName())
	}
	kubelet := startKubelet(t, devicePluginDir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, p := range ps {
		go func(p *plugin) { _ = p.run(ctx) }(p)
	}
	got := map[string]string{}
	for range ps {
		r := kubelet.waitRegister(t)
		got[r.ResourceName] = r.Endpoint
	}
	if got["nvidia.com/gpu"] != whole.socketName() || got["nvidia.com/gpu.shared"] != shared.socketName() {
		t.Fatalf("registered %v", got)
	}
	rec := httptest.NewRecorder()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec = httptest.NewRecorder()
		healthHandler(ps).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code == http.StatusOK {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("health %d with both registered", rec.Code)
	}
	resp, err := shared.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[1].UUID + "::0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.ContainerResponses[0]
	if c.Envs["NVIDIA_VISIBLE_DEVICES"] != inv.Devices[1].UUID || c.Devices[0].ContainerPath != "/dev/nvidia1" {
		t.Fatalf("a shared replica gave %v %v", c.Envs, c.Devices)
	}
	if _, err := whole.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[1].UUID}}}}); err == nil {
		t.Fatal("the shared device was allocated as a whole GPU")
	}
}

func TestSharedFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--state-dir", "/x", "--shared-resource", "nvidia.com/gpu.shared", "--replicas", "4"},
		{"--state-dir", "/x", "--shared-devices", "1", "--replicas", "4"},
		{"--state-dir", "/x", "--shared-resource", "nvidia.com/gpu.shared", "--shared-devices", "1"},
		{"--state-dir", "/x", "--shared-resource", "nvidia.com/gpu", "--shared-devices", "1", "--replicas", "4"},
		{"--state-dir", "/x", "--shared-resource", "nvidia.com/gpu.shared", "--shared-devices", "1,1", "--replicas", "4"},
		{"--state-dir", "/x", "--shared-resource", "nvidia.com/gpu.shared", "--shared-devices", "x", "--replicas", "4"},
		{"--state-dir", "/x", "--mode", "time-slicing", "--shared-resource", "nvidia.com/gpu.shared", "--shared-devices", "1", "--replicas", "4"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	p := setup(t)
	for _, devs := range [][]int{{2}, {0, 1}} {
		cfg := p.cfg
		cfg.sharedResource, cfg.sharedDevices, cfg.replicas = "nvidia.com/gpu.shared", devs, 4
		if _, err := newPlugins(cfg); err == nil {
			t.Errorf("shared devices %v accepted", devs)
		}
	}
}

// With the NVIDIA Container Toolkit the plugin only hands out a device list; the runtime
// (aic-nvidia-runtime) injects the devices.
func TestDeviceListStrategies(t *testing.T) {
	inv := simtest.SampleInventory()
	req := &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{inv.Devices[1].UUID}}}}
	p := setup(t, "--device-list-strategy", "volume-mounts")
	resp, err := p.Allocate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := resp.ContainerResponses[0]
	if c.Envs["NVIDIA_VISIBLE_DEVICES"] != "/var/run/nvidia-container-devices" || len(c.Devices) != 0 ||
		len(c.Mounts) != 1 || c.Mounts[0].HostPath != "/dev/null" ||
		c.Mounts[0].ContainerPath != "/var/run/nvidia-container-devices/"+inv.Devices[1].UUID {
		t.Fatalf("volume-mounts gave %v %v %v", c.Envs, c.Devices, c.Mounts)
	}
	p = setup(t, "--device-list-strategy", "envvar")
	resp, err = p.Allocate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c = resp.ContainerResponses[0]
	if c.Envs["NVIDIA_VISIBLE_DEVICES"] != inv.Devices[1].UUID || len(c.Devices) != 0 || len(c.Mounts) != 0 {
		t.Fatalf("envvar gave %v %v %v", c.Envs, c.Devices, c.Mounts)
	}
	if _, err := parseFlags([]string{"--state-dir", "/x", "--device-list-strategy", "cdi"}); err == nil {
		t.Fatal("an unknown strategy was accepted")
	}
}
