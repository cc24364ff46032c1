// Package simtest holds fixtures shared by the binaries' tests (never linked into them).
package simtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// SampleInventory is a two-GPU node for tests of all the binaries.
func SampleInventory() sim.Inventory {
	return sim.Inventory{
		Node: "aic-real-0", DriverVersion: "550.54.15", CUDAVersion: "12.4",
		Devices: []sim.Device{
			{Index: 0, Minor: 0, UUID: "GPU-0b8a5c3e-1d2f-5a6b-8c9d-0e1f2a3b4c5d",
				Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559, PCIBusID: "00000000:00:04.0"},
			{Index: 1, Minor: 1, UUID: "GPU-7f6e5d4c-3b2a-5918-8776-655443322110",
				Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559, PCIBusID: "00000000:00:05.0"},
		},
	}
}

// WriteStateDir lays out a gpusim directory as the lab's prepare() does, with plain files in
// place of the device nodes (tests run without root).
func WriteStateDir(dir string, inv sim.Inventory) error {
	for _, sub := range []string{"dev", "alloc", "util"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	names := []string{"nvidiactl"}
	for _, d := range inv.Devices {
		names = append(names, fmt.Sprintf("nvidia%d", d.Minor))
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, "dev", n), nil, 0o666); err != nil {
			return err
		}
	}
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "devices.json"), data, 0o644)
}
