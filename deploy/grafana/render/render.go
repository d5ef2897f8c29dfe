package main

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
	"time"
)

// Options say what to query and how big to draw.
type Options struct {
	Query     QueryRange
	Start     time.Time
	End       time.Time
	Step      time.Duration
	Vars      map[string]string
	Width     int // pixels
	RowHeight int // pixels per Grafana grid row
}

const (
	headerHeight = 44
	margin       = 8
	panelGap     = 6
)

// series is one drawable line: a legend name and its samples.
type series struct {
	Name   string
	Points []Point
}

// panelData is what the queries of one panel returned.
type panelData struct {
	Series []series
	Errors []string
}

// Size is the image size Render produces for d.
func (o Options) Size(d *Dashboard) image.Point {
	rows := 0
	for _, p := range d.Panels {
		rows = max(rows, p.GridPos.Y+p.GridPos.H)
	}
	return image.Pt(o.Width, headerHeight+rows*o.RowHeight+margin)
}

// Render queries every panel of d and draws the dashboard. A failed query
// is shown in its panel; only a cancelled context fails the whole render.
func Render(ctx context.Context, d *Dashboard, o Options) (*image.RGBA, error) {
	if o.Width < 200 || o.Width > 8000 || o.RowHeight < 8 || o.RowHeight > 200 {
		return nil, fmt.Errorf("size %dx(%d per row) out of range", o.Width, o.RowHeight)
	}
	if !o.End.After(o.Start) || o.Step <= 0 {
		return nil, fmt.Errorf("empty time range %s..%s step %s", o.Start, o.End, o.Step)
	}
	size := o.Size(d)
	c := newCanvas(size.X, size.Y)
	c.fill(c.img.Bounds(), colBackground)
	c.text(margin, 8, sanitize(d.Title), colTitle, 2)
	span := fmt.Sprintf("%s .. %s UTC, step %s", o.Start.UTC().Format("2006-01-02 15:04:05"), o.End.UTC().Format("15:04:05"), o.Step)
	c.text(size.X-margin-textWidth(span, 1), 16, span, colMuted, 1)

	colW := float64(o.Width-2*margin) / gridColumns
	for _, p := range d.Panels {
		data, err := queryPanel(ctx, p, o)
		if err != nil {
			return nil, err
		}
		x0 := margin + int(math.Round(float64(p.GridPos.X)*colW))
		x1 := margin + int(math.Round(float64(p.GridPos.X+p.GridPos.W)*colW)) - panelGap
		y0 := headerHeight + p.GridPos.Y*o.RowHeight
		y1 := y0 + p.GridPos.H*o.RowHeight - panelGap
		drawPanel(c, image.Rect(x0, y0, x1, y1), p, data, o)
	}
	return c.img, nil
}

func queryPanel(ctx context.Context, p Panel, o Options) (panelData, error) {
	var data panelData
	for _, t := range p.Targets {
		if t.Hide || t.Expr == "" {
			continue
		}
		expr, err := ExpandVariables(t.Expr, o.Vars)
		if err != nil {
			data.Errors = append(data.Errors, err.Error())
			continue
		}
		res, err := o.Query(ctx, expr, o.Start, o.End, o.Step)
		if ctx.Err() != nil {
			return data, fmt.Errorf("panel %q: %w", p.Title, ctx.Err())
		}
		if err != nil {
			data.Errors = append(data.Errors, err.Error())
			continue
		}
		for _, s := range res {
			if len(s.Points) == 0 {
				continue
			}
			data.Series = append(data.Series, series{Name: Legend(t.LegendFormat, s.Labels, expr), Points: s.Points})
		}
	}
	return data, nil
}

