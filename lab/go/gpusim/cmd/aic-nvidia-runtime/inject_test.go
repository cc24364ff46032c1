package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
	"github.com/pytest-aiconformance/lab/gpusim/internal/simtest"
)

func TestSubcommandAndBundle(t *testing.T) {
	for _, c := range []struct {
		args        []string
		cmd, bundle string
	}{
		// As containerd's runc shim calls it (go-runc).
		{[]string{"--root", "/r", "--log", "/b/log.json", "--log-format", "json", "create",
			"--bundle", "/b", "--pid-file", "/b/init.pid", "abc"}, "create", "/b"},
		{[]string{"--systemd-cgroup", "create", "-b=/x", "id"}, "create", "/x"},
		{[]string{"--root=/r", "run", "--bundle=/y", "id"}, "run", "/y"},
		{[]string{"--root", "/r", "start", "abc"}, "start", "."},
		{[]string{"--version"}, "", ""},
	} {
		cmd, bundle := subcommand(c.args)
		if cmd != c.cmd || (c.cmd != "" && bundle != c.bundle) {
			t.Errorf("%v: %q %q", c.args, cmd, bundle)
		}
	}
}

// spec is a config.json as containerd writes it for an unprivileged container.
func spec(t *testing.T, env []string, mounts []map[string]any, caps []string) map[string]any {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"ociVersion": "1.2.0",
		"process":    map[string]any{"env": env, "capabilities": map[string]any{"bounding": caps}},
		"mounts":     mounts,
		"linux": map[string]any{
			"resources": map[string]any{"memory": map[string]any{"limit": int64(9223372036854771712)},
				"devices": []any{map[string]any{"allow": false, "access": "rwm"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setup(t *testing.T) config {
	t.Helper()
	dir := t.TempDir()
	if err := simtest.WriteStateDir(dir, simtest.SampleInventory()); err != nil {
		t.Fatal(err)
	}
	return config{Runc: "/usr/sbin/runc", StateDir: dir, SMI: "/opt/nvidia-smi",
		AcceptVolumeMounts: true}
}

func devMount(id string) map[string]any {
	return map[string]any{"destination": sim.DeviceListRoot + "/" + id, "type": "bind",
		"source": "/dev/null", "options": []string{"rbind", "ro"}}
}

func injected(t *testing.T, s map[string]any) (paths []string, mounts map[string]string) {
	t.Helper()
	linux := s["linux"].(map[string]any)
	for _, d := range list(linux, "devices") {
		paths = append(paths, d.(map[string]any)["path"].(string))
	}
	mounts = map[string]string{}
	for _, m := range list(s, "mounts") {
		mm := m.(map[string]any)
		mounts[mm["destination"].(string)] = mm["source"].(string)
	}
	return paths, mounts
}

func TestVolumeMountsInjectExactlyThoseDevices(t *testing.T) {
	cfg := setup(t)
	inv := simtest.SampleInventory()
	s := spec(t, []string{"PATH=/bin", "NVIDIA_VISIBLE_DEVICES=" + sim.DeviceListRoot},
		[]map[string]any{devMount(inv.Devices[1].UUID)}, []string{"CAP_CHOWN"})
	note, changed, err := edit(cfg, s)
	if err != nil || !changed {
		t.Fatalf("%v %v", changed, err)
	}
	if !strings.Contains(note, inv.Devices[1].UUID) || !strings.Contains(note, "volume mounts") {
		t.Fatalf("note %q", note)
	}
	paths, mounts := injected(t, s)
	if strings.Join(paths, " ") != "/dev/nvidia1 /dev/nvidiactl" {
		t.Fatalf("devices %v", paths)
	}
	if mounts[sim.ContainerSMI] != cfg.SMI || mounts[sim.ContainerUtilDir] != filepath.Join(cfg.StateDir, "util") {
		t.Fatalf("mounts %v", mounts)
	}
	alloc, err := sim.Load(mounts[sim.ContainerInventory])
	if err != nil || len(alloc.Devices) != 1 || alloc.Devices[0].UUID != inv.Devices[1].UUID {
		t.Fatalf("inventory %+v %v", alloc, err)
	}
	rules := list(s["linux"].(map[string]any)["resources"].(map[string]any), "devices")
	if len(rules) != 3 || rules[1].(map[string]any)["minor"] != 1 || rules[2].(map[string]any)["minor"] != sim.NvidiactlMinor {
		t.Fatalf("device cgroup rules %v", rules)
	}
	// Everything else survives exactly, large numbers included.
	out, _ := json.Marshal(s)
	if !strings.Contains(string(out), `"limit":9223372036854771712`) {
		t.Fatalf("memory limit changed: %s", out)
	}
}

func TestUnprivilegedEnvvarIsIgnoredUnlessPermissive(t *testing.T) {
	cfg := setup(t)
	s := spec(t, []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil, []string{"CAP_CHOWN"})
	note, changed, err := edit(cfg, s)
	if err != nil || changed || !strings.Contains(note, "NVIDIA_VISIBLE_DEVICES=all of an unprivileged container ignored") {
		t.Fatalf("%q %v %v", note, changed, err)
	}
	// The toolkit's permissive switch: the pod's own variable gets it every GPU.
	cfg.AcceptEnvvarUnprivileged = true
	note, changed, err = edit(cfg, s)
	if err != nil || !changed || !strings.Contains(note, "(from NVIDIA_VISIBLE_DEVICES=all of an unprivileged container)") {
		t.Fatalf("%q %v %v", note, changed, err)
	}
	if paths, _ := injected(t, s); strings.Join(paths, " ") != "/dev/nvidia0 /dev/nvidia1 /dev/nvidiactl" {
		t.Fatalf("devices %v", paths)
	}
}

func TestPrivilegedEnvvarAndIndices(t *testing.T) {
	cfg := setup(t)
	s := spec(t, []string{"NVIDIA_VISIBLE_DEVICES=0"}, nil, []string{"CAP_SYS_ADMIN"})
	if _, changed, err := edit(cfg, s); err != nil || !changed {
		t.Fatalf("%v %v", changed, err)
	}
	if paths, _ := injected(t, s); strings.Join(paths, " ") != "/dev/nvidia0 /dev/nvidiactl" {
		t.Fatalf("devices %v", paths)
	}
	for _, v := range []string{"none", "void", ""} {
		s := spec(t, []string{"NVIDIA_VISIBLE_DEVICES=" + v}, nil, []string{"CAP_SYS_ADMIN"})
		if _, changed, err := edit(cfg, s); err != nil || changed {
			t.Fatalf("%q: %v %v", v, changed, err)
		}
	}
	bad := spec(t, []string{"NVIDIA_VISIBLE_DEVICES=GPU-nope"}, nil, []string{"CAP_SYS_ADMIN"})
	if _, _, err := edit(cfg, bad); err == nil || !strings.Contains(err.Error(), "GPU-nope") {
		t.Fatalf("unknown device: %v", err)
	}
}

func TestForgedMountsNeedDevNull(t *testing.T) {
	cfg := setup(t)
	inv := simtest.SampleInventory()
	m := devMount(inv.Devices[0].UUID)
	m["source"] = "/tmp/anything"
	s := spec(t, nil, []map[string]any{m}, nil)
	if _, changed, err := edit(cfg, s); err != nil || changed {
		t.Fatalf("a mount not backed by /dev/null was taken: %v %v", changed, err)
	}
	// Volume mounts not accepted: the list is ignored.
	cfg.AcceptVolumeMounts = false
	s = spec(t, nil, []map[string]any{devMount(inv.Devices[0].UUID)}, nil)
	if _, changed, _ := edit(cfg, s); changed {
		t.Fatal("volume mounts taken though not accepted")
	}
}

func TestEditBundleRewritesConfig(t *testing.T) {
	cfg := setup(t)
	inv := simtest.SampleInventory()
	bundle := t.TempDir()
	raw, _ := json.Marshal(spec(t, nil, []map[string]any{devMount(inv.Devices[0].UUID)}, nil))
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := editBundle(cfg, bundle); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if !strings.Contains(string(after), `"/dev/nvidia0"`) {
		t.Fatalf("%s", after)
	}
	entries, _ := os.ReadDir(bundle)
	if len(entries) != 1 {
		t.Fatalf("left behind %v", entries)
	}
}
