package sdk_test

import (
	"testing"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/plugin/sdk"
)

func TestSignalCount(t *testing.T) {
	sig := func(ids ...string) []plugin.Signal {
		var out []plugin.Signal
		for _, id := range ids {
			out = append(out, plugin.Signal{ID: id})
		}
		return out
	}
	tests := []struct {
		name  string
		polls [][]plugin.Signal
		want  int64
	}{
		{"nothing", nil, 0},
		{"the same alerts every poll", [][]plugin.Signal{sig("a", "b"), sig("a", "b"), sig("a", "b", "c")}, 3},
		{"repeated within a page", [][]plugin.Signal{sig("a", "a")}, 1},
		{"without an ID each counts", [][]plugin.Signal{sig("", ""), sig("")}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c sdk.SignalCount
			for _, p := range tc.polls {
				c.Add(p)
			}
			if got := c.Load(); got != tc.want {
				t.Errorf("Load() = %d, want %d", got, tc.want)
			}
		})
	}
}
