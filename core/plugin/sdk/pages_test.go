package sdk

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
)

func sig(id string, sec int, raw int, exps ...string) plugin.Signal {
	return plugin.Signal{ID: id, Timestamp: time.Unix(int64(sec), 0), Raw: []byte(strings.Repeat("x", raw)), MatchedExpectations: exps}
}

func ids(sigs []plugin.Signal) []string {
	var out []string
	for _, s := range sigs {
		out = append(out, s.ID)
	}
	return out
}

// A poll's signals come back in pages bounded by count and bytes, each page
// once; a new poll replaces the old one's tokens.
func TestPages(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int
		sigs     []plugin.Signal
		size     int
		want     [][]string
	}{
		{"one page", 0, []plugin.Signal{sig("a", 1, 1), sig("b", 2, 1)}, 10, [][]string{{"a", "b"}}},
		{"by count", 0, []plugin.Signal{sig("a", 1, 1), sig("b", 2, 1), sig("c", 3, 1)}, 2, [][]string{{"a", "b"}, {"c"}}},
		{"by bytes", 10, []plugin.Signal{sig("a", 1, 6), sig("b", 2, 6), sig("c", 3, 3)}, 10, [][]string{{"a"}, {"b", "c"}}},
		{"one too big still comes", 10, []plugin.Signal{sig("a", 1, 50), sig("b", 2, 1)}, 10, [][]string{{"a"}, {"b"}}},
		{"empty", 0, nil, 10, [][]string{nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pages{MaxBytes: tc.maxBytes}
			res := p.First(tc.sigs, tc.size)
			var got [][]string
			for {
				got = append(got, ids(res.Signals))
				if res.NextPageToken == "" {
					break
				}
				tok := res.NextPageToken
				var err error
				if res, err = p.Next(tok, tc.size); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("pages %v, want %v", got, tc.want)
			}
		})
	}

	p := &Pages{}
	old := p.First([]plugin.Signal{sig("a", 1, 1), sig("b", 2, 1)}, 1)
	p.First([]plugin.Signal{sig("c", 3, 1)}, 1)
	for _, tok := range []string{old.NextPageToken, "garbage", "1:-2", ""} {
		if _, err := p.Next(tok, 1); !errors.Is(err, ErrBadPageToken) {
			t.Errorf("Next(%q): %v, want ErrBadPageToken", tok, err)
		}
	}
}

// The same alert found twice in one poll is one signal with both
// expectations, and the poll is sorted by time then ID.
func TestMergeSignals(t *testing.T) {
	got := MergeSignals([]plugin.Signal{sig("b", 2, 0, "e1"), sig("a", 2, 0), sig("c", 1, 0, "e1"), sig("b", 2, 0, "e2", "e1")})
	if want := []string{"c", "a", "b"}; !slices.Equal(ids(got), want) {
		t.Errorf("order %v, want %v", ids(got), want)
	}
	if e := got[2].MatchedExpectations; !slices.Equal(e, []string{"e1", "e2"}) {
		t.Errorf("b's expectations %v, want [e1 e2]", e)
	}
}
