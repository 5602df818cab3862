package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

func httpGet(u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: the peak-heap sampler scrapes the measured process
	// every second, and gzip would add the scrape's compression to the CPU
	// measured per certificate.
	req.Header.Set("Accept-Encoding", "identity")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// writePlot draws certificates per second against workers, one line per
// EJBCA latency, with the ideal workers/latency as dashed lines (SVG).
func writePlot(path string, results []*runResult) error {
	const w, h, left, right, top, bottom = 720.0, 440.0, 70.0, 160.0, 30.0, 50.0
	byLatency := map[time.Duration][]*runResult{}
	maxY := 1.0
	for _, r := range results {
		byLatency[r.Latency] = append(byLatency[r.Latency], r)
		maxY = math.Max(maxY, math.Max(r.CertsPerSecond, math.Min(r.IdealPerSecond, 2*r.CertsPerSecond+50)))
	}
	var lats []time.Duration
	for l := range byLatency {
		lats = append(lats, l)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	maxY = math.Pow(10, math.Ceil(math.Log10(maxY)))
	x := func(workers int) float64 { return left + (math.Log2(float64(workers))/math.Log2(64))*(w-left-right) }
	y := func(v float64) float64 {
		if v < 1 {
			v = 1
		}
		return h - bottom - (math.Log10(v)/math.Log10(maxY))*(h-top-bottom)
	}
	colors := []string{"#1b6ac9", "#d1495b", "#2e933c", "#8a5cc2"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">ejbca-issuer: certificates per second against workers (log scales)</text>`+"\n", left)
	for _, wk := range []int{1, 4, 16, 64} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n",
			x(wk), top, x(wk), h-bottom, x(wk), h-bottom+16, wk)
	}
	for v := 1.0; v <= maxY; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y(v), w-right, y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">workers (--max-concurrent-reconciles)</text>`+"\n", (left+w-right)/2, h-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">certificates / s</text>`+"\n", (top+h-bottom)/2)
	for i, l := range lats {
		rs := byLatency[l]
		sort.Slice(rs, func(a, c int) bool { return rs[a].Workers < rs[c].Workers })
		col := colors[i%len(colors)]
		var pts, ideal []string
		for _, r := range rs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(r.Workers), y(r.CertsPerSecond)))
			ideal = append(ideal, fmt.Sprintf("%.1f,%.1f", x(r.Workers), y(math.Min(r.IdealPerSecond, maxY))))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(r.Workers), y(r.CertsPerSecond), col)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-dasharray="4 4"/>`+"\n", strings.Join(ideal, " "), col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s measured</text>`+"\n", w-right+10, top+20+float64(i)*36, col, l)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">- - workers / latency</text>`+"\n", w-right+10, top+34+float64(i)*36, col)
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