func drawPanel(c *canvas, r image.Rectangle, p Panel, data panelData, o Options) {
	c.fill(r, colPanel)
	c.rect(r, colBorder)
	c.text(r.Min.X+8, r.Min.Y+6, clip(sanitize(p.Title), (r.Dx()-16)/glyphW), colTitle, 1)
	body := image.Rect(r.Min.X+8, r.Min.Y+24, r.Max.X-8, r.Max.Y-6)
	if len(data.Series) == 0 {
		msg := "no data"
		c.text(body.Min.X+(body.Dx()-textWidth(msg, 2))/2, body.Min.Y+(body.Dy()-2*glyphH)/2, msg, colMuted, 2)
		for i, e := range data.Errors {
			if i == 2 {
				break
			}
			c.text(body.Min.X, body.Max.Y-(2-i)*(glyphH+2), clip(sanitize(e), body.Dx()/glyphW), colError, 1)
		}
		return
	}
	unit := p.FieldConfig.Defaults.Unit
	switch p.Type {
	case "stat", "gauge":
		drawStat(c, body, data.Series, unit)
	case "bargauge":
		drawBars(c, body, data.Series, unit)
	case "table":
		drawTable(c, body, data.Series, unit)
	default:
		drawTimeseries(c, body, p, data.Series, o)
	}
}

func last(s series) float64 { return s.Points[len(s.Points)-1].V }

