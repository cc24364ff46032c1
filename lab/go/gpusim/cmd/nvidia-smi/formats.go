package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pytest-aiconformance/lab/gpusim/internal/sim"
)

// field is one --query-gpu property: canonical name (the CSV header), unit, value.
type field struct {
	name, unit string
	value      func(inv *sim.Inventory, n int, d gpu) string
}

var fields = []field{
	{"timestamp", "", func(*sim.Inventory, int, gpu) string { return time.Now().Format("2006/01/02 15:04:05.000") }},
	{"driver_version", "", func(inv *sim.Inventory, _ int, _ gpu) string { return inv.DriverVersion }},
	{"count", "", func(_ *sim.Inventory, n int, _ gpu) string { return fmt.Sprint(n) }},
	{"name", "", func(_ *sim.Inventory, _ int, d gpu) string { return d.Name }},
	{"serial", "", func(_ *sim.Inventory, _ int, d gpu) string { return serial(d) }},
	{"uuid", "", func(_ *sim.Inventory, _ int, d gpu) string { return d.UUID }},
	{"pci.bus_id", "", func(_ *sim.Inventory, _ int, d gpu) string { return d.PCIBusID }},
	{"index", "", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.pos) }},
	{"persistence_mode", "", func(*sim.Inventory, int, gpu) string { return "Enabled" }},
	{"pstate", "", func(_ *sim.Inventory, _ int, d gpu) string { return d.t.PState }},
	{"compute_mode", "", func(*sim.Inventory, int, gpu) string { return "Default" }},
	{"mig.mode.current", "", func(*sim.Inventory, int, gpu) string { return "Disabled" }},
	{"memory.total", "MiB", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.MemoryMiB) }},
	{"memory.reserved", "MiB", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.ReservedMiB) }},
	{"memory.used", "MiB", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.UsedMiB) }},
	{"memory.free", "MiB", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.FreeMiB(d.Device)) }},
	{"utilization.gpu", "%", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.UtilPercent) }},
	{"utilization.memory", "%", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.MemUtilPercent) }},
	{"temperature.gpu", "", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.TempC) }},
	{"power.draw", "W", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprintf("%.2f", d.t.PowerW) }},
	{"power.limit", "W", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprintf("%.2f", float64(d.t.PowerCapW)) }},
	{"clocks.sm", "MHz", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.SMClockMHz) }},
	{"clocks.mem", "MHz", func(_ *sim.Inventory, _ int, d gpu) string { return fmt.Sprint(d.t.MemClockMHz) }},
}

// aliases are the other spellings nvidia-smi --help-query-gpu lists for the same property.
var aliases = map[string]string{
	"gpu_name": "name", "gpu_serial": "serial", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
	"clocks.current.sm": "clocks.sm", "clocks.current.memory": "clocks.mem",
}

