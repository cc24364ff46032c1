package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
)

var inv = simtest.SampleInventory()

// container fakes a container's view: the allocation's inventory and the device nodes given.
func container(t *testing.T, minors ...int) {
	t.Helper()
	root := t.TempDir()
	old := [3]string{inventoryPath, devDir, utilDir}
	t.Cleanup(func() { inventoryPath, devDir, utilDir = old[0], old[1], old[2] })
	inventoryPath = filepath.Join(root, "devices.json")
	devDir = filepath.Join(root, "dev")
	utilDir = filepath.Join(root, "util")
	for _, d := range []string{devDir, utilDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(inv)
	if err := os.WriteFile(inventoryPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range minors {
		if err := os.WriteFile(filepath.Join(devDir, "nvidia"+string(rune('0'+m))), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func smi(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	rc := run(args, &out, &errOut, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return out.String(), rc
}

func TestNoDriver(t *testing.T) {
	container(t, 0)
	inventoryPath = filepath.Join(t.TempDir(), "absent.json")
	out, rc := smi(t, "-L")
	if rc != 9 || !strings.HasPrefix(out, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.") {
		t.Fatalf("rc %d: %q", rc, out)
	}
}

func TestListOnlyVisibleDevices(t *testing.T) {
	container(t, 1)
	out, rc := smi(t, "-L")
	// The recorded real line: "GPU 0: Tesla T4 (UUID: GPU-6cfb8bf0-b556-d216-90a4-0827b23b1348)".
	want := "GPU 0: NVIDIA H100 80GB HBM3 (UUID: " + inv.Devices[1].UUID + ")\n"
	if rc != 0 || out != want {
		t.Fatalf("rc %d: %q", rc, out)
	}
	// The profile's uuid_regex finds exactly that UUID.
	if got := regexp.MustCompile(`(GPU|MIG)-[0-9A-Za-z/-]+`).FindAllString(out, -1); len(got) != 1 || got[0] != inv.Devices[1].UUID {
		t.Fatalf("uuid_regex found %v", got)
	}
}

func TestNoDevicesVisible(t *testing.T) {
	container(t)
	out, rc := smi(t, "-L")
	if rc != 6 || out != "No devices were found\n" {
		t.Fatalf("rc %d: %q", rc, out)
	}
}

func TestQueryGPU(t *testing.T) {
	container(t, 0, 1)
	// The driver probe's version_args.
	out, rc := smi(t, "--query-gpu=driver_version", "--format=csv,noheader")
	if rc != 0 || out != "550.54.15\n550.54.15\n" {
		t.Fatalf("rc %d: %q", rc, out)
	}
	out, rc = smi(t, "--query-gpu=index,gpu_uuid,name,memory.total,utilization.gpu,temperature.gpu", "--format=csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if rc != 0 || len(lines) != 3 ||
		lines[0] != "index, uuid, name, memory.total [MiB], utilization.gpu [%], temperature.gpu" ||
		lines[1] != "0, "+inv.Devices[0].UUID+", NVIDIA H100 80GB HBM3, 81559 MiB, 0 %, 32" {
		t.Fatalf("rc %d: %q", rc, out)
	}
	if err := sim.WriteBusyUntil(utilDir, inv.Devices[1].UUID, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	out, _ = smi(t, "--query-gpu", "utilization.gpu,memory.used", "--format=csv,noheader,nounits")
	if out != "0, 0\n100, 10194\n" {
		t.Fatalf("under load: %q", out)
	}
	out, _ = smi(t, "-i", "1", "--query-gpu=uuid", "--format=csv,noheader")
	if out != inv.Devices[1].UUID+"\n" {
		t.Fatalf("-i 1: %q", out)
	}
}

func TestBadArguments(t *testing.T) {
	container(t, 0)
	for _, args := range [][]string{
		{"--bogus"}, {"--query-gpu=uuid"}, {"-x"}, {"-L", "-q"},
		{"--query-gpu=uuid", "--format=json"}, {"--query-gpu=uuid", "--format=noheader"},
	} {
		if out, rc := smi(t, args...); rc != 2 || !strings.HasPrefix(out, "Invalid combination of input arguments") {
			t.Errorf("%v: rc %d %q", args, rc, out)
		}
	}
	if out, rc := smi(t, "--query-gpu=uuid,wattage", "--format=csv"); rc != 2 || !strings.Contains(out, `Field "wattage" is not a valid field to query.`) {
		t.Errorf("rc %d %q", rc, out)
	}
}

func TestPlainTable(t *testing.T) {
	container(t, 0)
	out, rc := smi(t)
	t.Log("\n" + out)
	if rc != 0 || !regexp.MustCompile(`Driver Version: 550\.54\.15 +CUDA Version: 12\.4`).MatchString(out) {
		t.Fatalf("rc %d:\n%s", rc, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if (strings.HasPrefix(line, "|") || strings.HasPrefix(line, "+")) && len(line) != 91 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
	if !strings.Contains(out, "NVIDIA H100 80GB HBM3") || !strings.Contains(out, "0MiB /  81559MiB") {
		t.Fatalf("\n%s", out)
	}
}

func TestQueryXML(t *testing.T) {
	container(t, 1)
	out, rc := smi(t, "-q", "-x")
	var log struct {
		Driver string `xml:"driver_version"`
		CUDA   string `xml:"cuda_version"`
		GPUs   []struct {
			UUID  string `xml:"uuid"`
			Minor int    `xml:"minor_number"`
		} `xml:"gpu"`
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = false // the DOCTYPE names an external DTD
	if err := dec.Decode(&log); err != nil || rc != 0 {
		t.Fatalf("rc %d, %v:\n%s", rc, err, out)
	}
	if log.Driver != "550.54.15" || log.CUDA != "12.4" || len(log.GPUs) != 1 ||
		log.GPUs[0].UUID != inv.Devices[1].UUID || log.GPUs[0].Minor != 1 {
		t.Fatalf("%+v", log)
	}
	out, _ = smi(t, "-q")
	if !strings.Contains(out, "Driver Version                        : 550.54.15") ||
		!strings.Contains(out, "GPU UUID                          : "+inv.Devices[1].UUID) {
		t.Fatalf("\n%s", out)
	}
}
