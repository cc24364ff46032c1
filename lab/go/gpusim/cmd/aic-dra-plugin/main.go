// aic-dra-plugin is the lab's DRA kubelet plugin for the real node's simulated GPUs (the
// k8s.io/dynamic-resource-allocation kubeletplugin helper, as real DRA drivers use it). It
// publishes the node's ResourceSlice (devices written by the lab, the same shape as the
// simulated driver's slices of the kwok nodes), and for each claim the kubelet prepares it
// writes a CDI spec (one file per claim UID) that the container runtime applies: the GPU's
// device nodes, the simulated nvidia-smi with the inventory of exactly the claim's GPUs, and,
// for drivers that do so (dra-example-driver), GPU_DEVICE_<n>=<device> in the environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
)

type config struct {
	stateDir, driver, node, kubeconfig, devices, kubeletRoot, cdiDir, envPrefix string
	healthAddr, smi                                                             string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("aic-dra-plugin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.stateDir, "state-dir", "", "gpusim directory (devices.json, dev/, alloc/, util/)")
	fs.StringVar(&c.driver, "driver", "", "DRA driver name (e.g. gpu.example.com)")
	fs.StringVar(&c.node, "node", "", "this node's name")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig (the node's credentials)")
	fs.StringVar(&c.devices, "devices", "", "JSON list of resource.k8s.io/v1 Devices to publish")
	fs.StringVar(&c.kubeletRoot, "kubelet-root", "", "the kubelet's --root-dir (plugins/, plugins_registry/)")
	fs.StringVar(&c.cdiDir, "cdi-dir", "", "CDI spec directory the container runtime reads")
	fs.StringVar(&c.envPrefix, "env-prefix", "", "name devices in the environment, <prefix><n>=<device>")
	fs.StringVar(&c.healthAddr, "health-addr", "", "host:port serving GET /healthz (200 once registered)")
	fs.StringVar(&c.smi, "nvidia-smi", "", "simulated nvidia-smi (default: next to this binary)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for name, v := range map[string]string{"state-dir": c.stateDir, "driver": c.driver, "node": c.node,
		"kubeconfig": c.kubeconfig, "devices": c.devices, "kubelet-root": c.kubeletRoot, "cdi-dir": c.cdiDir} {
		if v == "" {
			return c, fmt.Errorf("--%s is required", name)
		}
	}
	if c.smi == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, err
		}
		c.smi = filepath.Join(filepath.Dir(exe), "nvidia-smi")
	}
	return c, nil
}

type driver struct {
	cfg    config
	inv    *sim.Inventory
	index  map[string]int // published device name -> index attribute
	cancel context.CancelFunc
	mu     sync.Mutex
}

func loadDevices(path string) ([]resourceapi.Device, map[string]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var devs []resourceapi.Device
	if err := json.Unmarshal(raw, &devs); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	index := map[string]int{}
	for i, d := range devs {
		n := i
		if a, ok := d.Attributes["index"]; ok && a.IntValue != nil {
			n = int(*a.IntValue)
		}
		index[d.Name] = n
	}
	return devs, index, nil
}

// PrepareResourceClaims writes each claim's CDI spec and names its CDI devices.
func (d *driver) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[types.UID]kubeletplugin.PrepareResult{}
	for _, claim := range claims {
		out[claim.UID] = d.prepare(claim)
	}
	return out, nil
}

func (d *driver) prepare(claim *resourceapi.ResourceClaim) kubeletplugin.PrepareResult {
	if claim.Status.Allocation == nil {
		return kubeletplugin.PrepareResult{Err: fmt.Errorf("claim %s/%s is not allocated", claim.Namespace, claim.Name)}
	}
	var devs []allocated
	var gpus []sim.Device
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != d.cfg.driver || r.Pool != d.cfg.node {
			continue
		}
		gpu, err := gpuFor(d.index, d.inv, r.Device)
		if err != nil {
			return kubeletplugin.PrepareResult{Err: err}
		}
		devs = append(devs, allocated{request: r.Request, name: r.Device, gpu: gpu})
		gpus = append(gpus, gpu)
	}
	alloc, err := sim.WriteAllocation(filepath.Join(d.cfg.stateDir, "alloc"), d.inv, gpus)
	if err != nil {
		return kubeletplugin.PrepareResult{Err: err}
	}
	spec, ids := claimSpec(string(claim.UID), devs, d.inv, d.cfg.stateDir, d.cfg.smi, alloc, d.cfg.envPrefix)
	if err := writeSpec(d.cfg.cdiDir, string(claim.UID), spec); err != nil {
		return kubeletplugin.PrepareResult{Err: err}
	}
	res := kubeletplugin.PrepareResult{}
	for i, dev := range devs {
		res.Devices = append(res.Devices, kubeletplugin.Device{Requests: []string{dev.request},
			PoolName: d.cfg.node, DeviceName: dev.name, CDIDeviceIDs: []string{ids[i]}})
	}
	log.Printf("prepared claim %s/%s (%s): %s", claim.Namespace, claim.Name, claim.UID, sortedNames(devs))
	return res
}

// UnprepareResourceClaims removes the claims' CDI specs (idempotent).
func (d *driver) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[types.UID]error{}
	for _, c := range claims {
		out[c.UID] = removeSpec(d.cfg.cdiDir, string(c.UID))
	}
	return out, nil
}

func (d *driver) HandleError(_ context.Context, err error, msg string) {
	log.Printf("%s: %v", msg, err)
	if !errors.Is(err, kubeletplugin.ErrRecoverable) {
		d.cancel()
	}
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "aic-dra-plugin: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "aic-dra-plugin: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	inv, err := sim.Load(filepath.Join(cfg.stateDir, "devices.json"))
	if err != nil {
		return err
	}
	devs, index, err := loadDevices(cfg.devices)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.cdiDir, 0o755); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &driver{cfg: cfg, inv: inv, index: index, cancel: cancel}
	// The kubelet makes both directories when it starts; the plugin may be first.
	dataDir := filepath.Join(cfg.kubeletRoot, "plugins", cfg.driver)
	registry := filepath.Join(cfg.kubeletRoot, "plugins_registry")
	for _, dir := range []string{dataDir, registry} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	helper, err := kubeletplugin.Start(ctx, d,
		kubeletplugin.KubeClient(client),
		kubeletplugin.NodeName(cfg.node),
		kubeletplugin.DriverName(cfg.driver),
		kubeletplugin.RegistrarDirectoryPath(registry),
		kubeletplugin.PluginDataDirectoryPath(dataDir),
	)
	if err != nil {
		return err
	}
	defer helper.Stop()
	if err := helper.PublishResources(ctx, resourceslice.DriverResources{
		Pools: map[string]resourceslice.Pool{cfg.node: {Slices: []resourceslice.Slice{{Devices: devs}}}},
	}); err != nil {
		return err
	}
	if cfg.healthAddr != "" {
		lis, err := net.Listen("tcp", cfg.healthAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if s := helper.RegistrationStatus(); s != nil && s.PluginRegistered {
				fmt.Fprintln(w, "ok")
				return
			}
			http.Error(w, "not registered with the kubelet", http.StatusServiceUnavailable)
		})
		srv := &http.Server{Handler: mux}
		go func() { _ = srv.Serve(lis) }()
		defer srv.Close()
	}
	log.Printf("driver %s on node %s: %d device(s) published, CDI specs in %s", cfg.driver, cfg.node, len(devs), cfg.cdiDir)
	<-ctx.Done()
	return ctx.Err()
}
