// Package crawlers identifies declared crawlers from their user agent and
// verifies them against the address ranges their operators publish.
package crawlers

// Identity is what the user agent and address say about a crawler. It is a
// plain value so that the fast path can fill it without allocating.
type Identity struct {
	// Name of the verifiable crawler the user agent claims to be
	// ("googlebot", "gptbot", ...), or "" when it claims none.
	Name string
	// Verified is true when the address lies in that crawler's published
	// ranges.
	Verified bool
	// AIAgent is the ai.robots.txt agent name found in the user agent, or "".
	AIAgent string
}

// Claimed reports whether the user agent claims a verifiable crawler.
func (id Identity) Claimed() bool { return id.Name != "" }

// Impostor reports whether the user agent claims a verifiable crawler but
// the address is outside its published ranges.
func (id Identity) Impostor() bool { return id.Name != "" && !id.Verified }
