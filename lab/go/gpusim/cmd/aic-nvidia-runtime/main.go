// aic-nvidia-runtime is the lab's NVIDIA Container Runtime: an OCI runtime wrapper that
// containerd runs, as the BinaryName of its runc shim, for the CRI handler "nvidia" (the
// handler of RuntimeClass nvidia, and the lab's default handler, as the GPU Operator
// configures containerd). Like the NVIDIA Container Toolkit's runtime it changes nothing but
// the OCI spec of a container being created, then execs runc with the same arguments:
// on "create" it reads the bundle's config.json, finds the devices the container was given
// (the device plugin's /var/run/nvidia-container-devices/<id> mounts, or the
// NVIDIA_VISIBLE_DEVICES variable where accepted), and injects the simulated GPUs' device
// nodes, the simulated nvidia-smi and the driver inventory of exactly those devices.
//
// Its configuration (JSON, path in $AIC_NVIDIA_RUNTIME_CONFIG, written by the lab) mirrors
// the toolkit's config.toml switches: accept-nvidia-visible-devices-as-volume-mounts and
// accept-nvidia-visible-devices-envvar-when-unprivileged (the latter on is the negative
// variant: any pod that sets NVIDIA_VISIBLE_DEVICES=all itself gets every GPU).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ConfigEnv names the environment variable holding the configuration file's path.
const ConfigEnv = "AIC_NVIDIA_RUNTIME_CONFIG"

type config struct {
	Runc     string `json:"runc"`     // the low-level runtime exec'd after the edit
	StateDir string `json:"stateDir"` // gpusim dir: devices.json, dev/, alloc/, util/
	SMI      string `json:"nvidiaSmi"`
	// accept-nvidia-visible-devices-as-volume-mounts (device plugin DEVICE_LIST_STRATEGY
	// volume-mounts): the device list comes from /dev/null mounts under DeviceListRoot.
	AcceptVolumeMounts bool `json:"acceptVolumeMounts"`
	// accept-nvidia-visible-devices-envvar-when-unprivileged: honour NVIDIA_VISIBLE_DEVICES
	// of containers without CAP_SYS_ADMIN (the toolkit's permissive setting).
	AcceptEnvvarUnprivileged bool   `json:"acceptEnvvarUnprivileged"`
	Log                      string `json:"log,omitempty"` // one line per container edited
}

func loadConfig() (config, error) {
	var cfg config
	path := os.Getenv(ConfigEnv)
	if path == "" {
		return cfg, fmt.Errorf("$%s is not set", ConfigEnv)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	dec := json.NewDecoder(bytesReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Runc == "" || cfg.StateDir == "" || cfg.SMI == "" {
		return cfg, fmt.Errorf("%s: runc, stateDir and nvidiaSmi are required", path)
	}
	return cfg, nil
}

func main() {
	args := os.Args[1:]
	cfg, err := loadConfig()
	if err != nil {
		fail(err)
	}
	if cmd, bundle := subcommand(args); cmd == "create" || cmd == "run" {
		note, err := editBundle(cfg, bundle)
		if err != nil {
			fail(err)
		}
		if note != "" && cfg.Log != "" {
			logLine(cfg.Log, note)
		}
	}
	argv := append([]string{cfg.Runc}, args...)
	if err := syscall.Exec(cfg.Runc, argv, os.Environ()); err != nil {
		fail(fmt.Errorf("exec %s: %w", cfg.Runc, err))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "aic-nvidia-runtime: %v\n", err)
	os.Exit(1)
}

func logLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

// editBundle rewrites <bundle>/config.json with the container's devices injected; the note
// says what was done ("" when the container asked for nothing).
func editBundle(cfg config, bundle string) (string, error) {
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	spec, err := decodeSpec(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	note, changed, err := edit(cfg, spec)
	if err != nil || !changed {
		return note, err
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	tmp := path + ".aic-tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return note, nil
}
