package main

import (
	"encoding/json"
	"fmt"
	"html"
	"strings"
)

// SVG scale: Grafana's grid is 24 columns wide; a grid unit is 30 px high.
const (
	svgColumn = 40
	svgUnit   = 22
	svgMargin = 10
)

// renderSVG draws a dashboard's panel grid with each panel's title and
// type, from its JSON, as docs/metrics.md shows it (no Grafana needed).
func renderSVG(dashboardJSON []byte) ([]byte, error) {
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string  `json:"type"`
			Title   string  `json:"title"`
			GridPos gridPos `json:"gridPos"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, err
	}
	bottom := 0
	for _, p := range d.Panels {
		bottom = max(bottom, p.GridPos.Y+p.GridPos.H)
	}
	top := 36
	w, h := 24*svgColumn+2*svgMargin, top+bottom*svgUnit+svgMargin
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#181b1f"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" fill="#d8d9da">%s (Grafana dashboard layout)</text>`+"\n", svgMargin, html.EscapeString(d.Title))
	for _, p := range d.Panels {
		x := svgMargin + p.GridPos.X*svgColumn
		y := top + p.GridPos.Y*svgUnit
		pw, ph := p.GridPos.W*svgColumn, p.GridPos.H*svgUnit
		title := html.EscapeString(p.Title)
		if p.Type == "row" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold" fill="#6e9fff">%s</text>`+"\n", x, y+ph-5, title)
			continue
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="#22252b" stroke="#3a3d44"/>`+"\n", x+2, y+2, pw-4, ph-4)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#d8d9da">%s</text>`+"\n", x+10, y+20, title)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#8e8e8e">%s</text>`+"\n", x+10, y+36, html.EscapeString(p.Type))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String()), nil
}
