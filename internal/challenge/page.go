package challenge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed assets locales templates
var files embed.FS

// contentSecurityPolicy allows nothing but the page's own script, worker,
// style sheet and form target: no inline code, no third party.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; worker-src 'self'; " +
	"connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// defaultLang is the locale used when Accept-Language names none we have,
// and the source of any string a translation lacks.
const defaultLang = "en"

// pageKind names the body template of a page.
type pageKind string

const (
	pagePoW    pageKind = "pow"
	pageNoJS   pageKind = "nojs"
	pageFailed pageKind = "failed"
	pageWait   pageKind = "wait"
)

var pageKinds = []pageKind{pagePoW, pageNoJS, pageFailed, pageWait}

// pageData is what the templates see. T holds the locale's strings.
type pageData struct {
	Lang            string
	T               map[string]string
	CSS             string
	Script          string
	Worker          string
	Refresh         string // content of a meta refresh, if any
	NoScriptRefresh string // content of a meta refresh inside <noscript>, if any
	VerifyURL       string
	NoJSURL         string
	RetryURL        string
	Challenge       string // sealed record
	Seed            string // proof-of-work seed, hex
	Difficulty      string
}

// slot is a per-request value in a prerendered page.
type slot uint8

const (
	slotChallenge slot = iota
	slotSeed
	slotDifficulty
	numSlots
)

// sentinels stand for the per-request values, by slot, when challenge
// pages are rendered ahead of time. They are plain letters, so no escaping
// context changes them, and they appear in no template or locale. The
// values put in their place (URL-safe base64, hex, decimal) need no
// escaping in any context they appear in either.
var sentinels = [numSlots]string{
	slotChallenge:  "zzqxSDCHALLENGExqzz",
	slotSeed:       "zzqxSDSEEDxqzz",
	slotDifficulty: "zzqxSDDIFFxqzz",
}

// prerendered is a challenge page split around its per-request values:
// parts[0] slots[0] parts[1] slots[1] ... parts[n]. Serving one is a few
// copies instead of a template execution.
type prerendered struct {
	parts [][]byte
	slots []slot
	size  int // length without the slots
}

// asset is one embedded static file, served under Prefix+"assets/".
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// pages holds everything needed to render, built once by New.
type pages struct {
	templates map[pageKind]*template.Template
	locales   map[string]map[string]string // lang -> key -> text
	langs     []string                     // sorted, for negotiation
	assets    map[string]asset             // file name -> asset
	cssURL    string
	scriptURL string
	workerURL string
	buffers   sync.Pool // *bytes.Buffer
	// challenge pages by kind (pagePoW, pageNoJS) and language
	ready map[pageKind]map[string]*prerendered
}

