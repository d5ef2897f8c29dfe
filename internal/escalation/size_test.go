package escalation

import "unsafe"

func unsafeSizeof() uintptr { return unsafe.Sizeof(windowState{}) }
