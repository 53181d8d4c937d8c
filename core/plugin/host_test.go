package plugin

import "testing"

// A raw-event search keeps the events of the hosts it asks for, naming
// them short or fully qualified, in any case.
func TestRawEventsRequestWants(t *testing.T) {
	tests := []struct {
		hosts []string
		host  string
		want  bool
	}{
		{nil, "web1", true},
		{[]string{"web1"}, "", true},
		{[]string{"web1"}, "web1", true},
		{[]string{"WEB1"}, "web1.example.com", true},
		{[]string{"web1.example.com"}, "Web1", true},
		{[]string{"web1.example.com"}, "web1.other.org", true},
		{[]string{"web1"}, "web2", false},
		{[]string{"web1", "db1"}, "db1.example.com", true},
		{[]string{"web1", ""}, "anything", true},
		{[]string{"web1"}, "web10", false},
	}
	for _, tc := range tests {
		if got := (RawEventsRequest{Hosts: tc.hosts}).Wants(tc.host); got != tc.want {
			t.Errorf("Hosts %q Wants(%q) = %v, want %v", tc.hosts, tc.host, got, tc.want)
		}
	}
}
