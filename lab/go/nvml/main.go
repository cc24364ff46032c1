package main

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// The library's own file, where its hardware is (Embed).
static const char *aic_self_path(void) {
	Dl_info info;
	if (dladdr((void *)aic_self_path, &info) && info.dli_fname) {
		return info.dli_fname;
	}
	return NULL;
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// The state an initialised library holds; NVML counts nvmlInit/nvmlShutdown pairs.
var state struct {
	sync.Mutex
	refs   int
	server *server.Server
}

// The events NVIDIA's device plugin watches for health; none ever fires here.
const supportedEvents = uint64(nvml.EventTypeXidCriticalError | nvml.EventTypeSingleBitEccError |
	nvml.EventTypeDoubleBitEccError)

func main() {}

// guard turns a panic (a mock method the model does not implement) into NOT_SUPPORTED, as
// a driver answers for a feature a GPU lacks, instead of killing the calling program.
func guard(ret *C.int) {
	if recover() != nil {
		*ret = C.int(nvml.ERROR_NOT_SUPPORTED)
	}
}

func code(r nvml.Return) C.int { return C.int(r) }

func current() *server.Server {
	state.Lock()
	defer state.Unlock()
	return state.server
}

func initialise() C.int {
	state.Lock()
	defer state.Unlock()
	if state.refs > 0 {
		state.refs++
		return code(nvml.SUCCESS)
	}
	self := C.aic_self_path()
	if self == nil {
		return code(nvml.ERROR_DRIVER_NOT_LOADED)
	}
	hw, err := readHardware(C.GoString(self))
	if err == nil {
		state.server, err = newServer(hw, hw.visible())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "libnvidia-ml (aic lab): %v\n", err)
		return code(nvml.ERROR_DRIVER_NOT_LOADED)
	}
	state.refs = 1
	return code(nvml.SUCCESS)
}

//export nvmlInit
func nvmlInit() C.int { return initialise() }

//export nvmlInit_v2
func nvmlInit_v2() C.int { return initialise() }

//export nvmlInitWithFlags
func nvmlInitWithFlags(flags C.uint) C.int { return initialise() }

//export nvmlShutdown
func nvmlShutdown() C.int {
	state.Lock()
	defer state.Unlock()
	if state.refs == 0 {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	state.refs--
	if state.refs == 0 {
		state.server = nil
	}
	return code(nvml.SUCCESS)
}

var errorStrings sync.Map // code -> *C.char, allocated once and never freed (as NVML's)

//export nvmlErrorString
func nvmlErrorString(r C.int) *C.char {
	if s, ok := errorStrings.Load(int(r)); ok {
		return s.(*C.char)
	}
	s, _ := errorStrings.LoadOrStore(int(r), C.CString(errorText(nvml.Return(r))))
	return s.(*C.char)
}

// errorText is NVML's wording of its return codes.
func errorText(r nvml.Return) string {
	switch r {
	case nvml.SUCCESS:
		return "Success"
	case nvml.ERROR_UNINITIALIZED:
		return "Uninitialized"
	case nvml.ERROR_INVALID_ARGUMENT:
		return "Invalid Argument"
	case nvml.ERROR_NOT_SUPPORTED:
		return "Not Supported"
	case nvml.ERROR_NO_PERMISSION:
		return "Insufficient Permissions"
	case nvml.ERROR_NOT_FOUND:
		return "Not Found"
	case nvml.ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "Driver Not Loaded"
	case nvml.ERROR_TIMEOUT:
		return "Timeout"
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVML Shared Library Not Found"
	case nvml.ERROR_FUNCTION_NOT_FOUND:
		return "Function Not Found"
	default:
		return "Unknown Error"
	}
}

// putString copies s into a C buffer of the given length, NUL-terminated.
func putString(buf *C.char, length C.uint, s string) C.int {
	if buf == nil {
		return code(nvml.ERROR_INVALID_ARGUMENT)
	}
	if uint(len(s))+1 > uint(length) {
		return code(nvml.ERROR_INSUFFICIENT_SIZE)
	}
	out := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(length))
	copy(out, s)
	out[len(s)] = 0
	return code(nvml.SUCCESS)
}

// Device handles are small numbers (index + 1), never dereferenced by callers.
func handle(index int) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(nil), index+1) }

