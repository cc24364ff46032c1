package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// devicePluginDir is where the kubelet's registration socket lives and plugins put theirs.
// The kubelet fixes the path; only tests point it elsewhere.
var devicePluginDir = pluginapi.DevicePluginPath

// pollInterval is how often the plugin looks for a restarted kubelet.
var pollInterval = time.Second

// plugin serves one extended resource on its own socket. One process runs one or two: the
// GPU Operator's time-slicing with a device subset renamed (renameByDefault) advertises the
// replicas as <resource>.shared beside the whole GPUs left under <resource>.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	cfg        config
	inv        *sim.Inventory
	resource   string                // the extended resource this socket registers
	suffix     string                // socket name suffix ("" for the main resource)
	ids        []string              // advertised device IDs, in order
	byID       map[string]sim.Device // advertised ID -> physical device
	registered atomic.Bool
}

// newPlugin is the plugin of the main resource (--resource).
func newPlugin(cfg config) (*plugin, error) {
	ps, err := newPlugins(cfg)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// newPlugins is the main resource's plugin and, with --shared-resource, the time-sliced one.
func newPlugins(cfg config) ([]*plugin, error) {
	inv, err := sim.Load(filepath.Join(cfg.stateDir, "devices.json"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.smiPath); err != nil {
		return nil, fmt.Errorf("simulated nvidia-smi: %w", err)
	}
	for _, d := range inv.Devices {
		if _, err := os.Stat(devPath(cfg.stateDir, d.Minor)); err != nil {
			return nil, fmt.Errorf("device node of %s: %w", d.UUID, err)
		}
	}
	for _, sub := range []string{"alloc", "util"} {
		if err := os.MkdirAll(filepath.Join(cfg.stateDir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	// Pods of any uid write their load files here (a simulation: no isolation needed).
	if err := os.Chmod(filepath.Join(cfg.stateDir, "util"), 0o777); err != nil {
		return nil, err
	}
	shared := map[int]bool{}
	for _, idx := range cfg.sharedDevices {
		if idx < 0 || idx >= len(inv.Devices) {
			return nil, fmt.Errorf("--shared-devices: no device %d (the node has %d)", idx, len(inv.Devices))
		}
		shared[idx] = true
	}
	var whole, sliced []sim.Device
	for i, d := range inv.Devices {
		if shared[i] {
			sliced = append(sliced, d)
		} else {
			whole = append(whole, d)
		}
	}
	if len(whole) == 0 {
		return nil, errors.New("--shared-devices leaves no device for " + cfg.resource)
	}
	main := newResourcePlugin(cfg, inv, cfg.resource, "", whole, cfg.mode == modeTimeSlicing)
	if cfg.sharedResource == "" {
		return []*plugin{main}, nil
	}
	return []*plugin{main, newResourcePlugin(cfg, inv, cfg.sharedResource, "-shared", sliced, true)}, nil
}

func newResourcePlugin(cfg config, inv *sim.Inventory, resource, suffix string, devs []sim.Device,
	sliced bool) *plugin {
	p := &plugin{cfg: cfg, inv: inv, resource: resource, suffix: suffix, byID: map[string]sim.Device{}}
	replicas := 1
	if sliced {
		replicas = cfg.replicas
	}
	for _, d := range devs {
		for r := 0; r < replicas; r++ {
			id := d.UUID
			if sliced {
				// The NVIDIA device plugin's replica IDs: <uuid>::<replica>.
				id = fmt.Sprintf("%s::%d", d.UUID, r)
			}
			p.ids = append(p.ids, id)
			p.byID[id] = d
		}
	}
	return p
}

func devPath(stateDir string, minor int) string {
	return filepath.Join(stateDir, "dev", fmt.Sprintf("nvidia%d", minor))
}

// socketName is unique per state dir, so two labs' plugins never take each other's socket.
func (p *plugin) socketName() string {
	sum := sha256.Sum256([]byte(p.cfg.stateDir))
	return "aic-gpusim-" + hex.EncodeToString(sum[:])[:12] + p.suffix + ".sock"
}

func (p *plugin) socketPath() string { return filepath.Join(devicePluginDir, p.socketName()) }

func (p *plugin) healthHandler() http.Handler { return healthHandler([]*plugin{p}) }

// healthHandler answers 200 once every resource is registered with the kubelet.
func healthHandler(ps []*plugin) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		for _, p := range ps {
			if !p.registered.Load() {
				http.Error(w, p.resource+" not registered with the kubelet", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// fileID identifies one incarnation of a file: a restarted kubelet recreates its socket.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// run serves and registers until ctx ends, starting over whenever the kubelet restarts (it
// wipes the plugin directory at start, our socket included).
func (p *plugin) run(ctx context.Context) error {
	defer os.Remove(p.socketPath())
	for {
		if err := p.serveOnce(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Printf("kubelet restarted or our socket vanished: serving and registering again")
	}
}

func (p *plugin) serveOnce(ctx context.Context) error {
	sock := p.socketPath()
	if err := os.MkdirAll(devicePluginDir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	defer func() {
		p.registered.Store(false)
		srv.Stop()
		_ = os.Remove(sock)
	}()

	kubelet := filepath.Join(devicePluginDir, "kubelet.sock")
	var registeredTo fileID
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		if !p.registered.Load() {
			// The kubelet empties this directory when it starts: a plugin that started first
			// lost its socket and must listen again before registering.
			if _, mine := statID(sock); !mine {
				return nil
			}
			if id, ok := statID(kubelet); ok {
				if err := p.register(ctx, kubelet); err != nil {
					log.Printf("register with the kubelet: %v (retrying)", err)
				} else {
					registeredTo = id
					p.registered.Store(true)
					log.Printf("registered %s with the kubelet", p.resource)
				}
			}
		} else {
			id, ok := statID(kubelet)
			if _, mine := statID(sock); !ok || id != registeredTo || !mine {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (p *plugin) register(ctx context.Context, kubelet string) error {
	conn, err := grpc.NewClient("unix://"+kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(rctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     p.socketName(),
		ResourceName: p.resource,
		Options:      &pluginapi.DevicePluginOptions{},
	}, grpc.WaitForReady(true))
	return err
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list once: simulated devices never fail.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	devs := make([]*pluginapi.Device, 0, len(p.ids))
	for _, id := range p.ids {
		devs = append(devs, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, creq := range req.ContainerRequests {
		devs, err := p.resolve(creq.DevicesIds)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		cresp, err := p.containerResponse(devs)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cresp)
	}
	return resp, nil
}

// resolve maps requested IDs to physical devices, once each, in index order. In all-devices
// mode (the broken-isolation variant) every container gets every device.
func (p *plugin) resolve(ids []string) ([]sim.Device, error) {
	seen := map[string]bool{}
	var devs []sim.Device
	for _, id := range ids {
		d, ok := p.byID[id]
		if !ok {
			return nil, fmt.Errorf("unknown device %q", id)
		}
		if !seen[d.UUID] {
			seen[d.UUID] = true
			devs = append(devs, d)
		}
	}
	if p.cfg.mode == modeAllDevices {
		devs = append([]sim.Device(nil), p.inv.Devices...)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Index < devs[j].Index })
	return devs, nil
}

func (p *plugin) containerResponse(devs []sim.Device) (*pluginapi.ContainerAllocateResponse, error) {
	uuids := make([]string, 0, len(devs))
	for _, d := range devs {
		uuids = append(uuids, d.UUID)
	}
	switch p.cfg.deviceList {
	case listEnvvar:
		// The NVIDIA device plugin's envvar strategy: the runtime reads the variable.
		return &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{sim.VisibleDevicesEnv: strings.Join(uuids, ",")},
		}, nil
	case listVolumeMounts:
		// Its volume-mounts strategy: /dev/null at <root>/<uuid> per device, which a
		// container cannot forge through its environment.
		resp := &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{sim.VisibleDevicesEnv: sim.DeviceListRoot},
		}
		for _, u := range uuids {
			resp.Mounts = append(resp.Mounts, &pluginapi.Mount{
				ContainerPath: sim.DeviceListRoot + "/" + u, HostPath: "/dev/null", ReadOnly: true})
		}
		return resp, nil
	}
	allocFile, err := p.writeAllocation(devs)
	if err != nil {
		return nil, err
	}
	specs := make([]*pluginapi.DeviceSpec, 0, len(devs)+1)
	for _, d := range devs {
		specs = append(specs, &pluginapi.DeviceSpec{
			ContainerPath: fmt.Sprintf("/dev/nvidia%d", d.Minor),
			HostPath:      devPath(p.cfg.stateDir, d.Minor),
			Permissions:   "rw",
		})
	}
	specs = append(specs, &pluginapi.DeviceSpec{
		ContainerPath: "/dev/nvidiactl",
		HostPath:      filepath.Join(p.cfg.stateDir, "dev", "nvidiactl"),
		Permissions:   "rw",
	})
	return &pluginapi.ContainerAllocateResponse{
		Envs:    map[string]string{sim.VisibleDevicesEnv: strings.Join(uuids, ",")},
		Devices: specs,
		Mounts: []*pluginapi.Mount{
			{ContainerPath: sim.ContainerSMI, HostPath: p.cfg.smiPath, ReadOnly: true},
			{ContainerPath: sim.ContainerInventory, HostPath: allocFile, ReadOnly: true},
			{ContainerPath: sim.ContainerUtilDir, HostPath: filepath.Join(p.cfg.stateDir, "util")},
		},
	}, nil
}

// writeAllocation writes the inventory of exactly these devices under alloc/.
func (p *plugin) writeAllocation(devs []sim.Device) (string, error) {
	return sim.WriteAllocation(filepath.Join(p.cfg.stateDir, "alloc"), p.inv, devs)
}
