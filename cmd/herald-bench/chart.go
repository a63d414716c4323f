package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// Targets and the competitor's figures on this machine (issue 5), drawn as reference marks.
var (
	cpuTargets = map[string]float64{"fanout": 4, "churn": 60, "client-events": 6}
	// soketi: 11.5 µs per delivery at 1k subscribers, 9.9 at 10k.
	soketiCPU = func(r chartRow) float64 {
		switch r.Bench {
		case "fanout":
			if r.Subscribers >= 5000 {
				return 9.9
			}
			return 11.5
		case "churn":
			return 142
		case "client-events":
			return 16
		}
		return 0
	}
)

const (
	memTargetKB    = 8
	memSoketiKB    = 4.5
	latencyTargetM = 10
)

// chartRow is the part of any JSON line the chart draws.
type chartRow struct {
	Bench        string       `json:"bench"`
	Label        string       `json:"label"`
	Subscribers  int          `json:"subscribers"`
	Connections  int          `json:"connections"`
	BytesPerConn int64        `json:"bytes_per_conn"`
	CPUMicros    float64      `json:"server_cpu_us_per_unit"`
	Latency      *latencyMS   `json:"latency_ms"`
	Rounds       []connsRound `json:"rounds"`
	RSSIdleFirst int64        `json:"rss_idle_first"`
	RSSIdleLast  int64        `json:"rss_idle_last"`
}

// runChart renders the JSON lines of a results file (other lines are skipped) as one SVG.
func runChart(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	in := fs.String("in", "bench-results.jsonl", "results file: the JSON lines of herald-bench runs")
	dst := fs.String("out", "docs/benchmarks.svg", "SVG file to write")
	title := fs.String("title", "Herald load benchmarks", "chart title")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := readRows(f)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s holds no herald-bench JSON lines", *in)
	}
	var buf bytes.Buffer
	renderChart(&buf, *title, rows)
	if err := os.WriteFile(*dst, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "chart: %d runs from %s drawn into %s\n", len(rows), *in, *dst)
	return nil
}

func readRows(r io.Reader) ([]chartRow, error) {
	var rows []chartRow
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 4<<20)
	for s.Scan() {
		line := bytes.TrimSpace(s.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var row chartRow
		if json.Unmarshal(line, &row) != nil || row.Bench == "" {
			continue
		}
		if row.Label == "" {
			row.Label = row.Bench
		}
		rows = append(rows, row)
	}
	return rows, s.Err()
}

// svg is a tiny SVG writer: only what the chart needs.
type svg struct {
	w *bytes.Buffer
	y float64 // top of the next panel
}

const (
	chartWidth = 960.0
	labelW     = 230.0 // left column for row labels
	plotRight  = 150.0 // right margin for values and legends
	rowH       = 22.0
)

var seriesColors = []string{"#4c78a8", "#72b7b2", "#f58518", "#e45756"}

func (s *svg) text(x, y float64, anchor, style, t string) {
	fmt.Fprintf(s.w, `<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, style, html.EscapeString(t))
}

func (s *svg) rect(x, y, w, h float64, fill string) {
	fmt.Fprintf(s.w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, max(w, 0.5), h, fill)
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, dash bool) {
	d := ""
	if dash {
		d = ` stroke-dasharray="4 3"`
	}
	fmt.Fprintf(s.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"%s/>`+"\n", x1, y1, x2, y2, stroke, d)
}

// axis maps values onto the plot's x range, linearly or on a log scale.
type axis struct {
	lo, hi float64
	log    bool
	x0, x1 float64
}

func (a axis) x(v float64) float64 {
	if a.log {
		v = math.Max(v, a.lo)
		return a.x0 + (a.x1-a.x0)*(math.Log10(v)-math.Log10(a.lo))/(math.Log10(a.hi)-math.Log10(a.lo))
	}
	return a.x0 + (a.x1-a.x0)*(math.Min(v, a.hi)-a.lo)/(a.hi-a.lo)
}

// ticks returns decades for a log axis and about five round steps for a linear one.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for v := a.lo; v <= a.hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := math.Pow(10, math.Floor(math.Log10((a.hi-a.lo)/5)))
	for (a.hi-a.lo)/step > 8 {
		step *= 2
	}
	for v := a.lo; v <= a.hi+step/1000; v += step {
		out = append(out, v)
	}
	return out
}

func logAxis(lo, hi float64) axis {
	l := math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1e-6))))
	h := math.Pow(10, math.Ceil(math.Log10(math.Max(hi, l*10))))
	return axis{lo: l, hi: h, log: true, x0: labelW, x1: chartWidth - plotRight}
}