// drawStat shows the latest value of each series as a big number, in tiles
// when there are several (as Grafana's stat panel does).
func drawStat(c *canvas, r image.Rectangle, ss []series, unit string) {
	n := len(ss)
	cols := 1
	for cols*cols < n*r.Dx()/max(r.Dy()*3, 1) {
		cols++
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	tw, th := r.Dx()/cols, r.Dy()/rows
	for i, s := range ss {
		tx, ty := r.Min.X+(i%cols)*tw, r.Min.Y+(i/cols)*th
		val := formatValue(last(s), unit)
		scale := 4
		for scale > 1 && (textWidth(val, scale) > tw-8 || scale*glyphH+glyphH+4 > th) {
			scale--
		}
		label := clip(sanitize(s.Name), (tw-4)/glyphW)
		blockH := scale*glyphH + 2 + glyphH
		y := ty + (th-blockH)/2
		c.text(tx+(tw-textWidth(val, scale))/2, y, val, palette[i%len(palette)], scale)
		c.text(tx+(tw-textWidth(label, 1))/2, y+scale*glyphH+2, label, colMuted, 1)
	}
}

// drawBars draws horizontal bars of each series' latest value, largest first.
func drawBars(c *canvas, r image.Rectangle, ss []series, unit string) {
	ss = append([]series(nil), ss...)
	sort.SliceStable(ss, func(i, j int) bool { return last(ss[i]) > last(ss[j]) })
	hi := 0.0
	for _, s := range ss {
		hi = max(hi, last(s))
	}
	rowH := min(max(r.Dy()/len(ss), glyphH+2), 2*glyphH+8)
	labelW := min(r.Dx()*2/5, 40*glyphW)
	valW := 10 * glyphW
	for i, s := range ss {
		y := r.Min.Y + i*rowH
		if y+rowH > r.Max.Y {
			c.text(r.Min.X, y, fmt.Sprintf("+%d more", len(ss)-i), colMuted, 1)
			break
		}
		c.text(r.Min.X, y+(rowH-glyphH)/2, clip(sanitize(s.Name), labelW/glyphW), colText, 1)
		barW := r.Dx() - labelW - valW - 8
		w := 0
		if hi > 0 {
			w = int(float64(barW) * max(last(s), 0) / hi)
		}
		c.fill(image.Rect(r.Min.X+labelW+4, y+2, r.Min.X+labelW+4+max(w, 1), y+rowH-2), palette[i%len(palette)])
		v := formatValue(last(s), unit)
		c.text(r.Max.X-textWidth(v, 1), y+(rowH-glyphH)/2, v, colText, 1)
	}
}

// drawTable lists each series with its latest value.
func drawTable(c *canvas, r image.Rectangle, ss []series, unit string) {
	c.text(r.Min.X, r.Min.Y, "series", colMuted, 1)
	c.text(r.Max.X-textWidth("value", 1), r.Min.Y, "value", colMuted, 1)
	c.hline(r.Min.X, r.Max.X, r.Min.Y+glyphH+2, colBorder)
	for i, s := range ss {
		y := r.Min.Y + (i+1)*(glyphH+4) + 2
		if y+glyphH > r.Max.Y {
			break
		}
		v := formatValue(last(s), unit)
		c.text(r.Min.X, y, clip(sanitize(s.Name), (r.Dx()-textWidth(v, 1)-8)/glyphW), colText, 1)
		c.text(r.Max.X-textWidth(v, 1), y, v, colText, 1)
	}
}

// drawTimeseries draws a line chart with y labels, time labels and a legend.
func drawTimeseries(c *canvas, r image.Rectangle, p Panel, ss []series, o Options) {
	unit := p.FieldConfig.Defaults.Unit
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, pt := range s.Points {
			lo, hi = min(lo, pt.V), max(hi, pt.V)
		}
	}
	if lo >= 0 && lo < hi/2 {
		lo = 0 // rates and counts read better from zero
	}
	if d := p.FieldConfig.Defaults; d.Min != nil {
		lo = *d.Min
	}
	if d := p.FieldConfig.Defaults; d.Max != nil {
		hi = *d.Max
	}
	lo, hi = axisRange(lo, hi, unit)
	ticks := niceTicks(lo, hi)
	lo, hi = ticks[0], ticks[len(ticks)-1]

	ss = hideZeroSeries(ss, r.Dx())
	legend := layoutLegend(ss, r.Dx(), max(1, min(4, (r.Dy()-60)/3/(glyphH+2))))
	plot := r
	plot.Max.Y -= len(legend.rows)*(glyphH+2) + glyphH + 4
	labels := make([]string, len(ticks))
	labelW := 0
	for i, v := range ticks {
		labels[i] = formatValue(v, unit)
		labelW = max(labelW, textWidth(labels[i], 1))
	}
	plot.Min.X += labelW + 6
	plot.Min.Y += glyphH / 2
	if plot.Dx() < 20 || plot.Dy() < 20 {
		c.text(r.Min.X, r.Min.Y, "panel too small", colMuted, 1)
		return
	}

	for i, l := range labels {
		y := plot.Max.Y - 1 - int(math.Round(float64(plot.Dy()-1)*(ticks[i]-lo)/(hi-lo)))
		c.hline(plot.Min.X, plot.Max.X, y, colGrid)
		c.text(plot.Min.X-6-textWidth(l, 1), y-glyphH/2, l, colMuted, 1)
	}
	span := o.End.Sub(o.Start)
	for i := 0; i <= 2; i++ {
		t := o.Start.Add(span * time.Duration(i) / 2).UTC().Format("15:04:05")
		x := plot.Min.X + plot.Dx()*i/2 - textWidth(t, 1)*i/2
		c.text(x, plot.Max.Y+3, t, colMuted, 1)
	}

	xOf := func(t time.Time) int {
		return plot.Min.X + int(math.Round(float64(plot.Dx()-1)*float64(t.Sub(o.Start))/float64(span)))
	}
	yOf := func(v float64) int {
		f := (v - lo) / (hi - lo)
		f = math.Min(math.Max(f, -0.02), 1.02) // keep out-of-range values at the edge
		return plot.Max.Y - 1 - int(math.Round(float64(plot.Dy()-1)*f))
	}
	gap := 2*o.Step + o.Step/2
	for i, s := range ss {
		col := palette[i%len(palette)]
		for j, pt := range s.Points {
			x, y := xOf(pt.T), yOf(pt.V)
			if j == 0 || pt.T.Sub(s.Points[j-1].T) > gap {
				c.dot(x, y, col)
				continue
			}
			prev := s.Points[j-1]
			c.thickLine(xOf(prev.T), yOf(prev.V), x, y, col)
		}
	}

	y := plot.Max.Y + glyphH + 6
	for _, row := range legend.rows {
		x := r.Min.X
		for _, e := range row {
			c.fill(image.Rect(x, y+4, x+12, y+8), palette[e.index%len(palette)])
			c.text(x+16, y, e.text, colText, 1)
			x += e.width
		}
		y += glyphH + 2
	}
}