func device(h unsafe.Pointer) (*server.Device, nvml.Return) {
	s := current()
	if s == nil {
		return nil, nvml.ERROR_UNINITIALIZED
	}
	i := int(uintptr(h)) - 1
	if i < 0 || i >= len(s.Devices) {
		return nil, nvml.ERROR_INVALID_ARGUMENT
	}
	return s.Devices[i].(*server.Device), nvml.SUCCESS
}

// --- system -----------------------------------------------------------------------------

//export nvmlSystemGetDriverVersion
func nvmlSystemGetDriverVersion(buf *C.char, length C.uint) (ret C.int) {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	return putString(buf, length, s.DriverVersion)
}

//export nvmlSystemGetNVMLVersion
func nvmlSystemGetNVMLVersion(buf *C.char, length C.uint) C.int {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	return putString(buf, length, s.NvmlVersion)
}

func cudaDriverVersion(out *C.int) C.int {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	*out = C.int(s.CudaDriverVersion)
	return code(nvml.SUCCESS)
}

//export nvmlSystemGetCudaDriverVersion
func nvmlSystemGetCudaDriverVersion(out *C.int) C.int { return cudaDriverVersion(out) }

//export nvmlSystemGetCudaDriverVersion_v2
func nvmlSystemGetCudaDriverVersion_v2(out *C.int) C.int { return cudaDriverVersion(out) }

// --- enumeration --------------------------------------------------------------------------

func deviceCount(out *C.uint) C.int {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	*out = C.uint(len(s.Devices))
	return code(nvml.SUCCESS)
}

//export nvmlDeviceGetCount
func nvmlDeviceGetCount(out *C.uint) C.int { return deviceCount(out) }

//export nvmlDeviceGetCount_v2
func nvmlDeviceGetCount_v2(out *C.uint) C.int { return deviceCount(out) }

func byIndex(index C.uint, out *unsafe.Pointer) C.int {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	if int(index) >= len(s.Devices) {
		return code(nvml.ERROR_INVALID_ARGUMENT)
	}
	*out = handle(int(index))
	return code(nvml.SUCCESS)
}

//export nvmlDeviceGetHandleByIndex
func nvmlDeviceGetHandleByIndex(index C.uint, out *unsafe.Pointer) C.int {
	return byIndex(index, out)
}

//export nvmlDeviceGetHandleByIndex_v2
func nvmlDeviceGetHandleByIndex_v2(index C.uint, out *unsafe.Pointer) C.int {
	return byIndex(index, out)
}

// byField finds the device whose field (UUID or PCI bus id) equals want.
func byField(want string, field func(*server.Device) string, out *unsafe.Pointer) C.int {
	s := current()
	if s == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	for i, d := range s.Devices {
		if field(d.(*server.Device)) == want {
			*out = handle(i)
			return code(nvml.SUCCESS)
		}
	}
	return code(nvml.ERROR_NOT_FOUND)
}

//export nvmlDeviceGetHandleByUUID
func nvmlDeviceGetHandleByUUID(uuid *C.char, out *unsafe.Pointer) C.int {
	return byField(C.GoString(uuid), func(d *server.Device) string { return d.UUID }, out)
}

func byBusID(busID *C.char, out *unsafe.Pointer) C.int {
	return byField(normalBusID(C.GoString(busID)),
		func(d *server.Device) string { return normalBusID(d.PciBusID) }, out)
}

//export nvmlDeviceGetHandleByPciBusId
func nvmlDeviceGetHandleByPciBusId(busID *C.char, out *unsafe.Pointer) C.int {
	return byBusID(busID, out)
}

//export nvmlDeviceGetHandleByPciBusId_v2
func nvmlDeviceGetHandleByPciBusId_v2(busID *C.char, out *unsafe.Pointer) C.int {
	return byBusID(busID, out)
}

// --- device properties --------------------------------------------------------------------

// deviceString answers a string property of a device.
func deviceString(h unsafe.Pointer, buf *C.char, length C.uint,
	get func(*server.Device) (string, nvml.Return)) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	s, r := get(d)
	if r != nvml.SUCCESS {
		return code(r)
	}
	return putString(buf, length, s)
}

//export nvmlDeviceGetName
func nvmlDeviceGetName(h unsafe.Pointer, buf *C.char, length C.uint) C.int {
	return deviceString(h, buf, length, func(d *server.Device) (string, nvml.Return) {
		return d.GetName()
	})
}