func lookupField(name string) (field, bool) {
	if canon, ok := aliases[name]; ok {
		name = canon
	}
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func queryGPU(w io.Writer, o options, inv *sim.Inventory, devs []gpu) int {
	header, units := true, true
	formats := strings.Split(o.format, ",")
	for _, f := range formats {
		switch strings.TrimSpace(f) {
		case "csv":
		case "noheader":
			header = false
		case "nounits":
			units = false
		default:
			fmt.Fprint(w, msgBadArgs)
			return exitBadArgs
		}
	}
	if strings.TrimSpace(formats[0]) != "csv" {
		fmt.Fprint(w, msgBadArgs)
		return exitBadArgs
	}
	var chosen []field
	for _, name := range strings.Split(o.queryGPU, ",") {
		name = strings.TrimSpace(name)
		f, ok := lookupField(name)
		if !ok {
			fmt.Fprintf(w, "Field \"%s\" is not a valid field to query.\n\n", name)
			return exitBadArgs
		}
		chosen = append(chosen, f)
	}
	if header {
		names := make([]string, len(chosen))
		for i, f := range chosen {
			names[i] = f.name
			if f.unit != "" {
				names[i] += " [" + f.unit + "]"
			}
		}
		fmt.Fprintln(w, strings.Join(names, ", "))
	}
	for _, d := range devs {
		vals := make([]string, len(chosen))
		for i, f := range chosen {
			vals[i] = f.value(inv, len(devs), d)
			if units && f.unit != "" {
				vals[i] += " " + f.unit
			}
		}
		fmt.Fprintln(w, strings.Join(vals, ", "))
	}
	return exitOK
}

// serial is a stable, made-up board serial (13 digits, as NVIDIA prints them).
func serial(d gpu) string {
	if d.Serial != "" {
		return d.Serial
	}
	var n uint64 = 1324
	for _, c := range d.UUID {
		n = n*31 + uint64(c)
	}
	return fmt.Sprintf("%013d", n%10000000000000)
}

const timeLayout = "Mon Jan _2 15:04:05 2006"

// writeTable prints the default view (the R550 layout, 89 columns).
func writeTable(w io.Writer, inv *sim.Inventory, devs []gpu, now time.Time) {
	line := "+-----------------------------------------------------------------------------------------+"
	sep := "+-----------------------------------------+------------------------+----------------------+"
	fmt.Fprintf(w, "%s       \n%s\n", now.Format(timeLayout), line)
	head := fmt.Sprintf(" NVIDIA-SMI %-22s Driver Version: %-15s CUDA Version: %-8s", inv.DriverVersion, inv.DriverVersion, inv.CUDAVersion)
	fmt.Fprintf(w, "|%-89s|\n", head)
	fmt.Fprintln(w, "|-----------------------------------------+------------------------+----------------------+")
	fmt.Fprintln(w, "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |")
	fmt.Fprintln(w, "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |")
	fmt.Fprintln(w, "|                                         |                        |               MIG M. |")
	fmt.Fprintln(w, "|=========================================+========================+======================|")
	for _, d := range devs {
		name := d.Name
		if len(name) > 28 {
			name = name[:28]
		}
		fmt.Fprintf(w, "| %3d  %-28s %4s  | %18s %3s | %20s |\n", d.pos, name, "On", d.PCIBusID, "Off", "0")
		power := fmt.Sprintf("%dW / %4dW", int(d.t.PowerW), d.t.PowerCapW)
		mem := fmt.Sprintf("%dMiB / %6dMiB", d.t.UsedMiB, d.MemoryMiB)
		fmt.Fprintf(w, "| N/A  %3dC    %-4s %21s | %22s | %6d%%      Default |\n", d.t.TempC, d.t.PState, power, mem, d.t.UtilPercent)
		fmt.Fprintf(w, "| %39s | %22s | %20s |\n", "", "", "Disabled")
		fmt.Fprintln(w, sep)
	}
	fmt.Fprintf(w, "%89s\n%s\n", "", line)
	fmt.Fprintf(w, "|%-89s|\n", " Processes:")
	fmt.Fprintf(w, "|%-89s|\n", "  GPU   GI   CI        PID   Type   Process name                              GPU Memory")
	fmt.Fprintf(w, "|%-89s|\n", "        ID   ID                                                               Usage")
	fmt.Fprintln(w, "|=========================================================================================|")
	fmt.Fprintf(w, "|%-89s|\n%s\n", "  No running processes found", line)
}

// writeQuery prints the -q report (a subset of its sections, same layout).
func writeQuery(w io.Writer, inv *sim.Inventory, devs []gpu, now time.Time) {
	fmt.Fprintf(w, "\n==============NVSMI LOG==============\n\n")
	fmt.Fprintf(w, "%-38s: %s\n", "Timestamp", now.Format(timeLayout))
	fmt.Fprintf(w, "%-38s: %s\n", "Driver Version", inv.DriverVersion)
	fmt.Fprintf(w, "%-38s: %s\n\n", "CUDA Version", inv.CUDAVersion)
	fmt.Fprintf(w, "%-38s: %d\n", "Attached GPUs", len(devs))
	for _, d := range devs {
		fmt.Fprintf(w, "GPU %s\n", d.PCIBusID)
		kv := func(indent int, k, v string) {
			fmt.Fprintf(w, "%s%-*s: %s\n", strings.Repeat(" ", indent), 38-indent, k, v)
		}
		kv(4, "Product Name", d.Name)
		kv(4, "Persistence Mode", "Enabled")
		kv(4, "Serial Number", serial(d))
		kv(4, "GPU UUID", d.UUID)
		kv(4, "Minor Number", fmt.Sprint(d.Minor))
		fmt.Fprintln(w, "    FB Memory Usage")
		kv(8, "Total", fmt.Sprintf("%d MiB", d.MemoryMiB))
		kv(8, "Reserved", fmt.Sprintf("%d MiB", d.t.ReservedMiB))
		kv(8, "Used", fmt.Sprintf("%d MiB", d.t.UsedMiB))
		kv(8, "Free", fmt.Sprintf("%d MiB", d.t.FreeMiB(d.Device)))
		fmt.Fprintln(w, "    Utilization")
		kv(8, "Gpu", fmt.Sprintf("%d %%", d.t.UtilPercent))
		kv(8, "Memory", fmt.Sprintf("%d %%", d.t.MemUtilPercent))
		fmt.Fprintln(w, "    Temperature")
		kv(8, "GPU Current Temp", fmt.Sprintf("%d C", d.t.TempC))
		fmt.Fprintln(w, "    GPU Power Readings")
		kv(8, "Power Draw", fmt.Sprintf("%.2f W", d.t.PowerW))
		kv(8, "Current Power Limit", fmt.Sprintf("%.2f W", float64(d.t.PowerCapW)))
		fmt.Fprintln(w)
	}
}

// writeXML prints -q -x (nvsmi_device_v12 element names, a subset).
func writeXML(w io.Writer, inv *sim.Inventory, devs []gpu, now time.Time) {
	esc := func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	}
	fmt.Fprintln(w, `<?xml version="1.0" ?>`)
	fmt.Fprintln(w, `<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">`)
	fmt.Fprintln(w, "<nvidia_smi_log>")
	fmt.Fprintf(w, "\t<timestamp>%s</timestamp>\n", now.Format(timeLayout))
	fmt.Fprintf(w, "\t<driver_version>%s</driver_version>\n", esc(inv.DriverVersion))
	fmt.Fprintf(w, "\t<cuda_version>%s</cuda_version>\n", esc(inv.CUDAVersion))
	fmt.Fprintf(w, "\t<attached_gpus>%d</attached_gpus>\n", len(devs))
	for _, d := range devs {
		fmt.Fprintf(w, "\t<gpu id=\"%s\">\n", esc(d.PCIBusID))
		fmt.Fprintf(w, "\t\t<product_name>%s</product_name>\n", esc(d.Name))
		fmt.Fprintln(w, "\t\t<persistence_mode>Enabled</persistence_mode>")
		fmt.Fprintln(w, "\t\t<mig_mode>\n\t\t\t<current_mig>Disabled</current_mig>\n\t\t\t<pending_mig>Disabled</pending_mig>\n\t\t</mig_mode>")
		fmt.Fprintf(w, "\t\t<serial>%s</serial>\n", serial(d))
		fmt.Fprintf(w, "\t\t<uuid>%s</uuid>\n", esc(d.UUID))
		fmt.Fprintf(w, "\t\t<minor_number>%d</minor_number>\n", d.Minor)
		fmt.Fprintf(w, "\t\t<pci>\n\t\t\t<pci_bus_id>%s</pci_bus_id>\n\t\t</pci>\n", esc(d.PCIBusID))
		fmt.Fprintf(w, "\t\t<performance_state>%s</performance_state>\n", d.t.PState)
		fmt.Fprintf(w, "\t\t<fb_memory_usage>\n\t\t\t<total>%d MiB</total>\n\t\t\t<reserved>%d MiB</reserved>\n\t\t\t<used>%d MiB</used>\n\t\t\t<free>%d MiB</free>\n\t\t</fb_memory_usage>\n",
			d.MemoryMiB, d.t.ReservedMiB, d.t.UsedMiB, d.t.FreeMiB(d.Device))
		fmt.Fprintf(w, "\t\t<utilization>\n\t\t\t<gpu_util>%d %%</gpu_util>\n\t\t\t<memory_util>%d %%</memory_util>\n\t\t</utilization>\n",
			d.t.UtilPercent, d.t.MemUtilPercent)
		fmt.Fprintf(w, "\t\t<temperature>\n\t\t\t<gpu_temp>%d C</gpu_temp>\n\t\t</temperature>\n", d.t.TempC)
		fmt.Fprintf(w, "\t\t<gpu_power_readings>\n\t\t\t<power_draw>%.2f W</power_draw>\n\t\t\t<current_power_limit>%.2f W</current_power_limit>\n\t\t</gpu_power_readings>\n",
			d.t.PowerW, float64(d.t.PowerCapW))
		fmt.Fprintln(w, "\t\t<processes>\n\t\t</processes>")
		fmt.Fprintln(w, "\t</gpu>")
	}
	fmt.Fprintln(w, "</nvidia_smi_log>")
}
