package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// CDI (Container Device Interface) spec files the container runtime applies: one per
// prepared claim, named after the claim's UID so a CDI device name is never reused.
const (
	cdiVendor  = "aic-lab.local"
	cdiClass   = "gpu"
	cdiVersion = "0.6.0"
)

type cdiSpec struct {
	Version string      `json:"cdiVersion"`
	Kind    string      `json:"kind"`
	Devices []cdiDevice `json:"devices"`
}

type cdiDevice struct {
	Name  string   `json:"name"`
	Edits cdiEdits `json:"containerEdits"`
}

type cdiEdits struct {
	Env         []string        `json:"env,omitempty"`
	DeviceNodes []cdiDeviceNode `json:"deviceNodes,omitempty"`
	Mounts      []cdiMount      `json:"mounts,omitempty"`
}

type cdiDeviceNode struct {
	Path        string `json:"path"`
	HostPath    string `json:"hostPath,omitempty"`
	Type        string `json:"type,omitempty"`
	Major       int64  `json:"major,omitempty"`
	Minor       int64  `json:"minor,omitempty"`
	Permissions string `json:"permissions,omitempty"`
}

type cdiMount struct {
	HostPath      string   `json:"hostPath"`
	ContainerPath string   `json:"containerPath"`
	Options       []string `json:"options,omitempty"`
}

// allocated is one device of a claim: its DRA name and the simulated GPU behind it.
type allocated struct {
	request string
	name    string
	gpu     sim.Device
}

// claimSpec is the CDI spec of one claim: one CDI device per allocated device, each bringing
// its GPU's device node, nvidiactl, the simulated nvidia-smi, the inventory of the claim's
// GPUs and the load directory; envPrefix (the dra-example-driver's GPU_DEVICE_) names the
// devices in the container's environment, <prefix><n>=<device name>.
func claimSpec(claimUID string, devs []allocated, inv *sim.Inventory, stateDir, smi, alloc,
	envPrefix string) (cdiSpec, []string) {
	spec := cdiSpec{Version: cdiVersion, Kind: cdiVendor + "/" + cdiClass}
	var ids []string
	for i, d := range devs {
		name := claimUID + "-" + d.name
		edits := cdiEdits{
			DeviceNodes: []cdiDeviceNode{
				{Path: fmt.Sprintf("/dev/nvidia%d", d.gpu.Minor),
					HostPath: filepath.Join(stateDir, "dev", fmt.Sprintf("nvidia%d", d.gpu.Minor)),
					Type:     "c", Major: sim.NvidiaMajor, Minor: int64(d.gpu.Minor), Permissions: "rw"},
				{Path: "/dev/nvidiactl", HostPath: filepath.Join(stateDir, "dev", "nvidiactl"),
					Type: "c", Major: sim.NvidiaMajor, Minor: sim.NvidiactlMinor, Permissions: "rw"},
			},
			Mounts: []cdiMount{
				{HostPath: smi, ContainerPath: sim.ContainerSMI, Options: []string{"ro", "nosuid", "nodev", "bind"}},
				{HostPath: alloc, ContainerPath: sim.ContainerInventory, Options: []string{"ro", "nosuid", "nodev", "bind"}},
				{HostPath: filepath.Join(stateDir, "util"), ContainerPath: sim.ContainerUtilDir, Options: []string{"rw", "nosuid", "nodev", "bind"}},
			},
		}
		if envPrefix != "" {
			edits.Env = []string{fmt.Sprintf("%s%d=%s", envPrefix, i, d.name)}
		}
		spec.Devices = append(spec.Devices, cdiDevice{Name: name, Edits: edits})
		ids = append(ids, cdiVendor+"/"+cdiClass+"="+name)
	}
	return spec, ids
}

func specPath(cdiDir, claimUID string) string {
	return filepath.Join(cdiDir, cdiVendor+"-"+claimUID+".json")
}

// writeSpec writes the spec atomically (the runtime watches the directory).
func writeSpec(cdiDir, claimUID string, spec cdiSpec) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return sim.WriteAtomic(specPath(cdiDir, claimUID), data, 0o644)
}

func removeSpec(cdiDir, claimUID string) error {
	err := os.Remove(specPath(cdiDir, claimUID))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// gpuFor maps a published device name to its simulated GPU by the "index" attribute the lab
// gives every device of its simulated drivers (devices beyond the GPUs wrap around, as
// dra-example-driver's 8 devices on fewer simulated GPUs).
func gpuFor(index map[string]int, inv *sim.Inventory, name string) (sim.Device, error) {
	i, ok := index[name]
	if !ok {
		return sim.Device{}, fmt.Errorf("device %q is not one this plugin published", name)
	}
	if len(inv.Devices) == 0 {
		return sim.Device{}, fmt.Errorf("no simulated GPU")
	}
	return inv.Devices[i%len(inv.Devices)], nil
}

func sortedNames(devs []allocated) string {
	names := make([]string, 0, len(devs))
	for _, d := range devs {
		names = append(names, d.name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
