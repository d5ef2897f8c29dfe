package demosite

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// article is one note, parsed from content/articles/<slug>.html: a header of
// "key: value" lines, a line holding only "---", then the HTML body.
type article struct {
	Slug    string
	Title   string
	Date    time.Time
	Tags    []string
	Image   string // site path of the illustration, always 640×360
	Alt     string
	Summary string
	Body    template.HTML

	// searchText is the lower-cased title and tags that /search matches.
	searchText string
}

// tagGroup lists the articles that carry one tag, for the archive page.
type tagGroup struct {
	Name     string
	Articles []*article
}

// loadArticles parses every article under dir, newest first.
func loadArticles(fsys fs.FS, dir string) ([]*article, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.html"))
	if err != nil {
		return nil, fmt.Errorf("list articles: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no articles under %s", dir)
	}
	articles := make([]*article, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read article: %w", err)
		}
		a, err := parseArticle(strings.TrimSuffix(path.Base(name), ".html"), data)
		if err != nil {
			return nil, err
		}
		articles = append(articles, a)
	}
	slices.SortFunc(articles, func(a, b *article) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(a.Slug, b.Slug)
	})
	return articles, nil
}

func parseArticle(slug string, data []byte) (*article, error) {
	if !isToken(slug) {
		return nil, fmt.Errorf("article %q: file name must be lower-case letters, digits and hyphens", slug)
	}
	head, body, ok := bytes.Cut(data, []byte("\n---\n"))
	if !ok {
		return nil, fmt.Errorf("article %s: no \"---\" line after the header", slug)
	}
	a := &article{Slug: slug, Body: template.HTML(bytes.TrimSpace(body))}
	for i, line := range strings.Split(string(head), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("article %s: header line %d: want \"key: value\"", slug, i+1)
		}
		value = strings.TrimSpace(value)
		switch key = strings.TrimSpace(key); key {
		case "title":
			a.Title = value
		case "date":
			d, err := time.Parse(time.DateOnly, value)
			if err != nil {
				return nil, fmt.Errorf("article %s: date: %w", slug, err)
			}
			a.Date = d
		case "tags":
			for _, tag := range strings.Split(value, ",") {
				tag = strings.TrimSpace(tag)
				if !isToken(tag) {
					return nil, fmt.Errorf("article %s: tag %q must be lower-case letters, digits and hyphens", slug, tag)
				}
				a.Tags = append(a.Tags, tag)
			}
		case "image":
			a.Image = value
		case "alt":
			a.Alt = value
		case "summary":
			a.Summary = value
		default:
			return nil, fmt.Errorf("article %s: unknown header key %q", slug, key)
		}
	}
	for key, value := range map[string]string{"title": a.Title, "image": a.Image, "alt": a.Alt, "summary": a.Summary} {
		if value == "" {
			return nil, fmt.Errorf("article %s: header key %q is missing", slug, key)
		}
	}
	if a.Date.IsZero() || len(a.Tags) == 0 {
		return nil, fmt.Errorf("article %s: date and tags are required", slug)
	}
	a.searchText = strings.ToLower(a.Title + " " + strings.Join(a.Tags, " "))
	return a, nil
}

// groupByTag returns one group per tag, tags in alphabetical order and
// articles in the order given.
func groupByTag(articles []*article) []tagGroup {
	byTag := make(map[string][]*article)
	for _, a := range articles {
		for _, tag := range a.Tags {
			byTag[tag] = append(byTag[tag], a)
		}
	}
	groups := make([]tagGroup, 0, len(byTag))
	for tag, list := range byTag {
		groups = append(groups, tagGroup{Name: tag, Articles: list})
	}
	slices.SortFunc(groups, func(a, b tagGroup) int { return strings.Compare(a.Name, b.Name) })
	return groups
}

// isToken reports whether s is usable unescaped in a URL path or an HTML id.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