func (s *svg) axisLine(a axis, y float64, unit string) {
	s.line(a.x0, y, a.x1, y, "#888", false)
	for _, v := range a.ticks() {
		x := a.x(v)
		s.line(x, y, x, y+4, "#888", false)
		s.text(x, y+16, "middle", `font-size="11" fill="#555"`, trimNum(v))
	}
	s.text(a.x1+28, y+16, "start", `font-size="11" fill="#555"`, unit)
}

func (s *svg) panelTitle(t, note string) {
	s.y += 28
	s.text(12, s.y, "start", `font-size="15" font-weight="bold"`, t)
	if note != "" {
		s.text(12, s.y+16, "start", `font-size="11" fill="#555"`, note)
		s.y += 16
	}
	s.y += 10
}

func trimNum(v float64) string {
	switch {
	case v >= 100:
		return formatFloat(v, 0)
	case v >= 1:
		return strings.TrimSuffix(strings.TrimRight(formatFloat(v, 1), "0"), ".")
	default:
		return strings.TrimRight(strings.TrimRight(formatFloat(v, 3), "0"), ".")
	}
}

// renderChart draws up to four panels: latency percentiles, memory per connection, server CPU per
// unit of work, and RSS over the rounds of a leak check.
func renderChart(w *bytes.Buffer, title string, rows []chartRow) {
	body := &bytes.Buffer{}
	s := &svg{w: body}
	s.y = 10
	s.text(12, s.y+18, "start", `font-size="18" font-weight="bold"`, title)
	s.y += 24

	var lat, mem, cpu []chartRow
	var leak *chartRow
	for i, r := range rows {
		if r.Latency != nil && r.Latency.N > 0 {
			lat = append(lat, r)
		}
		if r.Bench == "conns" && r.BytesPerConn > 0 {
			mem = append(mem, r)
		}
		if r.CPUMicros > 0 && cpuTargets[r.Bench] > 0 {
			cpu = append(cpu, r)
		}
		if r.Bench == "conns" && len(r.Rounds) > 1 {
			leak = &rows[i]
		}
	}
	if len(lat) > 0 {
		latencyPanel(s, lat)
	}
	if len(mem) > 0 {
		memoryPanel(s, mem)
	}
	if len(cpu) > 0 {
		cpuPanel(s, cpu)
	}
	if leak != nil {
		leakPanel(s, *leak)
	}
	s.y += 16
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n",
		chartWidth, s.y, chartWidth, s.y)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	w.Write(body.Bytes())
	w.WriteString("</svg>\n")
}

func latencyPanel(s *svg, rows []chartRow) {
	s.panelTitle("End-to-end latency, ms (log scale)", "publish call → subscriber's reader; bars p50, p90, p99, max; dashed: 10 ms p99 target")
	lo, hi := math.Inf(1), 0.0
	for _, r := range rows {
		lo = math.Min(lo, math.Max(r.Latency.P50, 0.001))
		hi = math.Max(hi, r.Latency.Max)
	}
	a := logAxis(lo, math.Max(hi, latencyTargetM))
	names := []string{"p50", "p90", "p99", "max"}
	for i, n := range names {
		x := labelW + float64(i)*70
		s.rect(x, s.y, 10, 10, seriesColors[i])
		s.text(x+14, s.y+9, "start", `font-size="11"`, n)
	}
	s.y += 18
	top := s.y
	const barH = 5.0
	for _, r := range rows {
		s.text(labelW-8, s.y+13, "end", `font-size="12"`, r.Label)
		vals := []float64{r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max}
		for i, v := range vals {
			s.rect(a.x0, s.y+2+float64(i)*barH, a.x(v)-a.x0, barH-0.5, seriesColors[i])
		}
		s.text(a.x1+8, s.y+13, "start", `font-size="11" fill="#333"`, "p99 "+fmtMS(r.Latency.P99)+" ms")
		s.y += rowH + 4
	}
	x := a.x(latencyTargetM)
	s.line(x, top-4, x, s.y, "#d62728", true)
	s.axisLine(a, s.y+2, "ms")
	s.y += 24
}