// axisRange widens a flat range so a constant series sits inside the plot.
func axisRange(lo, hi float64, unit string) (float64, float64) {
	if hi > lo {
		return lo, hi
	}
	switch {
	case lo == 0:
		return 0, 1
	case unit == "percentunit" && lo > 0 && lo <= 1:
		return math.Max(0, lo-0.01), math.Max(lo, 0.01) + math.Min(0.01, 1-lo) // e.g. 100 % shows 99..100 %
	default:
		pad := math.Abs(lo) * 0.1
		return lo - pad, hi + pad
	}
}

// niceTicks returns 3 to 7 round values (steps of 1, 2, 2.5 or 5 times a
// power of ten) covering lo..hi, first and last on or beyond the range.
func niceTicks(lo, hi float64) []float64 {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []float64{lo, lo + 1}
	}
	raw := (hi - lo) / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	first := math.Floor(lo/step) * step
	var ticks []float64
	for i := 0; i < 12; i++ {
		v := first + float64(i)*step
		ticks = append(ticks, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return ticks
}

// hideZeroSeries drops series that are zero throughout when the legend
// would otherwise overflow (a counter per error reason, most never
// incremented); Grafana's "hide series with only zeros" legend option.
func hideZeroSeries(ss []series, w int) []series {
	width := 0
	for _, s := range ss {
		width += 30 + textWidth(s.Name, 1)
	}
	if width <= 2*w {
		return ss
	}
	var out []series
	for _, s := range ss {
		for _, p := range s.Points {
			if p.V != 0 {
				out = append(out, s)
				break
			}
		}
	}
	if len(out) == 0 {
		return ss
	}
	return out
}

type legendEntry struct {
	index int
	text  string
	width int
}

type legendLayout struct{ rows [][]legendEntry }

// layoutLegend flows the series names into at most maxRows rows of width w;
// what does not fit is summarised as "+N more".
func layoutLegend(ss []series, w, maxRows int) legendLayout {
	var l legendLayout
	var row []legendEntry
	x := 0
	for i, s := range ss {
		text := clip(sanitize(s.Name), max((w-20)/glyphW, 4))
		ew := 16 + textWidth(text, 1) + 14
		if x+ew > w && len(row) > 0 {
			l.rows = append(l.rows, row)
			row, x = nil, 0
		}
		if len(l.rows) == maxRows {
			last := l.rows[maxRows-1]
			more := fmt.Sprintf("+%d more", len(ss)-i+1)
			last[len(last)-1] = legendEntry{index: last[len(last)-1].index, text: more, width: textWidth(more, 1) + 30}
			return l
		}
		row = append(row, legendEntry{index: i, text: text, width: ew})
		x += ew
	}
	if len(row) > 0 {
		l.rows = append(l.rows, row)
	}
	return l
}

// Grafana's dark theme, roughly.
var (
	colBackground = color.RGBA{0x11, 0x12, 0x17, 0xff}
	colPanel      = color.RGBA{0x18, 0x1b, 0x1f, 0xff}
	colBorder     = color.RGBA{0x2c, 0x32, 0x35, 0xff}
	colGrid       = color.RGBA{0x24, 0x28, 0x2c, 0xff}
	colTitle      = color.RGBA{0xe8, 0xe8, 0xf0, 0xff}
	colText       = color.RGBA{0xcc, 0xcc, 0xdc, 0xff}
	colMuted      = color.RGBA{0x8e, 0x8e, 0x9e, 0xff}
	colError      = color.RGBA{0xf2, 0x49, 0x5c, 0xff}
	palette       = []color.RGBA{
		{0x73, 0xbf, 0x69, 0xff}, {0xf2, 0xcc, 0x0c, 0xff}, {0x8a, 0xb8, 0xff, 0xff},
		{0xff, 0x78, 0x0a, 0xff}, {0xf2, 0x49, 0x5c, 0xff}, {0x57, 0x94, 0xf2, 0xff},
		{0xb8, 0x77, 0xd9, 0xff}, {0x70, 0xdb, 0xed, 0xff}, {0xfa, 0xde, 0x2a, 0xff},
		{0xc0, 0xd8, 0xff, 0xff}, {0xff, 0xa6, 0xb0, 0xff}, {0x96, 0xd9, 0x8d, 0xff},
	}
)