// newPages parses the templates and locales. Placeholders whose values
// come from the configuration ({seconds}, {hours}) are filled in here, once.
func newPages(cfg Config) (*pages, error) {
	p := &pages{
		templates: make(map[pageKind]*template.Template, len(pageKinds)),
		locales:   make(map[string]map[string]string),
		assets:    make(map[string]asset),
	}
	p.buffers.New = func() any { return new(bytes.Buffer) }

	if err := p.loadAssets(); err != nil {
		return nil, err
	}
	p.cssURL = p.assetURL("challenge.css")
	p.scriptURL = p.assetURL("challenge.js")
	p.workerURL = p.assetURL("worker.js")

	if err := p.loadLocales(cfg); err != nil {
		return nil, err
	}

	base, err := template.ParseFS(files, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("parse challenge templates: %w", err)
	}
	for _, k := range pageKinds {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone challenge template: %w", err)
		}
		if _, err := t.New("body").Parse(`{{template "` + string(k) + `" .}}`); err != nil {
			return nil, fmt.Errorf("parse challenge template %s: %w", k, err)
		}
		p.templates[k] = t
	}
	if err := p.prerender(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// prerender renders the two challenge pages for every language with
// sentinels in place of the sealed record, seed and difficulty.
func (p *pages) prerender(cfg Config) error {
	p.ready = make(map[pageKind]map[string]*prerendered)
	noJSURL := Prefix + "nojs?challenge=" + sentinels[slotChallenge]
	for _, kind := range []pageKind{pagePoW, pageNoJS} {
		p.ready[kind] = make(map[string]*prerendered)
		for _, lang := range p.langs {
			d := pageData{Lang: lang, T: p.locales[lang], CSS: p.cssURL, Challenge: sentinels[slotChallenge], NoJSURL: noJSURL}
			if kind == pageNoJS {
				d.Refresh = strconv.Itoa(refreshSeconds(noJSWait)) + ";url=" + noJSURL
			} else {
				d.NoScriptRefresh = strconv.Itoa(refreshSeconds(cfg.NoJSFallbackWait)) + ";url=" + noJSURL
				d.Script = p.scriptURL
				d.Worker = p.workerURL
				d.VerifyURL = Prefix + "verify"
				d.Seed = sentinels[slotSeed]
				d.Difficulty = sentinels[slotDifficulty]
			}
			var buf bytes.Buffer
			if err := p.templates[kind].ExecuteTemplate(&buf, "page", &d); err != nil {
				return fmt.Errorf("render challenge page: %w", err)
			}
			p.ready[kind][lang] = splitPage(buf.Bytes())
		}
	}
	return nil
}

// splitPage cuts a rendered page at its sentinels.
func splitPage(page []byte) *prerendered {
	pr := &prerendered{}
	for {
		at, which := -1, slot(0)
		for sl, sentinel := range sentinels {
			if i := bytes.Index(page, []byte(sentinel)); i >= 0 && (at < 0 || i < at) {
				at, which = i, slot(sl)
			}
		}
		if at < 0 {
			pr.parts = append(pr.parts, page)
			pr.size += len(page)
			return pr
		}
		pr.parts = append(pr.parts, page[:at])
		pr.slots = append(pr.slots, which)
		pr.size += at
		page = page[at+len(sentinels[which]):]
	}
}

// serveChallenge writes a prerendered challenge page with the sealed
// record, seed and difficulty filled in.
func (p *pages) serveChallenge(w http.ResponseWriter, r *http.Request, status int, kind pageKind, sealed, seed []byte, difficulty int) {
	lang := p.negotiate(r.Header.Get("Accept-Language"))
	pr := p.ready[kind][lang]
	buf := p.buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			p.buffers.Put(buf)
		}
	}()
	buf.Reset()
	var num [4]byte
	diff := strconv.AppendInt(num[:0], int64(difficulty), 10)
	buf.Grow(pr.size + len(pr.slots)*len(sealed))
	for i, part := range pr.parts {
		buf.Write(part)
		if i < len(pr.slots) {
			switch pr.slots[i] {
			case slotChallenge:
				buf.Write(sealed)
			case slotSeed:
				buf.Write(seed)
			case slotDifficulty:
				buf.Write(diff)
			}
		}
	}
	p.writePage(w, r, status, lang, buf.Bytes())
}

