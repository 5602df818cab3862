package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// writeScalePlot draws the scale scenario of the first variant: peak and
// settled RSS and the live heap against finished requests in the cluster,
// with issue 21's memory targets dashed, and the seconds from start to the
// first signature written at each point (SVG).
func writeScalePlot(path string, results []*scaleResult) error {
	const w, h, left, right, top, bottom = 720.0, 440.0, 70.0, 170.0, 30.0, 50.0
	var rs []*scaleResult
	for _, r := range results {
		if r.Variant == results[0].Variant {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Finished < rs[j].Finished })
	maxX, maxY := 1.0, 128.0
	for _, r := range rs {
		maxX = math.Max(maxX, float64(r.Finished))
		maxY = math.Max(maxY, r.PeakRSSMiB)
	}
	maxY = math.Ceil(maxY/32) * 32
	x := func(v float64) float64 { return left + v/maxX*(w-left-right) }
	y := func(v float64) float64 { return h - bottom - v/maxY*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">ejbca-issuer at start: memory against finished requests (%s)</text>`+"\n", left, rs[0].Variant)
	for i := 0; i <= 5; i++ {
		v := maxX * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n",
			x(v), top, x(v), h-bottom, x(v), h-bottom+16, v)
	}
	for v := 0.0; v <= maxY; v += 32 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y(v), w-right, y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">finished CertificateRequests in the cluster (half ours; plus N/3 foreign CSRs)</text>`+"\n", (left+w-right)/2, h-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">MiB</text>`+"\n", (top+h-bottom)/2)
	series := []struct {
		name, color string
		value       func(*scaleResult) float64
		target      float64
	}{
		{"peak RSS", "#d1495b", func(r *scaleResult) float64 { return r.PeakRSSMiB }, 128},
		{"settled RSS", "#1b6ac9", func(r *scaleResult) float64 { return r.SettledRSSMiB }, 96},
		{"live heap", "#2e933c", func(r *scaleResult) float64 { return r.LiveHeapMiB }, 0},
	}
	for i, s := range series {
		var pts []string
		for _, r := range rs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(r.Finished)), y(s.value(r))))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(float64(r.Finished)), y(s.value(r)), s.color)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), s.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", w-right+10, top+20+float64(i)*36, s.color, s.name)
		if s.target > 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 4"/>`+"\n", left, y(s.target), w-right, y(s.target), s.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">- - target %.0f MiB</text>`+"\n", w-right+10, top+34+float64(i)*36, s.color, s.target)
		}
	}
	for _, r := range rs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%.1f s</text>`+"\n", x(float64(r.Finished)), y(r.PeakRSSMiB)-10, r.FirstSignatureSeconds)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">n s: start to</text>`+"\n", w-right+10, top+140)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">first signature</text>`+"\n", w-right+10, top+154)
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
