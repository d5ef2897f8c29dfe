package challenge

import (
	"net/url"
	"strings"
)

// safeReturnPath returns s if it is a path on this site that is safe to
// redirect to, and "/" otherwise. Browsers read "//host", "/\host" and
// paths with tabs or newlines (which they strip) as another site, so those
// are refused rather than repaired; so are the package's own endpoints, to
// avoid loops.
func safeReturnPath(s string) string {
	if !isSafeReturnPath(s) {
		return "/"
	}
	return s
}

func isSafeReturnPath(s string) bool {
	if s == "" || len(s) > maxReturnLen || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return !strings.HasPrefix(u.Path, Prefix)
}
