// Package main is libnvidia-ml.so for the lab's simulated GPUs: NVML's C API, served from
// go-nvml's mock GPU models (pkg/nvml/mock), so that NVIDIA's own programs (device plugin,
// GPU Feature Discovery, Container Toolkit) run unchanged over them.
//
// The node's hardware travels inside the library file: the lab appends its devices.json and a
// trailer to the built library (see Embed), so the same bytes describe the same GPUs wherever
// the file is mounted, on the host or in a container, without a second file to inject.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// trailerMagic ends a library file that carries its hardware: JSON, its length (8 bytes,
// little endian), then these 8 bytes.
const trailerMagic = "AICNVML1"

// hwDevice is one GPU of devices.json (the lab's gpusim inventory).
type hwDevice struct {
	Index     int    `json:"index"`
	Minor     int    `json:"minor"`
	UUID      string `json:"uuid"`
	Name      string `json:"name"`
	MemoryMiB uint64 `json:"memoryMiB"`
	PCIBusID  string `json:"pciBusId"`
}

// hardware is devices.json plus where the host keeps the device nodes.
type hardware struct {
	DriverVersion string     `json:"driverVersion"`
	CUDAVersion   string     `json:"cudaVersion"`
	Devices       []hwDevice `json:"devices"`
	// DevRoot holds dev/nvidia<minor> on the host; where it does not exist (in a container)
	// the devices are those under /dev, as the runtime injected them.
	DevRoot string `json:"devRoot"`
}

// models are the mock's GPU configurations, by the product name NVML reports.
var models = []gpus.Config{
	gpus.A100_PCIE_40GB, gpus.A100_PCIE_80GB, gpus.A100_SXM4_40GB, gpus.A100_SXM4_80GB,
	gpus.A30_PCIE_24GB, gpus.H100_SXM5_80GB, gpus.H200_SXM5_141GB, gpus.B200_SXM5_180GB,
}

func model(name string) (gpus.Config, error) {
	for _, m := range models {
		if strings.TrimPrefix(m.Name, "Mock ") == name {
			m.Name = name
			return m, nil
		}
	}
	known := make([]string, len(models))
	for i, m := range models {
		known[i] = strings.TrimPrefix(m.Name, "Mock ")
	}
	return gpus.Config{}, fmt.Errorf("no mock GPU model named %q (known: %s)", name,
		strings.Join(known, ", "))
}

// Embed returns library bytes that carry hw: the library, the JSON and the trailer.
func Embed(library []byte, hw []byte) []byte {
	out := append([]byte{}, library...)
	out = append(out, hw...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(hw)))
	return append(out, trailerMagic...)
}

// readHardware reads the hardware a library file carries.
func readHardware(path string) (*hardware, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n := len(data)
	if n < 16 || string(data[n-8:]) != trailerMagic {
		return nil, fmt.Errorf("%s carries no simulated hardware", path)
	}
	size := binary.LittleEndian.Uint64(data[n-16 : n-8])
	if size > uint64(n-16) {
		return nil, fmt.Errorf("%s: hardware trailer is corrupt", path)
	}
	var hw hardware
	if err := json.Unmarshal(data[n-16-int(size):n-16], &hw); err != nil {
		return nil, fmt.Errorf("%s: hardware: %v", path, err)
	}
	if hw.DriverVersion == "" || len(hw.Devices) == 0 {
		return nil, errors.New("hardware: driverVersion and devices are required")
	}
	return &hw, nil
}

// cudaVersion turns "12.4" into NVML's 12040.
func cudaVersion(v string) (int, error) {
	parts := strings.Split(v, ".")
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, fmt.Errorf("CUDA version %q: %v", v, err)
	}
	minor := 0
	if len(parts) > 1 {
		if minor, err = strconv.Atoi(parts[1]); err != nil {
			return 0, fmt.Errorf("CUDA version %q: %v", v, err)
		}
	}
	return major*1000 + minor*10, nil
}

// isCharDevice tells whether path is a device node (a runtime injects them as such).
func isCharDevice(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// visible are the devices this process can open, as the driver would let it: on the host
// every one (DevRoot exists), in a container those whose /dev/nvidia<minor> was injected.
func (hw *hardware) visible() []hwDevice {
	devDir := "/dev"
	if hw.DevRoot != "" {
		if st, err := os.Stat(filepath.Join(hw.DevRoot, "dev")); err == nil && st.IsDir() {
			devDir = filepath.Join(hw.DevRoot, "dev")
		}
	}
	var out []hwDevice
	for _, d := range hw.Devices {
		if isCharDevice(filepath.Join(devDir, fmt.Sprintf("nvidia%d", d.Minor))) {
			out = append(out, d)
		}
	}
	return out
}

// newServer builds the mock server for the visible devices, with the node's identities.
func newServer(hw *hardware, devices []hwDevice) (*server.Server, error) {
	cuda, err := cudaVersion(hw.CUDAVersion)
	if err != nil {
		return nil, err
	}
	configs := make([]gpus.Config, len(devices))
	for i, d := range devices {
		if configs[i], err = model(d.Name); err != nil {
			return nil, err
		}
	}
	s := server.NewServerWithGPUs(hw.DriverVersion, "12."+hw.DriverVersion, cuda, configs...)
	for i, d := range devices {
		dev := s.Devices[i].(*server.Device)
		dev.UUID = d.UUID
		dev.PciBusID = d.PCIBusID
		dev.Minor = d.Minor
		dev.Index = i // NVML numbers the devices a process sees from 0
		if d.MemoryMiB > 0 {
			total := d.MemoryMiB << 20
			dev.MemoryInfo = nvml.Memory{Total: total, Free: total}
		}
	}
	return s, nil
}
