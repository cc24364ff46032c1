package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadValidates(t *testing.T) {
	dir := t.TempDir()
	good := `{"node":"n","driverVersion":"550.54.15","cudaVersion":"12.4","devices":[` +
		`{"index":0,"minor":0,"uuid":"GPU-0b8a5c3e-1d2f-5a6b-8c9d-0e1f2a3b4c5d","name":"G","memoryMiB":1,"pciBusId":"x"}]}`
	for name, text := range map[string]string{
		"good":     good,
		"badUUID":  strings.Replace(good, "GPU-0b8a", "GPU-0B8A", 1),
		"unknown":  strings.Replace(good, `"node"`, `"nodes"`, 1),
		"noDriver": strings.Replace(good, "550.54.15", "", 1),
		"dupMinor": strings.Replace(good, `]}`, `,{"index":1,"minor":0,"uuid":"GPU-1b8a5c3e-1d2f-5a6b-8c9d-0e1f2a3b4c5d","name":"G","memoryMiB":1,"pciBusId":"y"}]}`, 1),
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if (err == nil) != (name == "good") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBusy(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if Busy(dir, "GPU-x", now) {
		t.Fatal("a device never loaded is busy")
	}
	if err := WriteBusyUntil(dir, "GPU-x", now.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !Busy(dir, "GPU-x", now) || Busy(dir, "GPU-x", now.Add(6*time.Second)) {
		t.Fatal("deadline not honoured")
	}
	if fi, _ := os.Stat(UtilPath(dir, "GPU-x")); fi.Mode().Perm() != 0o666 {
		t.Fatalf("mode %v", fi.Mode())
	}
	os.WriteFile(UtilPath(dir, "GPU-y"), []byte("garbage"), 0o644)
	if Busy(dir, "GPU-y", now) {
		t.Fatal("garbage counts as busy")
	}
}
