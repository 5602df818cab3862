package eventrecord

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutNote(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		cut  bool
	}{
		{"short", "EJBCA refused", false},
		{"at the limit", strings.Repeat("a", noteLimit), false},
		{"one over", strings.Repeat("a", noteLimit+1), true},
		{"multibyte across the cut", strings.Repeat("ä", noteLimit), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cutNote(tc.in)
			if len(got) > noteLimit || !utf8.ValidString(got) {
				t.Fatalf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
			if cut := got != tc.in; cut != tc.cut || (cut && !strings.HasSuffix(got, "…")) {
				t.Errorf("cut %v (%q…), want %v", cut, got[:min(len(got), 20)], tc.cut)
			}
		})
	}
}