//export nvmlDeviceGetUUID
func nvmlDeviceGetUUID(h unsafe.Pointer, buf *C.char, length C.uint) C.int {
	return deviceString(h, buf, length, func(d *server.Device) (string, nvml.Return) {
		return d.GetUUID()
	})
}

// deviceUint answers an unsigned property of a device.
func deviceUint(h unsafe.Pointer, out *C.uint, get func(*server.Device) (int, nvml.Return)) (
	ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	v, r := get(d)
	if r == nvml.SUCCESS {
		*out = C.uint(v)
	}
	return code(r)
}

//export nvmlDeviceGetMinorNumber
func nvmlDeviceGetMinorNumber(h unsafe.Pointer, out *C.uint) C.int {
	return deviceUint(h, out, func(d *server.Device) (int, nvml.Return) {
		return d.GetMinorNumber()
	})
}

//export nvmlDeviceGetIndex
func nvmlDeviceGetIndex(h unsafe.Pointer, out *C.uint) C.int {
	return deviceUint(h, out, func(d *server.Device) (int, nvml.Return) { return d.GetIndex() })
}

//export nvmlDeviceGetBrand
func nvmlDeviceGetBrand(h unsafe.Pointer, out *C.uint) C.int {
	return deviceUint(h, out, func(d *server.Device) (int, nvml.Return) {
		b, r := d.GetBrand()
		return int(b), r
	})
}

//export nvmlDeviceGetArchitecture
func nvmlDeviceGetArchitecture(h unsafe.Pointer, out *C.uint) C.int {
	return deviceUint(h, out, func(d *server.Device) (int, nvml.Return) {
		a, r := d.GetArchitecture()
		return int(a), r
	})
}

//export nvmlDeviceGetCudaComputeCapability
func nvmlDeviceGetCudaComputeCapability(h unsafe.Pointer, major, minor *C.int) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	ma, mi, r := d.GetCudaComputeCapability()
	if r == nvml.SUCCESS {
		*major, *minor = C.int(ma), C.int(mi)
	}
	return code(r)
}

func pciInfo(h unsafe.Pointer, out unsafe.Pointer) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	info, r := d.GetPciInfo()
	if r != nvml.SUCCESS {
		return code(r)
	}
	busID := normalBusID(d.PciBusID)
	var domain, bus, dev, fn uint32
	if _, err := fmt.Sscanf(busID, "%08x:%02x:%02x.%x", &domain, &bus, &dev, &fn); err == nil {
		info.Domain, info.Bus, info.Device = domain, bus, dev
	}
	putInt8s(info.BusId[:], busID)
	putInt8s(info.BusIdLegacy[:], legacyBusID(busID))
	info.PciSubSystemId = 0x16C110DE
	*(*nvml.PciInfo)(out) = info
	return code(nvml.SUCCESS)
}

//export nvmlDeviceGetPciInfo
func nvmlDeviceGetPciInfo(h, out unsafe.Pointer) C.int { return pciInfo(h, out) }

//export nvmlDeviceGetPciInfo_v2
func nvmlDeviceGetPciInfo_v2(h, out unsafe.Pointer) C.int { return pciInfo(h, out) }

//export nvmlDeviceGetPciInfo_v3
func nvmlDeviceGetPciInfo_v3(h, out unsafe.Pointer) C.int { return pciInfo(h, out) }

//export nvmlDeviceGetMemoryInfo
func nvmlDeviceGetMemoryInfo(h, out unsafe.Pointer) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	m, r := d.GetMemoryInfo()
	if r == nvml.SUCCESS {
		*(*nvml.Memory)(out) = m
	}
	return code(r)
}

//export nvmlDeviceGetMemoryInfo_v2
func nvmlDeviceGetMemoryInfo_v2(h, out unsafe.Pointer) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	m, r := d.GetMemoryInfo()
	if r == nvml.SUCCESS {
		v2 := (*nvml.Memory_v2)(out)
		v2.Total, v2.Free, v2.Used, v2.Reserved = m.Total, m.Free, m.Used, 0
	}
	return code(r)
}

//export nvmlDeviceGetMigMode
func nvmlDeviceGetMigMode(h unsafe.Pointer, current, pending *C.uint) (ret C.int) {
	defer guard(&ret)
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	if len(d.Config.MIGProfiles.GpuInstanceProfiles) == 0 {
		return code(nvml.ERROR_NOT_SUPPORTED)
	}
	c, p, r := d.GetMigMode()
	if r == nvml.SUCCESS {
		*current, *pending = C.uint(c), C.uint(p)
	}
	return code(r)
}

