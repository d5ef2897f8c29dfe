package escalation

import (
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// libraryAgents are lower-case user-agent substrings of HTTP libraries and
// automation tools. A client that says it is one is certain to be a bot.
var libraryAgents = []string{
	"python-requests", "python-urllib", "python-httpx", "aiohttp", "httpx/",
	"curl/", "wget/", "go-http-client", "okhttp", "java/", "apache-httpclient",
	"libwww-perl", "node-fetch", "axios/", "undici", "scrapy", "guzzlehttp",
	"postmanruntime", "headlesschrome", "phantomjs", "selenium", "puppeteer",
	"playwright", "ruby", "php/", "httpie", "libcurl", "winhttp",
}

// runtimeAgents are whole user agents of JavaScript runtimes' built-in
// fetch (Node says just "node"); as substrings they would match products.
var runtimeAgents = []string{"node", "bun", "deno"}

// libraryOrders are the leading header names (lower case) that HTTP
// libraries send by default. Browsers differ: Chromium sends sec-ch-ua*
// before user-agent, Firefox follows accept with accept-language.
var libraryOrders = [][]string{
	{"host", "user-agent", "accept-encoding", "accept", "connection"}, // python-requests
	{"host", "user-agent", "accept-encoding"},                         // Go net/http
	{"host", "user-agent", "accept"},                                  // curl
}

// probePaths are lower-case path substrings that scanners request and
// visitors never do.
var probePaths = []string{
	"wp-login", "wp-admin", "xmlrpc.php", "/.env", "/.git", "/.svn", "/.aws",
	"/.ds_store", "phpmyadmin", "/phpinfo", "/server-status", "/cgi-bin/",
	"/vendor/phpunit", "/administrator", "/admin.php", "/config.php",
	"/.htaccess", "/actuator", "/boaform", "/owa/", "/.well-known/security.txt.bak",
}

// usualMethods are the methods a site's own pages and scripts use.
var usualMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// heuristics fills the single-request features and reports whether the
// verdict is certain already.
func heuristics(ev *events.Event, class requestClass, fv *featureVec) (certain bool) {
	switch ev.Kind {
	case events.KindTrap, events.KindTarpit:
		fv[fTrapHit] = 1
		return true
	case events.KindChallengeFail:
		fv[fChallengeFail] = 1
		return false
	case events.KindChallengePass:
		fv[fChallengePass] = 1
		return false
	}

	ua := ev.UserAgent
	if ua == "" || containsAnyFold(ua, libraryAgents) || equalsAnyFold(ua, runtimeAgents) {
		fv[fDeclaredLibrary] = 1
		return true
	}
	browser := strings.HasPrefix(ua, "Mozilla/")
	if browser {
		chromium := strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Edg/")
		if chromium && ev.Headers["Sec-Ch-Ua"] == "" {
			fv[fNoClientHints] = 1
		}
		if ev.Headers["Sec-Fetch-Mode"] == "" && ev.Headers["Sec-Fetch-Dest"] == "" && ev.Headers["Sec-Fetch-Site"] == "" {
			fv[fNoFetchMetadata] = 1
		}
		if ev.Headers["Accept-Language"] == "" {
			fv[fNoAcceptLanguage] = 1
		}
		if class == classPage {
			if a := ev.Headers["Accept"]; a == "" || a == "*/*" {
				fv[fAcceptAnyPage] = 1
			}
		}
	}
	if libraryHeaderOrder(ev.HeaderOrder) {
		fv[fLibraryHeaderOrder] = 1
	}
	if ev.Method != "" && !contains(usualMethods, ev.Method) {
		fv[fUnusualMethod] = 1
	}
	if containsAnyFold(ev.Path, probePaths) {
		fv[fProbePath] = 1
	}
	return false
}

// libraryHeaderOrder reports whether order starts like an HTTP library's
// default headers and does not continue like a browser's.
func libraryHeaderOrder(order []string) bool {
	for _, sig := range libraryOrders {
		if len(order) < len(sig) {
			continue
		}
		match := true
		for i, name := range sig {
			if !strings.EqualFold(order[i], name) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if len(order) == len(sig) {
			return true
		}
		next := strings.ToLower(order[len(sig)])
		if next != "accept-language" && next != "upgrade-insecure-requests" && !strings.HasPrefix(next, "sec-") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// containsAnyFold reports whether s contains one of the lower-case needles,
// ignoring ASCII case, without allocating.
func containsAnyFold(s string, needles []string) bool {
	for _, n := range needles {
		if indexFold(s, n) >= 0 {
			return true
		}
	}
	return false
}

// indexFold is strings.Index with ASCII case folding of s; needle must be
// lower case.
func indexFold(s, needle string) int {
	if len(needle) == 0 {
		return 0
	}
	first := needle[0]
	for i := 0; i+len(needle) <= len(s); i++ {
		if lower(s[i]) != first {
			continue
		}
		j := 1
		for j < len(needle) && lower(s[i+j]) == needle[j] {
			j++
		}
		if j == len(needle) {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalsAnyFold(s string, list []string) bool {
	for _, x := range list {
		if strings.EqualFold(s, x) {
			return true
		}
	}
	return false
}
