package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
)

func container(t *testing.T, minors ...string) {
	t.Helper()
	root := t.TempDir()
	old := [3]string{inventoryPath, devDir, utilDir}
	oldTick := tick
	t.Cleanup(func() { inventoryPath, devDir, utilDir, tick = old[0], old[1], old[2], oldTick })
	inventoryPath, devDir, utilDir = filepath.Join(root, "devices.json"), filepath.Join(root, "dev"), filepath.Join(root, "util")
	tick = 20 * time.Millisecond
	for _, d := range []string{devDir, utilDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(simtest.SampleInventory())
	if err := os.WriteFile(inventoryPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range minors {
		if err := os.WriteFile(filepath.Join(devDir, "nvidia"+m), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadMarksOnlyItsDevicesBusy(t *testing.T) {
	container(t, "1")
	inv := simtest.SampleInventory()
	var out, errOut bytes.Buffer
	// The check's command line, plus a short duration.
	rc := run([]string{"--benchmark", "--numbodies=1048576", "-seconds=0.2"}, &out, &errOut)
	if rc != 0 || !strings.Contains(out.String(), "single-precision GFLOP/s at 20 flops per interaction") {
		t.Fatalf("rc %d: %s %s", rc, out.String(), errOut.String())
	}
	now := time.Now()
	if !sim.Busy(utilDir, inv.Devices[1].UUID, now) {
		t.Fatal("the loaded device is not busy right after the load")
	}
	if sim.Busy(utilDir, inv.Devices[0].UUID, now) {
		t.Fatal("a device the container was not given became busy")
	}
	if sim.Busy(utilDir, inv.Devices[1].UUID, now.Add(busyMargin+time.Second)) {
		t.Fatal("the device stays busy after the deadline")
	}
}

func TestNoDevice(t *testing.T) {
	container(t)
	var out, errOut bytes.Buffer
	if rc := run([]string{"-benchmark"}, &out, &errOut); rc != 1 || !strings.Contains(out.String(), "0 Devices available") {
		t.Fatalf("rc %d: %q", rc, out.String())
	}
}

func TestArgs(t *testing.T) {
	o, err := parseArgs([]string{"--benchmark", "--numbodies=1048576"})
	if err != nil || o.seconds != defaultSeconds || o.numBodies != 1048576 {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range [][]string{{"--numbodies=x"}, {"--seconds=0"}, {"--frobnicate"}, {"--numbodies"}, {"--benchmark=1"}, {"stray"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