//export nvmlDeviceGetMaxMigDeviceCount
func nvmlDeviceGetMaxMigDeviceCount(h unsafe.Pointer, out *C.uint) C.int {
	d, r := device(h)
	if r != nvml.SUCCESS {
		return code(r)
	}
	if len(d.Config.MIGProfiles.GpuInstanceProfiles) == 0 {
		return code(nvml.ERROR_NOT_SUPPORTED)
	}
	*out = 7 // seven slices on every MIG-capable model the mock has
	return code(nvml.SUCCESS)
}

//export nvmlDeviceIsMigDeviceHandle
func nvmlDeviceIsMigDeviceHandle(h unsafe.Pointer, out *C.uint) C.int {
	if _, r := device(h); r != nvml.SUCCESS {
		return code(r)
	}
	*out = 0
	return code(nvml.SUCCESS)
}

// --- processes and events -----------------------------------------------------------------

func noProcesses(h unsafe.Pointer, count *C.uint) C.int {
	if _, r := device(h); r != nvml.SUCCESS {
		return code(r)
	}
	*count = 0 // no process of the simulation holds a CUDA context
	return code(nvml.SUCCESS)
}

//export nvmlDeviceGetComputeRunningProcesses_v3
func nvmlDeviceGetComputeRunningProcesses_v3(h unsafe.Pointer, count *C.uint,
	infos unsafe.Pointer) C.int {
	return noProcesses(h, count)
}

//export nvmlDeviceGetGraphicsRunningProcesses_v3
func nvmlDeviceGetGraphicsRunningProcesses_v3(h unsafe.Pointer, count *C.uint,
	infos unsafe.Pointer) C.int {
	return noProcesses(h, count)
}

//export nvmlDeviceGetSupportedEventTypes
func nvmlDeviceGetSupportedEventTypes(h unsafe.Pointer, out *C.ulonglong) C.int {
	if _, r := device(h); r != nvml.SUCCESS {
		return code(r)
	}
	*out = C.ulonglong(supportedEvents)
	return code(nvml.SUCCESS)
}

//export nvmlDeviceRegisterEvents
func nvmlDeviceRegisterEvents(h unsafe.Pointer, types C.ulonglong, set unsafe.Pointer) C.int {
	if _, r := device(h); r != nvml.SUCCESS {
		return code(r)
	}
	if uint64(types)&^supportedEvents != 0 {
		return code(nvml.ERROR_NOT_SUPPORTED)
	}
	return code(nvml.SUCCESS)
}

//export nvmlEventSetCreate
func nvmlEventSetCreate(out *unsafe.Pointer) C.int {
	if current() == nil {
		return code(nvml.ERROR_UNINITIALIZED)
	}
	*out = handle(0)
	return code(nvml.SUCCESS)
}

//export nvmlEventSetFree
func nvmlEventSetFree(set unsafe.Pointer) C.int { return code(nvml.SUCCESS) }

func eventWait(timeoutMs C.uint) C.int {
	time.Sleep(time.Duration(timeoutMs) * time.Millisecond) // healthy GPUs raise no event
	return code(nvml.ERROR_TIMEOUT)
}

//export nvmlEventSetWait
func nvmlEventSetWait(set, data unsafe.Pointer, timeoutMs C.uint) C.int { return eventWait(timeoutMs) }

//export nvmlEventSetWait_v2
func nvmlEventSetWait_v2(set, data unsafe.Pointer, timeoutMs C.uint) C.int {
	return eventWait(timeoutMs)
}

// --- topology -----------------------------------------------------------------------------

//export nvmlDeviceGetTopologyCommonAncestor
func nvmlDeviceGetTopologyCommonAncestor(h1, h2 unsafe.Pointer, level *C.int) C.int {
	if _, r := device(h1); r != nvml.SUCCESS {
		return code(r)
	}
	if _, r := device(h2); r != nvml.SUCCESS {
		return code(r)
	}
	// The simulated GPUs sit on PCIe buses of one CPU and have no NVLink (their
	// nvmlDeviceGetNvLinkState answers Not Supported), as a PCIe server's do.
	*level = C.int(nvml.TOPOLOGY_NODE)
	if h1 == h2 {
		*level = C.int(nvml.TOPOLOGY_INTERNAL)
	}
	return code(nvml.SUCCESS)
}
