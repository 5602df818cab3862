package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDashboardLayout: the panels fit Grafana's 24 columns, never overlap,
// have unique ids and a query each, and the SVG draws every one.
func TestDashboardLayout(t *testing.T) {
	d := dashboard()
	ids := map[int]bool{}
	for i, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.X < 0 || g.W <= 0 || g.X+g.W > 24 || g.H <= 0 {
			t.Errorf("panel %q at %+v is off the grid", p.Title, g)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range d.Panels[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q %+v and %q %+v overlap", p.Title, g, q.Title, o)
			}
		}
	}
	svg, err := renderSVG(mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		if !strings.Contains(string(svg), ">"+strings.ReplaceAll(p.Title, "&", "&amp;")+"<") {
			t.Errorf("the SVG lacks panel %q", p.Title)
		}
	}
}

func mustJSON(t *testing.T, d dashboardJSON) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
