// nvidia-smi (simulated) shows a container the GPUs the lab's device plugin gave it, in the
// output formats of the real tool that the suite's probes and parsers read: -L, --query-gpu
// with --format=csv[,noheader][,nounits], -q, -q -x and the plain table. It reads the
// allocation's inventory (mounted at /etc/aic-gpusim/devices.json) and lists only devices whose
// /dev/nvidia<minor> exists in the container; without an inventory it fails as the real tool
// does without a driver.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// Where the container's view lives; tests point these at temporary directories.
var (
	inventoryPath = sim.ContainerInventory
	devDir        = "/dev"
	utilDir       = sim.ContainerUtilDir
)

// Exit statuses of the real tool (nvidia-smi(1), RETURN VALUE).
const (
	exitOK        = 0
	exitBadArgs   = 2
	exitNoDevices = 6
	exitNoDriver  = 9
)

const (
	msgNoDriver = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. " +
		"Make sure that the latest NVIDIA driver is installed and running.\n"
	msgBadArgs   = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"
	msgNoDevices = "No devices were found\n"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now()))
}

type options struct {
	list, query, xml, help, version bool
	queryGPU, format, id            string
}

func parseArgs(args []string) (options, error) {
	var o options
	value := func(i *int, arg, name string) (string, error) {
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v, nil
		}
		if *i+1 >= len(args) {
			return "", errors.New("missing value")
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		var err error
		switch {
		case arg == "-L" || arg == "--list-gpus":
			o.list = true
		case arg == "-q" || arg == "--query":
			o.query = true
		case arg == "-x" || arg == "--xml-format":
			o.xml = true
		case arg == "-h" || arg == "--help":
			o.help = true
		case arg == "--version":
			o.version = true
		case arg == "--query-gpu" || strings.HasPrefix(arg, "--query-gpu="):
			o.queryGPU, err = value(&i, arg, "--query-gpu")
		case arg == "--format" || strings.HasPrefix(arg, "--format="):
			o.format, err = value(&i, arg, "--format")
		case arg == "-i" || arg == "--id" || strings.HasPrefix(arg, "--id="):
			o.id, err = value(&i, arg, "--id")
		default:
			err = fmt.Errorf("unknown argument %q", arg)
		}
		if err != nil {
			return o, err
		}
	}
	modes := 0
	for _, on := range []bool{o.list, o.query, o.queryGPU != "", o.version} {
		if on {
			modes++
		}
	}
	if modes > 1 || (o.xml && !o.query) || (o.queryGPU != "") != (o.format != "") {
		return o, errors.New("invalid combination")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer, now time.Time) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprint(stdout, msgBadArgs)
		return exitBadArgs
	}
	if o.help {
		fmt.Fprint(stdout, "NVIDIA System Management Interface -- simulated by the aiconformance lab\n\n"+
			"    -L, --list-gpus           Display a list of GPUs connected to the system.\n"+
			"    -q, --query               Display GPU or Unit info (-x for XML).\n"+
			"    -i, --id=                 Target a specific GPU (index or UUID).\n"+
			"    --query-gpu=              Information about GPU, with --format=csv[,noheader][,nounits].\n")
		return exitOK
	}
	inv, err := sim.Load(inventoryPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "aic-gpusim: %v\n", err)
		}
		fmt.Fprint(stdout, msgNoDriver)
		return exitNoDriver
	}
	if o.version {
		fmt.Fprintf(stdout, "NVIDIA-SMI version  : %s\nNVML version        : %s\nDRIVER version      : %s\nCUDA Version        : %s\n",
			inv.DriverVersion, nvmlVersion(inv.DriverVersion), inv.DriverVersion, inv.CUDAVersion)
		return exitOK
	}
	devs := visible(inv)
	if o.id != "" {
		devs = selectID(devs, o.id)
	}
	if len(devs) == 0 {
		fmt.Fprint(stdout, msgNoDevices)
		return exitNoDevices
	}
	now = now.Local()
	switch {
	case o.list:
		for _, d := range devs {
			fmt.Fprintf(stdout, "GPU %d: %s (UUID: %s)\n", d.pos, d.Name, d.UUID)
		}
	case o.queryGPU != "":
		return queryGPU(stdout, o, inv, devs)
	case o.query && o.xml:
		writeXML(stdout, inv, devs, now)
	case o.query:
		writeQuery(stdout, inv, devs, now)
	default:
		writeTable(stdout, inv, devs, now)
	}
	return exitOK
}

// gpu is a visible device with its position in this container's enumeration (NVML numbers
// the devices a container sees from 0) and its readings now.
type gpu struct {
	sim.Device
	pos int
	t   sim.Telemetry
}

func visible(inv *sim.Inventory) []gpu {
	devs := append([]sim.Device(nil), inv.Devices...)
	sort.Slice(devs, func(i, j int) bool { return devs[i].Index < devs[j].Index })
	var out []gpu
	now := time.Now()
	for _, d := range devs {
		if _, err := os.Stat(filepath.Join(devDir, fmt.Sprintf("nvidia%d", d.Minor))); err != nil {
			continue
		}
		out = append(out, gpu{Device: d, pos: len(out), t: sim.TelemetryFor(d, sim.Busy(utilDir, d.UUID, now))})
	}
	return out
}

func selectID(devs []gpu, id string) []gpu {
	for _, d := range devs {
		if fmt.Sprint(d.pos) == id || d.UUID == id || d.PCIBusID == id {
			return []gpu{d}
		}
	}
	return nil
}

// nvmlVersion is the NVML library version a driver ships: its first two components.
func nvmlVersion(driver string) string {
	parts := strings.Split(driver, ".")
	if len(parts) > 2 {
		parts = parts[:2]
	}
	return strings.Join(parts, ".")
}
