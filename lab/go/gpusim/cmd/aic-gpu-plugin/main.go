// aic-gpu-plugin is the lab's kubelet device plugin for simulated NVIDIA GPUs, run as a host
// process next to the real node's kubelet. It advertises the devices of <state-dir>/devices.json
// and, per allocation, hands a container what the NVIDIA stack would: the device files, the
// NVIDIA_VISIBLE_DEVICES variable and an nvidia-smi (simulated) that sees exactly those devices.
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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "aic-gpu-plugin: %v\n", err)
		os.Exit(2)
	}
	ps, err := newPlugins(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "aic-gpu-plugin: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.healthAddr != "" {
		lis, err := net.Listen("tcp", cfg.healthAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "aic-gpu-plugin: health address: %v\n", err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: healthHandler(ps)}
		go func() { _ = srv.Serve(lis) }()
		defer srv.Close()
	}
	errs := make(chan error, len(ps))
	for _, p := range ps {
		log.Printf("serving %s: %d device(s) as %d %s (mode %s) on %s", cfg.stateDir,
			len(p.inv.Devices), len(p.ids), p.resource, cfg.mode, p.socketPath())
		go func(p *plugin) { errs <- p.run(ctx) }(p)
	}
	for range ps {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "aic-gpu-plugin: %v\n", err)
			stop() // the other resource's socket goes too
			os.Exit(1)
		}
	}
}

type config struct {
	stateDir   string
	resource   string
	mode       string
	replicas   int
	healthAddr string
	smiPath    string
	// Time-slicing of a device subset renamed, as the GPU Operator's renameByDefault: these
	// device indices are advertised as replicas of sharedResource, the rest as resource.
	sharedResource string
	sharedDevices  []int
	// How a container learns its devices: direct (this plugin hands it device nodes, the
	// simulated nvidia-smi and its inventory), or, as the NVIDIA device plugin with the
	// NVIDIA Container Toolkit, only a device list the runtime (aic-nvidia-runtime) acts on:
	// envvar (NVIDIA_VISIBLE_DEVICES=<uuids>) or volume-mounts (/dev/null mounts).
	deviceList string
}

const (
	listDirect       = "direct"
	listEnvvar       = "envvar"
	listVolumeMounts = "volume-mounts"
)

const (
	modeIsolated    = "isolated"
	modeAllDevices  = "all-devices" // negative variant: isolation broken
	modeTimeSlicing = "time-slicing"
)

var resourceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("aic-gpu-plugin", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	fs.StringVar(&cfg.stateDir, "state-dir", "", "gpusim directory (devices.json, dev/, alloc/, util/)")
	fs.StringVar(&cfg.resource, "resource", "nvidia.com/gpu", "extended resource name")
	fs.StringVar(&cfg.mode, "mode", modeIsolated, "isolated | all-devices | time-slicing")
	fs.IntVar(&cfg.replicas, "replicas", 0, "time-slicing: schedulable replicas per device (>= 2)")
	fs.StringVar(&cfg.healthAddr, "health-addr", "", "host:port serving GET /healthz (200 once registered)")
	fs.StringVar(&cfg.smiPath, "nvidia-smi", "", "simulated nvidia-smi to mount (default: next to this binary)")
	fs.StringVar(&cfg.sharedResource, "shared-resource", "", "resource of the time-sliced replicas of --shared-devices (e.g. nvidia.com/gpu.shared)")
	fs.StringVar(&cfg.deviceList, "device-list-strategy", listDirect, "direct | envvar | volume-mounts")
	shared := fs.String("shared-devices", "", "comma-separated device indices time-sliced under --shared-resource")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *shared != "" {
		for _, f := range strings.Split(*shared, ",") {
			idx, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || idx < 0 {
				return cfg, fmt.Errorf("--shared-devices %q: not a list of device indices", *shared)
			}
			if slices.Contains(cfg.sharedDevices, idx) {
				return cfg, fmt.Errorf("--shared-devices %q: device %d twice", *shared, idx)
			}
			cfg.sharedDevices = append(cfg.sharedDevices, idx)
		}
	}
	if cfg.deviceList != listDirect && cfg.deviceList != listEnvvar && cfg.deviceList != listVolumeMounts {
		return cfg, fmt.Errorf("--device-list-strategy %q is not one of direct, envvar, volume-mounts", cfg.deviceList)
	}
	if (cfg.sharedResource == "") != (len(cfg.sharedDevices) == 0) {
		return cfg, errors.New("--shared-resource and --shared-devices go together")
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.stateDir == "" {
		return cfg, errors.New("--state-dir is required")
	}
	abs, err := filepath.Abs(cfg.stateDir)
	if err != nil {
		return cfg, err
	}
	cfg.stateDir = abs
	if !resourceRE.MatchString(cfg.resource) {
		return cfg, fmt.Errorf("--resource %q is not an extended resource name (domain/name)", cfg.resource)
	}
	if cfg.sharedResource != "" {
		if !resourceRE.MatchString(cfg.sharedResource) || cfg.sharedResource == cfg.resource {
			return cfg, fmt.Errorf("--shared-resource %q is not an extended resource name other than --resource", cfg.sharedResource)
		}
		if cfg.mode == modeTimeSlicing {
			return cfg, errors.New("--shared-resource time-slices a device subset: the rest stay whole (not with --mode time-slicing)")
		}
		if cfg.replicas < 2 {
			return cfg, errors.New("--shared-resource needs --replicas N with N >= 2")
		}
		return withSMIPath(cfg)
	}
	switch cfg.mode {
	case modeIsolated, modeAllDevices:
		if cfg.replicas > 1 {
			return cfg, fmt.Errorf("--replicas needs --mode %s", modeTimeSlicing)
		}
		cfg.replicas = 1
	case modeTimeSlicing:
		if cfg.replicas < 2 {
			return cfg, errors.New("--mode time-slicing needs --replicas N with N >= 2")
		}
	default:
		return cfg, fmt.Errorf("--mode %q is not one of isolated, all-devices, time-slicing", cfg.mode)
	}
	if cfg.replicas < 1 {
		return cfg, errors.New("--replicas must be positive")
	}
	return withSMIPath(cfg)
}

// withSMIPath defaults the simulated nvidia-smi to the one built next to this binary.
func withSMIPath(cfg config) (config, error) {
	if cfg.smiPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, err
		}
		cfg.smiPath = filepath.Join(filepath.Dir(exe), "nvidia-smi")
	}
	return cfg, nil
}
