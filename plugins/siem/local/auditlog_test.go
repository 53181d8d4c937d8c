package local

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// auditLine is one audit.k8s.io/v1 event whose auditID is id.
func auditLine(id string) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"system:anonymous"},"userAgent":"vigil/0.1.0 (k8s injector; vigil-00112233aabb)","objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-12-07T10:00:00.000000Z","stageTimestamp":"2026-12-07T10:00:00.001000Z"}`, id) + "\n"
}

// collector gathers the auditIDs of the events a follower emits.
type collector struct {
	mu  sync.Mutex
	ids []string
}

func (c *collector) emit(evs []telemetry.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range evs {
		if evs[i].Host != "cluster-a" || evs[i].Source != telemetry.KubernetesAudit {
			c.ids = append(c.ids, "bad event: "+evs[i].Host+" "+evs[i].Source.String())
			continue
		}
		c.ids = append(c.ids, evs[i].Get("auditID"))
	}
}

// waitFor waits until the ids collected are want, and fails the test with
// what was collected when they are not after a while.
func (c *collector) waitFor(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := slices.Clone(c.ids)
		c.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// An audit log is followed as tail -F does: from its end, across partial
// writes, rotation, truncation and a file that appears late; lines that are
// not audit events are counted, not emitted.
func TestFollowAuditLogs(t *testing.T) {
	tests := []struct {
		name string
		// before is written before following starts; steps after, each
		// waited for (want is the ids emitted so far).
		before string
		steps  []func(t *testing.T, path string)
		want   [][]string
		// unparsed is the count of lines that were not audit events.
		unparsed uint64
	}{
		{
			name:   "from the end",
			before: auditLine("old-1") + auditLine("old-2"),
			steps:  []func(*testing.T, string){func(t *testing.T, p string) { appendTo(t, p, auditLine("new-1")+auditLine("new-2")) }},
			want:   [][]string{{"new-1", "new-2"}},
		},
		{
			name: "a line written in two parts",
			steps: []func(*testing.T, string){
				func(t *testing.T, p string) {
					l := auditLine("split")
					appendTo(t, p, l[:40])
					time.Sleep(3 * auditLogPoll)
					appendTo(t, p, l[40:])
				},
			},
			want: [][]string{{"split"}},
		},
		{
			name:   "rotated",
			before: auditLine("old"),
			steps: []func(*testing.T, string){
				func(t *testing.T, p string) { appendTo(t, p, auditLine("a")) },
				func(t *testing.T, p string) {
					if err := os.Rename(p, p+".1"); err != nil {
						t.Fatal(err)
					}
					appendTo(t, p+".1", auditLine("b"))
					appendTo(t, p, auditLine("c"))
				},
			},
			want: [][]string{{"a"}, {"a", "b", "c"}},
		},
		{
			name:   "truncated",
			before: auditLine("old-1") + auditLine("old-2") + auditLine("old-3"),
			steps: []func(*testing.T, string){
				func(t *testing.T, p string) {
					if err := os.Truncate(p, 0); err != nil {
						t.Fatal(err)
					}
					appendTo(t, p, auditLine("after"))
				},
			},
			want: [][]string{{"after"}},
		},
		{
			name:   "created late",
			before: "-",
			steps:  []func(*testing.T, string){func(t *testing.T, p string) { appendTo(t, p, auditLine("first")) }},
			want:   [][]string{{"first"}},
		},
		{
			name: "not audit events",
			steps: []func(*testing.T, string){func(t *testing.T, p string) {
				appendTo(t, p, "not json\n"+`{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}`+"\n\n"+auditLine("good"))
			}},
			want:     [][]string{{"good"}},
			unparsed: 2,
		},
		{
			name: "a line too long",
			steps: []func(*testing.T, string){func(t *testing.T, p string) {
				appendTo(t, p, `{"kind":"Event","x":"`+strings.Repeat("a", maxAuditLine)+"\"}\n"+auditLine("after-long"))
			}},
			want:     [][]string{{"after-long"}},
			unparsed: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if tc.before != "-" {
				appendTo(t, path, tc.before)
			}
			c := &collector{}
			a, err := followAuditLogs([]string{path}, "cluster-a", c.emit)
			if err != nil {
				t.Fatal(err)
			}
			defer a.stop()
			for i, step := range tc.steps {
				step(t, path)
				c.waitFor(t, tc.want[i])
			}
			if n := a.unparsed.Load(); n != tc.unparsed {
				t.Errorf("%d lines unparsed, want %d", n, tc.unparsed)
			}
		})
	}
}

// The config: mode logs needs the logs to follow; each must be named.
func TestAuditLogsConfig(t *testing.T) {
	tests := []struct {
		toml, err string
	}{
		{`mode = "logs"`, `local: config: mode "logs" needs kubernetes_audit_logs (the files to follow)`},
		{"mode = \"logs\"\nkubernetes_audit_logs = [\"\"]", `local: config: kubernetes_audit_logs[0] is empty`},
		{"mode = \"logs\"\nkubernetes_audit_logs = [\"/var/log/kube-apiserver/audit.log\"]", ``},
		{`mode = "tail"`, `local: config: mode "tail": want "live", "logs" or "replay"`},
	}
	for _, tc := range tests {
		_, err := parseConfig([]byte(tc.toml))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%s: error %q, want %q", tc.toml, got, tc.err)
		}
	}
}
