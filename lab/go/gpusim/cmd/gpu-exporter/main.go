// gpu-exporter serves DCGM-exporter-style metrics for the simulated GPUs of one node: the
// metric names, labels and HELP texts of NVIDIA/dcgm-exporter's default counters, one series
// per device of <state-dir>/devices.json. Utilisation is high while the device's load file
// (util/<uuid>, written by gpu-load) holds a future deadline. Like dcgm-exporter on
// Kubernetes, it can name the pod holding each device through the kubelet's pod-resources API.
// Negative variants: --no-device-labels, --frozen-util.
package main

import (
	"context"
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
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

const contentType = "text/plain; version=0.0.4; charset=utf-8"

type config struct {
	listen         string
	stateDir       string
	hostname       string
	noDeviceLabels bool
	frozenUtil     bool
	podResources   string
	resource       string
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("gpu-exporter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.listen, "listen", ":9400", "address serving /metrics")
	fs.StringVar(&cfg.stateDir, "state-dir", "", "gpusim directory (devices.json, util/)")
	fs.StringVar(&cfg.hostname, "hostname", "", "Hostname label (default $NODE_NAME, else the host name)")
	fs.BoolVar(&cfg.noDeviceLabels, "no-device-labels", false, "negative variant: omit gpu, UUID, device, pci_bus_id")
	fs.BoolVar(&cfg.frozenUtil, "frozen-util", false, "negative variant: readings never move under load")
	fs.StringVar(&cfg.podResources, "pod-resources-socket", "", "kubelet pod-resources socket for pod/namespace/container labels")
	fs.StringVar(&cfg.resource, "resource", "nvidia.com/gpu", "extended resource(s), comma-separated, whose pods are attributed (e.g. nvidia.com/gpu,nvidia.com/gpu.shared)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.stateDir == "" {
		return cfg, errors.New("--state-dir is required")
	}
	if cfg.hostname == "" {
		cfg.hostname = os.Getenv("NODE_NAME")
	}
	if cfg.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return cfg, err
		}
		cfg.hostname = h
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "gpu-exporter: %v\n", err)
		os.Exit(2)
	}
	if _, err := sim.Load(filepath.Join(cfg.stateDir, "devices.json")); err != nil {
		fmt.Fprintf(os.Stderr, "gpu-exporter: %v\n", err)
		os.Exit(1)
	}
	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gpu-exporter: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: newExporter(cfg).handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("serving /metrics on %s for %s", lis.Addr(), cfg.stateDir)
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "gpu-exporter: %v\n", err)
		os.Exit(1)
	}
}

type exporter struct {
	cfg    config
	mu     sync.Mutex
	last   time.Time
	energy map[string]float64 // mJ per UUID since the exporter started
}

func newExporter(cfg config) *exporter {
	return &exporter{cfg: cfg, energy: map[string]float64{}}
}

func (e *exporter) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", e.serveMetrics)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	return mux
}

// metric is one DCGM field as dcgm-exporter names and describes it.
type metric struct {
	name, kind, help string
	value            func(d sim.Device, t sim.Telemetry, energy float64) string
}

func itoa(v int) string { return fmt.Sprint(v) }

