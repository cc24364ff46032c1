// Package sim holds what the simulated-GPU binaries share: the inventory file (devices.json,
// written by the lab on the host, and per allocation by the device plugin), the load files
// ("busy until" deadlines) and the telemetry every tool derives from them, so nvidia-smi and
// the exporter always agree.
package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Paths inside a container that was allocated devices (the plugin mounts them there).
const (
	ContainerInventory = "/etc/aic-gpusim/devices.json"
	ContainerUtilDir   = "/run/aic-gpusim/util"
	ContainerSMI       = "/usr/bin/nvidia-smi"
)

// The NVIDIA stack's names: the variable listing a container's devices, the directory under
// which the device plugin's volume-mounts strategy lists them (/dev/null mounted at
// <root>/<id>), and the device nodes' char major and nvidiactl's minor.
const (
	VisibleDevicesEnv = "NVIDIA_VISIBLE_DEVICES"
	DeviceListRoot    = "/var/run/nvidia-container-devices"
	NvidiaMajor       = 195
	NvidiactlMinor    = 255
)

// Device is one simulated GPU.
type Device struct {
	Index     int    `json:"index"`
	Minor     int    `json:"minor"`
	UUID      string `json:"uuid"` // "GPU-<uuid>", as NVML reports it
	Name      string `json:"name"` // product name, e.g. "NVIDIA H100 80GB HBM3"
	MemoryMiB int    `json:"memoryMiB"`
	PCIBusID  string `json:"pciBusId"`
	Serial    string `json:"serial,omitempty"`
}

// Inventory is a devices.json: the node's GPUs (state dir) or one allocation's (alloc/).
type Inventory struct {
	Node          string   `json:"node"`
	DriverVersion string   `json:"driverVersion"`
	CUDAVersion   string   `json:"cudaVersion"`
	Devices       []Device `json:"devices"`
}

var uuidRE = regexp.MustCompile(`^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Validate rejects inventories the tools could not present faithfully.
func (inv *Inventory) Validate() error {
	if inv.DriverVersion == "" {
		return errors.New("driverVersion is empty")
	}
	seenUUID := map[string]bool{}
	seenMinor := map[int]bool{}
	for i, d := range inv.Devices {
		if !uuidRE.MatchString(d.UUID) {
			return fmt.Errorf("device %d: uuid %q is not GPU-<lowercase uuid>", i, d.UUID)
		}
		if d.Minor < 0 || d.Minor > 254 {
			return fmt.Errorf("device %d: minor %d outside 0-254", i, d.Minor)
		}
		if d.Name == "" || d.MemoryMiB <= 0 {
			return fmt.Errorf("device %d: name and memoryMiB are required", i)
		}
		if seenUUID[d.UUID] || seenMinor[d.Minor] {
			return fmt.Errorf("device %d: duplicate uuid or minor", i)
		}
		seenUUID[d.UUID], seenMinor[d.Minor] = true, true
	}
	return nil
}

// Load reads and validates an inventory file.
func Load(path string) (*Inventory, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var inv Inventory
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := inv.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &inv, nil
}

// WriteAtomic writes data to path through a temporary file and a rename, so a reader (or a
// container that has the file bind-mounted) never sees half a file.
func WriteAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Chmod after create: the umask must not make an inventory unreadable to non-root pods.
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteAllocation writes the inventory of exactly these devices to <allocDir>/<hash>.json and
// returns its path. The name hashes the UUIDs, so the same set reuses its file and the
// directory stays bounded.
func WriteAllocation(allocDir string, node *Inventory, devs []Device) (string, error) {
	inv := Inventory{Node: node.Node, DriverVersion: node.DriverVersion,
		CUDAVersion: node.CUDAVersion, Devices: devs}
	if inv.Devices == nil {
		inv.Devices = []Device{}
	}
	data, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return "", err
	}
	var key strings.Builder
	for _, d := range devs {
		key.WriteString(d.UUID + "\n")
	}
	sum := sha256.Sum256([]byte(key.String()))
	path := filepath.Join(allocDir, hex.EncodeToString(sum[:])[:16]+".json")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return path, nil
	}
	return path, WriteAtomic(path, data, 0o644)
}

// UtilPath is the load file of one device in a util directory.
func UtilPath(dir, uuid string) string { return filepath.Join(dir, uuid) }

// WriteBusyUntil records that the device is loaded until the deadline.
func WriteBusyUntil(dir, uuid string, deadline time.Time) error {
	return WriteAtomic(UtilPath(dir, uuid), []byte(strconv.FormatInt(deadline.Unix(), 10)+"\n"), 0o666)
}

// Busy reports whether the device's load file holds a deadline after now. A missing or
// unreadable file is idle: nothing ever loaded the device.
func Busy(dir, uuid string, now time.Time) bool {
	raw, err := os.ReadFile(UtilPath(dir, uuid))
	if err != nil {
		return false
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		return false
	}
	return now.Before(time.Unix(0, int64(secs*float64(time.Second))))
}

// Telemetry is what a device reports at one moment, idle or under load.
type Telemetry struct {
	UtilPercent    int
	MemUtilPercent int
	UsedMiB        int
	ReservedMiB    int
	TempC          int
	PowerW         float64
	PowerCapW      int
	SMClockMHz     int
	MemClockMHz    int
	PState         string
}

// TelemetryFor derives plausible readings from the device and whether it is loaded.
func TelemetryFor(d Device, busy bool) Telemetry {
	reserved := d.MemoryMiB / 128
	if busy {
		return Telemetry{UtilPercent: 100, MemUtilPercent: 38, UsedMiB: d.MemoryMiB / 8,
			ReservedMiB: reserved, TempC: 61, PowerW: 402.5, PowerCapW: 700,
			SMClockMHz: 1980, MemClockMHz: 2619, PState: "P0"}
	}
	return Telemetry{UtilPercent: 0, MemUtilPercent: 0, UsedMiB: 0, ReservedMiB: reserved,
		TempC: 32, PowerW: 71.3, PowerCapW: 700, SMClockMHz: 345, MemClockMHz: 2619,
		PState: "P0"}
}

// FreeMiB is the framebuffer not used nor reserved.
func (t Telemetry) FreeMiB(d Device) int { return d.MemoryMiB - t.UsedMiB - t.ReservedMiB }