func memoryPanel(s *svg, rows []chartRow) {
	s.panelTitle("Server RSS per idle subscribed connection, KB", "dashed red: 8 KB target at 15,000 connections; dotted grey: soketi ≈ 4.5 KB")
	hi := float64(memTargetKB)
	for _, r := range rows {
		hi = math.Max(hi, float64(r.BytesPerConn)/1024)
	}
	a := axis{lo: 0, hi: math.Ceil(hi/5) * 5, x0: labelW, x1: chartWidth - plotRight}
	top := s.y
	for _, r := range rows {
		kb := float64(r.BytesPerConn) / 1024
		s.text(labelW-8, s.y+15, "end", `font-size="12"`, fmt.Sprintf("%s (%d conns)", r.Label, r.Connections))
		s.rect(a.x0, s.y+4, a.x(kb)-a.x0, rowH-8, seriesColors[0])
		s.text(a.x1+8, s.y+15, "start", `font-size="11" fill="#333"`, formatFloat(kb, 1)+" KB")
		s.y += rowH
	}
	s.line(a.x(memTargetKB), top-4, a.x(memTargetKB), s.y, "#d62728", true)
	s.line(a.x(memSoketiKB), top-4, a.x(memSoketiKB), s.y, "#999", true)
	s.axisLine(a, s.y+2, "KB")
	s.y += 24
}

func cpuPanel(s *svg, rows []chartRow) {
	s.panelTitle("Server CPU per unit of work, µs (log scale)",
		"per delivery (fanout), per cycle (churn), per relayed event (client-events); red tick: target, grey tick: soketi")
	lo, hi := math.Inf(1), 0.0
	for _, r := range rows {
		lo = math.Min(lo, math.Min(r.CPUMicros, cpuTargets[r.Bench]))
		hi = math.Max(hi, math.Max(r.CPUMicros, soketiCPU(r)))
	}
	a := logAxis(lo, hi)
	for _, r := range rows {
		s.text(labelW-8, s.y+15, "end", `font-size="12"`, r.Label)
		s.rect(a.x0, s.y+4, a.x(r.CPUMicros)-a.x0, rowH-8, seriesColors[2])
		for _, m := range []struct {
			v     float64
			color string
		}{{cpuTargets[r.Bench], "#d62728"}, {soketiCPU(r), "#777"}} {
			if m.v > 0 {
				x := a.x(m.v)
				fmt.Fprintf(s.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", x, s.y+1, x, s.y+rowH-1, m.color)
			}
		}
		s.text(a.x1+8, s.y+15, "start", `font-size="11" fill="#333"`,
			fmt.Sprintf("%s µs (target %s)", trimNum(r.CPUMicros), trimNum(cpuTargets[r.Bench])))
		s.y += rowH
	}
	s.axisLine(a, s.y+2, "µs")
	s.y += 24
}

func leakPanel(s *svg, r chartRow) {
	note := "blue: with connections open; orange: after closing them and a short settle"
	if r.RSSIdleFirst > 0 && r.RSSIdleLast > 0 {
		note += fmt.Sprintf("; green: idle RSS once the runtime released memory, %.1f MiB after round 1, %.1f after round %d",
			mib(r.RSSIdleFirst), mib(r.RSSIdleLast), r.Rounds[len(r.Rounds)-1].Round)
	}
	s.panelTitle("Leak check: server RSS over open/close rounds, MiB ("+r.Label+")", note)
	plotH := 140.0
	top := s.y
	hi := 0.0
	for _, rd := range r.Rounds {
		hi = math.Max(hi, mib(max(rd.RSSOpen, rd.RSSClosed)))
	}
	hi = math.Ceil(hi/10) * 10
	yOf := func(v float64) float64 { return top + plotH - plotH*v/math.Max(hi, 1) }
	xOf := func(i int) float64 {
		return labelW + (chartWidth-plotRight-labelW)*float64(i)/float64(max(len(r.Rounds)-1, 1))
	}
	for _, v := range []float64{0, hi / 2, hi} {
		s.line(labelW, yOf(v), chartWidth-plotRight, yOf(v), "#ddd", false)
		s.text(labelW-8, yOf(v)+4, "end", `font-size="11" fill="#555"`, trimNum(v)+" MiB")
	}
	for k, series := range []func(connsRound) int64{
		func(c connsRound) int64 { return c.RSSOpen },
		func(c connsRound) int64 { return c.RSSClosed },
	} {
		var pts []string
		for i, rd := range r.Rounds {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(mib(series(rd)))))
		}
		fmt.Fprintf(s.w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), seriesColors[k*2])
	}
	for i, idle := range map[int]int64{0: r.RSSIdleFirst, len(r.Rounds) - 1: r.RSSIdleLast} {
		if idle > 0 {
			fmt.Fprintf(s.w, `<circle cx="%.1f" cy="%.1f" r="4" fill="#54a24b"/>`+"\n", xOf(i), yOf(mib(idle)))
		}
	}
	for i, rd := range r.Rounds {
		s.text(xOf(i), top+plotH+16, "middle", `font-size="11" fill="#555"`, fmt.Sprint(rd.Round))
	}
	s.text(chartWidth-plotRight+28, top+plotH+16, "start", `font-size="11" fill="#555"`, "round")
	s.y = top + plotH + 30
}