var metrics = []metric{
	{"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.SMClockMHz) }},
	{"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.MemClockMHz) }},
	{"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.TempC - 2) }},
	{"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.TempC) }},
	{"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return fmt.Sprintf("%f", t.PowerW) }},
	{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", func(_ sim.Device, _ sim.Telemetry, e float64) string { return fmt.Sprintf("%.0f", e) }},
	{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", func(sim.Device, sim.Telemetry, float64) string { return "0" }},
	{"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.UtilPercent) }},
	{"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.MemUtilPercent) }},
	{"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", func(sim.Device, sim.Telemetry, float64) string { return "0" }},
	{"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", func(sim.Device, sim.Telemetry, float64) string { return "0" }},
	{"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", func(sim.Device, sim.Telemetry, float64) string { return "0" }},
	{"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", func(d sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.FreeMiB(d)) }},
	{"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.UsedMiB) }},
	{"DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", func(_ sim.Device, t sim.Telemetry, _ float64) string { return itoa(t.ReservedMiB) }},
	{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", func(_ sim.Device, t sim.Telemetry, _ float64) string {
		return fmt.Sprintf("%f", float64(t.UtilPercent)/100)
	}},
}

// owner is the pod container a device is allocated to.
type owner struct{ pod, namespace, container string }

func (e *exporter) serveMetrics(w http.ResponseWriter, r *http.Request) {
	inv, err := sim.Load(filepath.Join(e.cfg.stateDir, "devices.json"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var owners map[string]owner
	if e.cfg.podResources != "" {
		owners, err = e.owners(r.Context())
		if err != nil {
			log.Printf("pod-resources: %v (series carry no pod)", err)
		}
	}
	now := time.Now()
	readings := make([]sim.Telemetry, len(inv.Devices))
	e.mu.Lock()
	elapsed := 0.0
	if !e.last.IsZero() {
		elapsed = now.Sub(e.last).Seconds()
	}
	e.last = now
	energy := make([]float64, len(inv.Devices))
	for i, d := range inv.Devices {
		busy := !e.cfg.frozenUtil && sim.Busy(filepath.Join(e.cfg.stateDir, "util"), d.UUID, now)
		readings[i] = sim.TelemetryFor(d, busy)
		e.energy[d.UUID] += readings[i].PowerW * elapsed * 1000
		energy[i] = e.energy[d.UUID]
	}
	e.mu.Unlock()

	labels := make([]string, len(inv.Devices))
	for i, d := range inv.Devices {
		labels[i] = e.labels(inv, d, owners)
	}
	var b strings.Builder
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for i, d := range inv.Devices {
			fmt.Fprintf(&b, "%s{%s} %s\n", m.name, labels[i], m.value(d, readings[i], energy[i]))
		}
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = io.WriteString(w, b.String())
}

func (e *exporter) labels(inv *sim.Inventory, d sim.Device, owners map[string]owner) string {
	var pairs [][2]string
	if !e.cfg.noDeviceLabels {
		pairs = append(pairs, [2]string{"gpu", fmt.Sprint(d.Index)}, [2]string{"UUID", d.UUID},
			[2]string{"pci_bus_id", d.PCIBusID}, [2]string{"device", fmt.Sprintf("nvidia%d", d.Minor)})
	}
	pairs = append(pairs, [2]string{"modelName", d.Name}, [2]string{"Hostname", e.cfg.hostname},
		[2]string{"DCGM_FI_DRIVER_VERSION", inv.DriverVersion})
	if e.cfg.podResources != "" {
		o := owners[d.UUID]
		pairs = append(pairs, [2]string{"container", o.container}, [2]string{"namespace", o.namespace},
			[2]string{"pod", o.pod})
	}
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p[0] + `="` + escape(p[1]) + `"`
	}
	return strings.Join(parts, ",")
}

func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// owners asks the kubelet which container holds each device of our resource. Time-sliced
// replicas (<uuid>::<n>) count for their GPU; with several holders the first by name wins.
func (e *exporter) owners(ctx context.Context) (map[string]owner, error) {
	conn, err := grpc.NewClient("unix://"+e.cfg.podResources, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := podresources.NewPodResourcesListerClient(conn).List(ctx, &podresources.ListPodResourcesRequest{})
	if err != nil {
		return nil, err
	}
	var found []struct {
		uuid string
		o    owner
	}
	for _, pod := range resp.PodResources {
		for _, c := range pod.Containers {
			for _, dev := range c.Devices {
				if !slices.Contains(strings.Split(e.cfg.resource, ","), dev.ResourceName) {
					continue
				}
				for _, id := range dev.DeviceIds {
					uuid, _, _ := strings.Cut(id, "::")
					found = append(found, struct {
						uuid string
						o    owner
					}{uuid, owner{pod.Name, pod.Namespace, c.Name}})
				}
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].o, found[j].o
		return a.namespace+"/"+a.pod+"/"+a.container < b.namespace+"/"+b.pod+"/"+b.container
	})
	out := map[string]owner{}
	for _, f := range found {
		if _, ok := out[f.uuid]; !ok {
			out[f.uuid] = f.o
		}
	}
	return out, nil
}
