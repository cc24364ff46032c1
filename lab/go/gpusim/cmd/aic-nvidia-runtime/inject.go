package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// runc's global options that take a value (runc --help); the others are booleans.
var valueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true,
	"--criu": true, "--rootless": true}

// subcommand is runc's command and, for create/run, the bundle directory (--bundle/-b,
// default the working directory).
func subcommand(args []string) (string, string) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		if valueFlags[a] {
			i++
		}
	}
	if i >= len(args) {
		return "", ""
	}
	cmd, rest := args[i], args[i+1:]
	bundle := "."
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--bundle" || a == "-b":
			if j+1 < len(rest) {
				bundle = rest[j+1]
				j++
			}
		case strings.HasPrefix(a, "--bundle="):
			bundle = strings.TrimPrefix(a, "--bundle=")
		case strings.HasPrefix(a, "-b="):
			bundle = strings.TrimPrefix(a, "-b=")
		}
	}
	return cmd, bundle
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// decodeSpec keeps every field of config.json as it was (numbers exactly: memory limits do
// not fit a float64), so only what is injected changes.
func decodeSpec(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var spec map[string]any
	if err := dec.Decode(&spec); err != nil {
		return nil, err
	}
	return spec, nil
}

func object(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}

func list(m map[string]any, key string) []any {
	v, _ := m[key].([]any)
	return v
}

// request is what a container asked for, and by which channel.
type request struct {
	ids    []string // device UUIDs or indices; nil with all
	all    bool
	source string
	denied string // a request that was ignored, and why
}

// requested reads the device list as the NVIDIA Container Runtime does: the device plugin's
// /dev/null mounts under sim.DeviceListRoot (when accepted), else NVIDIA_VISIBLE_DEVICES,
// which an unprivileged container may set only where the permissive switch is on.
func requested(cfg config, spec map[string]any) request {
	var fromMounts []string
	for _, m := range list(spec, "mounts") {
		mount, _ := m.(map[string]any)
		dst, _ := mount["destination"].(string)
		src, _ := mount["source"].(string)
		if rest, ok := strings.CutPrefix(path.Clean(dst), sim.DeviceListRoot+"/"); ok &&
			src == "/dev/null" && !strings.Contains(rest, "/") {
			fromMounts = append(fromMounts, rest)
		}
	}
	if cfg.AcceptVolumeMounts && len(fromMounts) > 0 {
		return parseList(strings.Join(fromMounts, ","), "volume mounts under "+sim.DeviceListRoot)
	}
	process := object(spec, "process")
	env, found := "", false
	for _, e := range list(process, "env") {
		s, _ := e.(string)
		if v, ok := strings.CutPrefix(s, sim.VisibleDevicesEnv+"="); ok {
			env, found = v, true
		}
	}
	if !found || env == sim.DeviceListRoot {
		return request{source: "nothing requested"}
	}
	who := "an unprivileged"
	if privileged(process) {
		who = "a privileged"
	} else if !cfg.AcceptEnvvarUnprivileged {
		return request{source: "nothing requested",
			denied: fmt.Sprintf("%s=%s of %s container ignored", sim.VisibleDevicesEnv, env, who)}
	}
	return parseList(env, fmt.Sprintf("%s=%s of %s container", sim.VisibleDevicesEnv, env, who))
}

func parseList(value, source string) request {
	switch strings.TrimSpace(value) {
	case "all":
		return request{all: true, source: source}
	case "", "none", "void":
		return request{source: source}
	}
	var ids []string
	for _, f := range strings.Split(value, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ids = append(ids, f)
		}
	}
	return request{ids: ids, source: source}
}

// privileged is the toolkit's test: CAP_SYS_ADMIN in the bounding set.
func privileged(process map[string]any) bool {
	caps, _ := process["capabilities"].(map[string]any)
	for _, c := range list(caps, "bounding") {
		if c == "CAP_SYS_ADMIN" {
			return true
		}
	}
	return false
}

// resolve maps the request to devices of the inventory, in index order; a name that matches
// no device is an error, as with the real runtime.
func resolve(inv *sim.Inventory, req request) ([]sim.Device, error) {
	if req.all {
		return append([]sim.Device(nil), inv.Devices...), nil
	}
	seen := map[int]bool{}
	for _, id := range req.ids {
		uuid, _, _ := strings.Cut(id, "::") // a time-sliced replica is its GPU
		found := -1
		for i, d := range inv.Devices {
			if d.UUID == uuid || strconv.Itoa(d.Index) == uuid {
				found = i
			}
		}
		if found < 0 {
			return nil, fmt.Errorf("unknown device %q in %s", id, req.source)
		}
		seen[found] = true
	}
	var devs []sim.Device
	for i, d := range inv.Devices {
		if seen[i] {
			devs = append(devs, d)
		}
	}
	return devs, nil
}

// edit injects the requested devices into spec; changed is false when nothing was asked.
func edit(cfg config, spec map[string]any) (note string, changed bool, err error) {
	req := requested(cfg, spec)
	if !req.all && len(req.ids) == 0 {
		return req.denied, false, nil
	}
	inv, err := sim.Load(path.Join(cfg.StateDir, "devices.json"))
	if err != nil {
		return "", false, err
	}
	devs, err := resolve(inv, req)
	if err != nil {
		return "", false, err
	}
	alloc, err := sim.WriteAllocation(path.Join(cfg.StateDir, "alloc"), inv, devs)
	if err != nil {
		return "", false, err
	}
	linux := object(spec, "linux")
	resources := object(linux, "resources")
	devices := list(linux, "devices")
	rules := list(resources, "devices")
	have := map[string]bool{}
	for _, d := range devices {
		if m, ok := d.(map[string]any); ok {
			p, _ := m["path"].(string)
			have[p] = true
		}
	}
	uuids := make([]string, 0, len(devs))
	nodes := map[string]int{"/dev/nvidiactl": sim.NvidiactlMinor}
	for _, d := range devs {
		nodes[fmt.Sprintf("/dev/nvidia%d", d.Minor)] = d.Minor
		uuids = append(uuids, d.UUID)
	}
	for _, p := range sortedKeys(nodes) {
		minor := nodes[p]
		if !have[p] {
			devices = append(devices, map[string]any{"path": p, "type": "c",
				"major": sim.NvidiaMajor, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0})
		}
		rules = append(rules, map[string]any{"allow": true, "type": "c",
			"major": sim.NvidiaMajor, "minor": minor, "access": "rwm"})
	}
	linux["devices"] = devices
	resources["devices"] = rules
	mounts := list(spec, "mounts")
	bind := func(dst, src string, ro bool) {
		opts := []any{"rbind", "rprivate", "nosuid", "nodev"}
		if ro {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, map[string]any{"destination": dst, "type": "bind",
			"source": src, "options": opts})
	}
	bind(sim.ContainerSMI, cfg.SMI, true)
	bind(sim.ContainerInventory, alloc, true)
	bind(sim.ContainerUtilDir, path.Join(cfg.StateDir, "util"), false)
	spec["mounts"] = mounts
	return fmt.Sprintf("injected %s (from %s)", strings.Join(uuids, ","), req.source), true, nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// nvidia0..N first, nvidiactl last: by minor.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && m[keys[j]] < m[keys[j-1]]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
