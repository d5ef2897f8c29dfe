package config

import (
	"fmt"
	"strings"
)

// ReferenceTable renders every key as a Markdown table: the reference part
// of docs/configuration.md, kept true by a test.
func ReferenceTable() string {
	var b strings.Builder
	b.WriteString("| Key | Environment variable | Type | Default | Meaning |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, k := range Keys() {
		def := k.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s |\n", k.Path, k.Env, k.Type, def, k.Doc)
	}
	return b.String()
}
