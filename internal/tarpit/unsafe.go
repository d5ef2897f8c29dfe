package tarpit

import "unsafe"

// unsafeBytes views s as bytes without copying; the result must not be
// modified (hash.Write only reads it).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
