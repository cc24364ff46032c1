package main

import (
	"fmt"
	"strings"
)

// normalBusID writes a PCI bus id as NVML does: 8-digit domain, upper-case hex.
func normalBusID(id string) string {
	var domain, bus, dev, fn uint32
	if _, err := fmt.Sscanf(strings.ToLower(id), "%x:%x:%x.%x", &domain, &bus, &dev, &fn); err != nil {
		return strings.ToUpper(id)
	}
	return fmt.Sprintf("%08X:%02X:%02X.%X", domain, bus, dev, fn)
}

// legacyBusID is the 4-digit-domain form of nvmlPciInfo_t.busIdLegacy.
func legacyBusID(id string) string {
	if len(id) > 4 && strings.HasPrefix(id, "0000") {
		return id[4:]
	}
	return id
}

func putInt8s(dst []int8, s string) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}
