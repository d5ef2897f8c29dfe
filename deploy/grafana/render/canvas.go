package main

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The only font is basicfont's 7x13 bitmap; bigger text is that scaled up.
const (
	glyphW      = 7
	glyphH      = 13
	glyphAscent = 11
)

type canvas struct{ img *image.RGBA }

func newCanvas(w, h int) *canvas { return &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))} }

func (c *canvas) fill(r image.Rectangle, col color.RGBA) {
	draw.Draw(c.img, r, image.NewUniform(col), image.Point{}, draw.Src)
}

func (c *canvas) rect(r image.Rectangle, col color.RGBA) {
	c.hline(r.Min.X, r.Max.X, r.Min.Y, col)
	c.hline(r.Min.X, r.Max.X, r.Max.Y-1, col)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		c.img.SetRGBA(r.Min.X, y, col)
		c.img.SetRGBA(r.Max.X-1, y, col)
	}
}

func (c *canvas) hline(x0, x1, y int, col color.RGBA) {
	for x := x0; x < x1; x++ {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *canvas) dot(x, y int, col color.RGBA) {
	c.fill(image.Rect(x-1, y-1, x+2, y+2), col)
}

// thickLine draws a two-pixel line with Bresenham's algorithm: the second
// pixel goes across the major axis so steep and flat lines look alike.
func (c *canvas) thickLine(x0, y0, x1, y1 int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	steep := -dy > dx
	err := dx + dy
	for {
		c.img.SetRGBA(x0, y0, col)
		if steep {
			c.img.SetRGBA(x0+1, y0, col)
		} else {
			c.img.SetRGBA(x0, y0+1, col)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

// text draws s with its top-left corner at (x, y), scale times the font size.
func (c *canvas) text(x, y int, s string, col color.RGBA, scale int) {
	if s == "" {
		return
	}
	if scale <= 1 {
		d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y+glyphAscent)}
		d.DrawString(s)
		return
	}
	small := image.NewAlpha(image.Rect(0, 0, textWidth(s, 1), glyphH))
	d := font.Drawer{Dst: small, Src: image.Opaque, Face: basicfont.Face7x13, Dot: fixed.P(0, glyphAscent)}
	d.DrawString(s)
	big := image.NewAlpha(image.Rect(0, 0, small.Rect.Dx()*scale, glyphH*scale))
	for sy := range glyphH {
		for sx := range small.Rect.Dx() {
			a := small.AlphaAt(sx, sy)
			if a.A == 0 {
				continue
			}
			draw.Draw(big, image.Rect(sx*scale, sy*scale, (sx+1)*scale, (sy+1)*scale), image.NewUniform(a), image.Point{}, draw.Src)
		}
	}
	dst := image.Rect(x, y, x+big.Rect.Dx(), y+big.Rect.Dy())
	draw.DrawMask(c.img, dst, image.NewUniform(col), image.Point{}, big, image.Point{}, draw.Over)
}

func textWidth(s string, scale int) int { return len(s) * glyphW * max(scale, 1) }

// sanitize keeps text within the font's ASCII range.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '→':
			b.WriteString("->")
		case r == '≥':
			b.WriteString(">=")
		case r == '≤':
			b.WriteString("<=")
		case r == '\t' || r == '\n':
			b.WriteByte(' ')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 2 {
		return s[:max(n, 0)]
	}
	return s[:n-2] + ".."
}

// formatValue renders v in a Grafana unit (the ones the dashboards use).
func formatValue(v float64, unit string) string {
	switch unit {
	case "percent":
		return short(v) + "%"
	case "percentunit":
		return short(v*100) + "%"
	case "bytes":
		return binary(v) + "B"
	case "s":
		switch a := math.Abs(v); {
		case a == 0:
			return "0 s"
		case a < 1e-3:
			return short(v*1e6) + " us"
		case a < 1:
			return short(v*1e3) + " ms"
		default:
			return short(v) + " s"
		}
	case "reqps":
		return short(v) + " req/s"
	default:
		return short(v)
	}
}

// short gives about four significant digits with SI suffixes.
func short(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e4:
		return trim(v/1e3) + "k"
	case a != 0 && a < 0.001:
		return strconv.FormatFloat(v, 'e', 1, 64)
	default:
		return trim(v)
	}
}

func trim(v float64) string {
	digits := 3
	if a := math.Abs(v); a >= 1 {
		digits = max(0, 3-int(math.Floor(math.Log10(a))))
	} else if a > 0 {
		digits = 3 - int(math.Floor(math.Log10(a)))
	}
	s := strconv.FormatFloat(v, 'f', min(digits, 6), 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func binary(v float64) string {
	units := []string{"", "Ki", "Mi", "Gi", "Ti"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return trim(v) + " " + units[i]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