func (p *pages) loadAssets() error {
	entries, err := fs.ReadDir(files, "assets")
	if err != nil {
		return fmt.Errorf("read challenge assets: %w", err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(files, "assets/"+e.Name())
		if err != nil {
			return fmt.Errorf("read challenge asset: %w", err)
		}
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		switch path.Ext(e.Name()) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
		sum := sha256.Sum256(body)
		p.assets[e.Name()] = asset{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return nil
}

// assetURL names an asset with its content hash, so that browsers may cache
// it while a new build is never served an old script.
func (p *pages) assetURL(name string) string {
	a := p.assets[name]
	return Prefix + "assets/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

func (p *pages) loadLocales(cfg Config) error {
	entries, err := fs.ReadDir(files, "locales")
	if err != nil {
		return fmt.Errorf("read challenge locales: %w", err)
	}
	fill := strings.NewReplacer(
		"{seconds}", strconv.Itoa(refreshSeconds(cfg.NoJSFallbackWait)),
		"{hours}", strconv.Itoa(int((cfg.PassTTL+time.Hour-1)/time.Hour)),
	)
	for _, e := range entries {
		lang, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := fs.ReadFile(files, "locales/"+e.Name())
		if err != nil {
			return fmt.Errorf("read locale %s: %w", lang, err)
		}
		strs := make(map[string]string)
		if err := json.Unmarshal(data, &strs); err != nil {
			return fmt.Errorf("parse locale %s: %w", lang, err)
		}
		for k, v := range strs {
			strs[k] = fill.Replace(v)
		}
		p.locales[lang] = strs
		p.langs = append(p.langs, lang)
	}
	en, ok := p.locales[defaultLang]
	if !ok {
		return fmt.Errorf("locale %q missing", defaultLang)
	}
	// A translation that lacks a string shows the English one.
	for _, strs := range p.locales {
		for k, v := range en {
			if _, ok := strs[k]; !ok {
				strs[k] = v
			}
		}
	}
	slices.Sort(p.langs)
	return nil
}

// refreshSeconds rounds a wait up to the whole seconds of a meta refresh.
func refreshSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// negotiate picks the locale for an Accept-Language header: the supported
// language with the highest quality, English when none matches. Only the
// primary subtag is compared ("de-AT" selects "de").
func (p *pages) negotiate(header string) string {
	best, bestQ := defaultLang, -1.0
	for i := 0; header != "" && i < 16; i++ {
		var item string
		item, header, _ = strings.Cut(header, ",")
		tag, params, _ := strings.Cut(item, ";")
		tag = strings.TrimSpace(tag)
		if primary, _, _ := strings.Cut(tag, "-"); primary != "" {
			tag = primary
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q <= bestQ || q == 0 {
			continue
		}
		for _, l := range p.langs {
			if strings.EqualFold(l, tag) {
				best, bestQ = l, q
				break
			}
		}
	}
	return best
}

// render writes a complete HTML page with the strict headers every
// challenge page carries.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, kind pageKind, d *pageData) error {
	d.Lang = p.negotiate(r.Header.Get("Accept-Language"))
	d.T = p.locales[d.Lang]
	d.CSS = p.cssURL
	buf := p.buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			p.buffers.Put(buf)
		}
	}()
	buf.Reset()
	if err := p.templates[kind].ExecuteTemplate(buf, "page", d); err != nil {
		return fmt.Errorf("render challenge page: %w", err)
	}
	p.writePage(w, r, status, d.Lang, buf.Bytes())
	return nil
}

// writePage sends an HTML page with the strict headers.
func (p *pages) writePage(w http.ResponseWriter, r *http.Request, status int, lang string, body []byte) {
	h := w.Header()
	setPageHeaders(h)
	h["Content-Type"] = htmlContentType
	h["Content-Language"] = []string{lang}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Vary"] = varyAcceptLanguage
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// Header values shared by every page; http.Header only reads them.
var (
	htmlContentType    = []string{"text/html; charset=utf-8"}
	varyAcceptLanguage = []string{"Accept-Language"}
	cspValue           = []string{contentSecurityPolicy}
	noStore            = []string{"no-store"}
	nosniff            = []string{"nosniff"}
	sameOrigin         = []string{"same-origin"}
	noIndex            = []string{"noindex, nofollow"}
)

// setPageHeaders sets the headers of every response that must not be
// cached, framed or sniffed. Canonical keys are assigned directly: this
// runs for every challenge page.
func setPageHeaders(h http.Header) {
	h["Content-Security-Policy"] = cspValue
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	h["Referrer-Policy"] = sameOrigin
	h["X-Robots-Tag"] = noIndex
}

// serveAsset serves an embedded static file by name.
func (p *pages) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := p.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	// Versioned URLs never change content; unversioned ones may.
	if r.URL.Query().Get("v") == strings.Trim(a.etag, `"`) {
		h.Set("Cache-Control", "public, max-age=86400, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}
