package measure

import (
	"testing"
)

func ms(v int64) *int64 { return &v }

func TestPercentile(t *testing.T) {
	tests := []struct {
		xs   []int64
		p    float64
		want int64
	}{
		{[]int64{5}, 50, 5},
		{[]int64{3, 1, 2}, 50, 2},
		{[]int64{1, 2, 3, 4}, 50, 2},
		{[]int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 95, 100},
		{[]int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 90, 90},
		{[]int64{7, 1, 9}, 100, 9},
	}
	for _, tc := range tests {
		if got := Percentile(tc.xs, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %d, want %d", tc.xs, tc.p, got, tc.want)
		}
	}
}

func TestSummarise(t *testing.T) {
	results := []Result{
		{SIEM: "local", Tactics: []string{"persistence", "execution"}, Status: Detected, LatencyMS: ms(100)},
		{SIEM: "local", Tactics: []string{"persistence"}, Status: Detected, LatencyMS: ms(300)},
		{SIEM: "local", Tactics: []string{"persistence"}, Status: Missed},
		{SIEM: "local", Tactics: []string{"discovery"}, Status: Error},
		{SIEM: "splunk", Tactics: []string{"discovery"}, Status: Skipped},
		{SIEM: "splunk", Tactics: []string{"discovery"}, Status: Quiet},
		{SIEM: "splunk", Tactics: []string{"discovery"}, Status: Noisy},
	}
	s := Summarise(results)
	if s.Total != 7 || s.Detected != 2 || s.Missed != 1 || s.Error != 1 || s.Skipped != 1 || s.Quiet != 1 || s.Noisy != 1 {
		t.Fatalf("counts = %+v", s.Counts)
	}
	if s.Coverage == nil || *s.Coverage != 2.0/3.0 {
		t.Fatalf("coverage = %v, want 2/3", s.Coverage)
	}
	if *s.LatencyMedianMS != 100 || *s.LatencyP95MS != 300 || *s.LatencyMaxMS != 300 {
		t.Fatalf("latency = %d/%d/%d", *s.LatencyMedianMS, *s.LatencyP95MS, *s.LatencyMaxMS)
	}
	if c := s.ByTactic["persistence"]; c.Total != 3 || *c.Coverage != 2.0/3.0 {
		t.Fatalf("persistence = %+v", c)
	}
	if c := s.ByTactic["execution"]; c.Detected != 1 || *c.Coverage != 1 {
		t.Fatalf("execution = %+v", c)
	}
	if c := s.BySIEM["splunk"]; c.Coverage != nil || c.Total != 3 {
		t.Fatalf("splunk = %+v (no detected or missed: coverage must be nil)", c)
	}
}
