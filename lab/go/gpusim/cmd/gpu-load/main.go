// gpu-load stands in for the CUDA nbody sample the accelerator_metrics check runs as its load
// (accelerators.yaml: "/tmp/sample --benchmark --numbodies=1048576", repeated in a loop). It
// accepts nbody's flags and, for every device the container was given, keeps writing a "busy
// until" deadline into /run/aic-gpusim/util/<uuid>, which the simulated exporter and
// nvidia-smi turn into utilisation. It runs --seconds (ours; default 20 s) and exits 0.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// The container's view; tests point these elsewhere.
var (
	inventoryPath = sim.ContainerInventory
	devDir        = "/dev"
	utilDir       = sim.ContainerUtilDir
	tick          = time.Second
)

// busyMargin keeps a device busy across the gap between two runs of the check's loop.
const busyMargin = 3 * time.Second

const defaultSeconds = 20

type options struct {
	seconds    float64
	numBodies  int
	iterations int
}

// nbodyFlags are the sample's flags (nbody.cpp, showHelp): accepted, most without effect.
var nbodyFlags = map[string]bool{
	"benchmark": false, "fullscreen": false, "fp64": false, "hostmem": false, "compare": false,
	"qatest": false, "cpu": false, "help": false,
	"numdevices": true, "device": true, "numbodies": true, "i": true, "tipsy": true, "seconds": true,
}

func parseArgs(args []string) (options, error) {
	o := options{seconds: defaultSeconds, numBodies: 1048576, iterations: 10}
	for _, arg := range args {
		if !strings.HasPrefix(arg, "-") {
			return o, fmt.Errorf("unexpected argument %q", arg)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		takes, known := nbodyFlags[name]
		if !known {
			return o, fmt.Errorf("unknown flag %q", arg)
		}
		if takes != hasValue {
			return o, fmt.Errorf("flag %q: expected -%s%s", arg, name, map[bool]string{true: "=<value>", false: ""}[takes])
		}
		var err error
		switch name {
		case "seconds":
			o.seconds, err = strconv.ParseFloat(value, 64)
			if err == nil && (o.seconds <= 0 || o.seconds > 3600) {
				err = errors.New("out of range (0, 3600]")
			}
		case "numbodies":
			o.numBodies, err = strconv.Atoi(value)
			if err == nil && o.numBodies <= 0 {
				err = errors.New("must be positive")
			}
		case "i":
			o.iterations, err = strconv.Atoi(value)
			if err == nil && o.iterations <= 0 {
				err = errors.New("must be positive")
			}
		}
		if err != nil {
			return o, fmt.Errorf("flag %q: %v", arg, err)
		}
	}
	return o, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "gpu-load: %v\n", err)
		return 2
	}
	var devs []sim.Device
	if inv, err := sim.Load(inventoryPath); err == nil {
		for _, d := range inv.Devices {
			if _, err := os.Stat(filepath.Join(devDir, fmt.Sprintf("nvidia%d", d.Minor))); err == nil {
				devs = append(devs, d)
			}
		}
	}
	if len(devs) == 0 {
		// What nbody prints when CUDA finds no device.
		fmt.Fprintln(stdout, "Error: only 0 Devices available, 1 requested.  Exiting.")
		return 1
	}
	fmt.Fprintf(stdout, "gpu-load (aiconformance lab): simulated CUDA nbody on %d device(s)\n", len(devs))
	fmt.Fprintf(stdout, "> Compute 9.0 CUDA device: [%s]\n", devs[0].Name)
	fmt.Fprintf(stdout, "number of bodies = %d\n", o.numBodies)
	start := time.Now()
	end := start.Add(time.Duration(o.seconds * float64(time.Second)))
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		for _, d := range devs {
			if err := sim.WriteBusyUntil(utilDir, d.UUID, now.Add(busyMargin)); err != nil {
				fmt.Fprintf(stderr, "gpu-load: cannot record the load of %s: %v\n", d.UUID, err)
				return 1
			}
		}
		time.Sleep(min(tick, time.Until(end)))
	}
	ms := float64(time.Since(start).Milliseconds())
	interactions := float64(o.numBodies) * float64(o.numBodies) * float64(o.iterations) / (ms / 1000) / 1e9
	fmt.Fprintf(stdout, "%d bodies, total time for %d iterations: %.3f ms\n", o.numBodies, o.iterations, ms)
	fmt.Fprintf(stdout, "= %.3f billion interactions per second\n", interactions)
	fmt.Fprintf(stdout, "= %.3f single-precision GFLOP/s at 20 flops per interaction\n", interactions*20)
	return 0
}
