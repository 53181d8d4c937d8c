package sensor

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/vigilsec/vigil/core/telemetry"
)

// normaliseFixture parses a testdata log and normalises every audit event in
// order with one Normaliser that reads no /proc (ancestry comes from the
// fixture alone) and resolves users from testdata/passwd.
func normaliseFixture(t *testing.T, name string) []telemetry.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	groups, err := ParseLog(f)
	if err != nil {
		t.Fatalf("ParseLog(%s): %v", name, err)
	}
	n := NewNormaliser(NormaliserConfig{Host: "fixture-host", PasswdFile: filepath.Join("testdata", "passwd")})
	var out []telemetry.Event
	for _, g := range groups {
		out = append(out, n.Normalise(g)...)
	}
	return out
}

// want describes one expected Event: it must exist (matched by sequence,
// logsource and the match fields) and carry the fields; absent lists fields
// it must not have.
type want struct {
	name     string
	seq      uint64
	src      telemetry.Logsource
	match    map[string]any // identifies the event among those of seq
	fields   map[string]any // must be present with these values
	absent   []string
	ancestry []string // when not nil, the exact ancestry
	marker   string   // when not "", some ancestry entry contains it
	count    int      // when > 0, how many events match (default: at least 1)
}

func (w want) check(t *testing.T, evs []telemetry.Event) {
	t.Helper()
	var found []telemetry.Event
	for _, e := range evs {
		if e.Sequence != w.seq || e.Source != w.src {
			continue
		}
		ok := true
		for k, v := range w.match {
			if !reflect.DeepEqual(e.Fields[k], v) {
				ok = false
				break
			}
		}
		if ok {
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no %s event with sequence %d matching %v", w.src, w.seq, w.match)
	}
	if w.count > 0 && len(found) != w.count {
		t.Errorf("%d matching events, want %d", len(found), w.count)
	}
	e := found[0]
	for k, v := range w.fields {
		if got := e.Fields[k]; !reflect.DeepEqual(got, v) {
			t.Errorf("field %s = %#v, want %#v", k, got, v)
		}
	}
	for _, k := range w.absent {
		if v, ok := e.Fields[k]; ok {
			t.Errorf("field %s = %#v, want it absent", k, v)
		}
	}
	if w.ancestry != nil && !reflect.DeepEqual(e.Ancestry, w.ancestry) {
		t.Errorf("ancestry = %q, want %q", e.Ancestry, w.ancestry)
	}
	if w.marker != "" && !containsMarker(e.Ancestry, w.marker) {
		t.Errorf("ancestry %q lacks %q", e.Ancestry, w.marker)
	}
	if e.Host != "fixture-host" {
		t.Errorf("host = %q", e.Host)
	}
}

func containsMarker(ancestry []string, marker string) bool {
	for _, a := range ancestry {
		if strings.Contains(a, marker) {
			return true
		}
	}
	return false
}

func TestNormaliseRecorded(t *testing.T) {
	evs := normaliseFixture(t, "records.log")
	const marker = "vigil-marker-REC"
	markedCrontab := "/bin/sh -c crontab -l " + marker
	longArg := "/bin/true " + strings.Repeat("A", 9000)
	cases := []want{
		{
			name: "process_creation of crontab -l from a marked shell",
			seq:  523, src: telemetry.ProcessCreation,
			fields: map[string]any{
				"Image": "/usr/bin/crontab", "CommandLine": "crontab -l",
				"CurrentDirectory": "/work/main/plugins/siem/local/sensor",
				"User":             "root", "LogonId": "4294967295",
				"ProcessId": "17198", "ParentProcessId": "17196",
				"ParentImage": "/usr/bin/dash", "ParentCommandLine": markedCrontab,
			},
			ancestry: []string{"crontab -l", markedCrontab},
		},
		{
			name: "SYSCALL of an execve: syscall by name, raw arguments, key",
			seq:  523, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{
				"syscall": "execve", "SYSCALL": "execve", "arch": "c000003e", "ARCH": "x86_64",
				"a0": "5570c7beed38", "a3": "8", "success": "yes", "exit": "0",
				"pid": "17198", "ppid": "17196", "comm": "crontab", "exe": "/usr/bin/crontab",
				"key": "vigil", "auid": "4294967295", "uid": "0", "euid": "0", "tty": "(none)",
			},
		},
		{
			name: "EXECVE with quoted and hex-encoded arguments",
			seq:  524, src: telemetry.Auditd, match: map[string]any{"type": "EXECVE"},
			fields: map[string]any{
				"argc": "4", "a0": "/bin/sh", "a1": "-c",
				"a2": `/bin/echo "hello world" 'it''s' "tab` + "\t" + `x" >/dev/null`,
				"a3": marker, "syscall": "execve", "exe": "/usr/bin/dash", "key": "vigil",
			},
		},
		{
			name: "EXECVE of the child: hex arguments with a space and a tab",
			seq:  539, src: telemetry.Auditd, match: map[string]any{"type": "EXECVE"},
			fields:   map[string]any{"a0": "/bin/echo", "a1": "hello world", "a2": "its", "a3": "tab\tx"},
			absent:   []string{"a4", "arch", "items"},
			ancestry: []string{"/bin/echo hello world its tab\tx", `/bin/sh -c /bin/echo "hello world" 'it''s' "tab` + "\t" + `x" >/dev/null ` + marker},
		},
		{
			name: "EXECVE split over records and pieces (a2_len, a2[0..])",
			seq:  542, src: telemetry.Auditd, match: map[string]any{"type": "EXECVE"},
			fields: map[string]any{"argc": "4", "a2": longArg, "a3": marker},
			absent: []string{"a2_len", "a2[0]", "a2[1]"},
			count:  1,
		},
		{
			name: "EXECVE of a 9000-byte argument",
			seq:  543, src: telemetry.ProcessCreation,
			fields: map[string]any{"Image": "/usr/bin/true", "CommandLine": longArg},
			marker: marker,
		},
		{
			name: "CWD record",
			seq:  523, src: telemetry.Auditd, match: map[string]any{"type": "CWD"},
			fields: map[string]any{"cwd": "/work/main/plugins/siem/local/sensor", "syscall": "execve", "pid": "17198"},
			absent: []string{"a0"},
		},
		{
			name: "PROCTITLE record, NULs turned into spaces",
			seq:  520, src: telemetry.Auditd, match: map[string]any{"type": "PROCTITLE"},
			fields: map[string]any{"proctitle": markedCrontab},
		},
		{
			name: "PATH items of an execve, one event each",
			seq:  523, src: telemetry.Auditd, match: map[string]any{"type": "PATH", "item": "1"},
			fields: map[string]any{"name": "/lib64/ld-linux-x86-64.so.2", "nametype": "NORMAL", "inode": "325835", "mode": "0100755", "ouid": "0", "syscall": "execve"},
		},
		{
			name: "PATH CREATE of a relative name under /var/log",
			seq:  563, src: telemetry.Auditd, match: map[string]any{"type": "PATH", "nametype": "CREATE"},
			fields: map[string]any{"name": "vigil-decoy.log", "syscall": "openat", "inode": "3186692", "exe": "/usr/bin/dash"},
			marker: marker,
		},
		{
			name: "file_event of the created file, made absolute with CWD",
			seq:  563, src: telemetry.FileEvent,
			fields: map[string]any{"TargetFilename": "/var/log/vigil-decoy.log", "Image": "/usr/bin/dash", "User": "root", "ProcessId": "17205"},
			marker: marker, count: 1,
		},
		{
			name: "rename: PATH DELETE of the old name",
			seq:  566, src: telemetry.Auditd, match: map[string]any{"type": "PATH", "nametype": "DELETE"},
			fields: map[string]any{"name": "vigil-decoy.log", "syscall": "renameat2"},
		},
		{
			name: "rename: file_event for the new name only",
			seq:  566, src: telemetry.FileEvent,
			fields: map[string]any{"TargetFilename": "/var/log/vigil-decoy.old", "Image": "/usr/bin/mv"},
			count:  1,
		},
		{
			name: "unlink: PATH DELETE",
			seq:  584, src: telemetry.Auditd, match: map[string]any{"type": "PATH", "nametype": "DELETE"},
			fields: map[string]any{"name": "/var/log/vigil-decoy.old", "syscall": "unlinkat", "comm": "rm"},
			marker: marker,
		},
		{
			name: "ANOM_ABEND: a standalone record with its own process fields",
			seq:  587, src: telemetry.Auditd, match: map[string]any{"type": "ANOM_ABEND"},
			fields: map[string]any{"sig": "11", "pid": "17211", "comm": "sh", "exe": "/usr/bin/dash", "res": "1", "auid": "4294967295"},
			absent: []string{"syscall"},
			marker: marker,
		},
		{
			name: "settimeofday SYSCALL",
			seq:  590, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"syscall": "settimeofday", "SYSCALL": "settimeofday", "success": "yes", "a1": "0", "key": "vigil"},
		},
		{
			name: "TIME_INJOFFSET inherits the syscall context",
			seq:  590, src: telemetry.Auditd, match: map[string]any{"type": "TIME_INJOFFSET"},
			fields: map[string]any{"sec": "-1", "nsec": "999989383", "syscall": "settimeofday", "exe": "/tmp/go-build/b001/sensor.test"},
		},
		{
			name: "clock_settime SYSCALL of date -s",
			seq:  596, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"syscall": "clock_settime", "a0": "0", "comm": "date"},
			marker: marker,
		},
		{
			name: "prlimit64 setting another process's limit",
			seq:  602, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"syscall": "prlimit64", "a0": "434c", "a1": "7", "comm": "prlimit"},
			marker: marker,
		},
		{
			name: "prlimit64 of ulimit in the shell itself",
			seq:  586, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"syscall": "prlimit64", "a1": "4"},
			marker: marker,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, evs) })
	}

	t.Run("no process_creation for non-exec events, none for EOE", func(t *testing.T) {
		for _, e := range evs {
			if e.Source == telemetry.ProcessCreation && e.Sequence == 590 {
				t.Errorf("process_creation for settimeofday: %v", e.Fields)
			}
			if e.Fields["type"] == "EOE" {
				t.Errorf("EOE emitted: %v", e.Fields)
			}
		}
	})
	t.Run("event time is the kernel timestamp", func(t *testing.T) {
		for _, e := range evs {
			if e.Sequence == 523 {
				want := time.Unix(1795425139, 98e6)
				if !e.Time.Equal(want) {
					t.Fatalf("time = %v, want %v", e.Time, want)
				}
				return
			}
		}
		t.Fatal("no event 523")
	})
}

func TestNormaliseSynthetic(t *testing.T) {
	evs := normaliseFixture(t, "synthetic.log")
	const marker = "vigil-marker-SYN"
	shell := "sh -c curl -s https " + marker
	cases := []want{
		{
			name: "marked shell, user resolved, auid as LogonId",
			seq:  9001, src: telemetry.ProcessCreation,
			fields:   map[string]any{"Image": "/usr/bin/dash", "CommandLine": shell, "User": "alice", "LogonId": "1000", "CurrentDirectory": "/home/alice"},
			absent:   []string{"ParentImage", "ParentCommandLine"},
			ancestry: []string{shell},
		},
		{
			name: "exec without fork keeps the replaced image in the ancestry",
			seq:  9002, src: telemetry.ProcessCreation,
			fields:   map[string]any{"Image": "/usr/bin/curl", "CommandLine": "curl -s", "ProcessId": "4000", "ParentProcessId": "3999"},
			ancestry: []string{"curl -s", shell},
		},
		{
			name: "execveat with split argv, several keys, hex cwd",
			seq:  9003, src: telemetry.ProcessCreation,
			fields: map[string]any{
				"CommandLine": "bash helloworld two words? new\nline", "CurrentDirectory": "/tmp/with spaces",
				"ParentImage": "/usr/bin/curl", "ParentCommandLine": "curl -s",
			},
			ancestry: []string{"bash helloworld two words? new\nline", "curl -s", shell},
		},
		{
			name: "merged EXECVE records",
			seq:  9003, src: telemetry.Auditd, match: map[string]any{"type": "EXECVE"},
			fields: map[string]any{"argc": "4", "a0": "bash", "a1": "helloworld", "a2": "two words?", "a3": "new\nline", "syscall": "execveat", "key": []string{"vigil", "exec"}},
			count:  1,
		},
		{
			name: "failed execve: SYSCALL and PATH, no process_creation",
			seq:  9004, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"success": "no", "exit": "-2", "syscall": "execve"},
		},
		{
			name: "write-open of an existing file gives a file_event",
			seq:  9005, src: telemetry.FileEvent,
			fields:   map[string]any{"TargetFilename": "/etc/ld.so.preload", "Image": "/usr/bin/tee", "User": "root", "ProcessId": "4003"},
			ancestry: []string{"tee -a ld.so.preload"},
		},
		{
			name: "read of /etc/shadow is a PATH record",
			seq:  9006, src: telemetry.Auditd, match: map[string]any{"type": "PATH"},
			fields: map[string]any{"name": "/etc/shadow", "syscall": "openat", "ogid": "42"},
		},
		{
			name: "user-space record: msg payload flattened, hex cmd decoded",
			seq:  9007, src: telemetry.Auditd, match: map[string]any{"type": "USER_CMD"},
			fields: map[string]any{"pid": "4005", "cmd": "cat /etc/shadow", "cwd": "/home/alice", "exe": "/usr/bin/sudo", "terminal": "pts/0", "res": "success"},
			absent: []string{"msg"},
		},
		{
			name: "ENRICHED log format: interpreted fields kept, null key dropped",
			seq:  9008, src: telemetry.Auditd, match: map[string]any{"type": "SYSCALL"},
			fields: map[string]any{"syscall": "mount", "SYSCALL": "mount", "AUID": "alice", "UID": "root", "comm": "mount"},
			absent: []string{"key"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, evs) })
	}
	for _, e := range evs {
		switch {
		case e.Source == telemetry.ProcessCreation && e.Sequence == 9004:
			t.Errorf("process_creation for a failed execve")
		case e.Source == telemetry.FileEvent && e.Sequence == 9006:
			t.Errorf("file_event for a read: %v", e.Fields)
		}
	}
}

func TestNormalisePure(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "synthetic.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	groups, err := ParseLog(f)
	if err != nil {
		t.Fatal(err)
	}
	// The same input gives the same output, and nothing leaks between calls.
	a := Normalise("h", groups[2])
	b := Normalise("h", groups[2])
	if !reflect.DeepEqual(a, b) || len(a) == 0 {
		t.Fatalf("Normalise is not deterministic: %v vs %v", a, b)
	}
	for _, e := range a {
		if e.Source == telemetry.ProcessCreation {
			if _, ok := e.Fields["ParentImage"]; ok {
				t.Errorf("stateless Normalise knows a parent: %v", e.Fields)
			}
			if e.Fields["User"] != "1000" {
				t.Errorf("User = %v, want the numeric uid without a passwd file", e.Fields["User"])
			}
		}
	}
	if Normalise("h", nil) != nil {
		t.Error("Normalise(nil) is not nil")
	}
}

func TestNormaliseIgnores(t *testing.T) {
	lines := strings.Join([]string{
		`type=CONFIG_CHANGE msg=audit(1700000001.000:1): auid=4294967295 ses=4294967295 op=add_rule key="vigil" list=4 res=1`,
		`type=CONFIG_CHANGE msg=audit(1700000001.000:2): auid=0 ses=1 op=add_rule key="other" list=4 res=1`,
		`type=SYSCALL msg=audit(1700000001.000:3): arch=c000003e syscall=44 success=yes exit=60 a0=7 a1=1 a2=3c a3=0 items=0 ppid=1 pid=777 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="vigil" exe="/usr/bin/vigil" key=(null)`,
		`type=EOE msg=audit(1700000001.000:3): `,
	}, "\n")
	groups, err := ParseLog(strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	n := NewNormaliser(NormaliserConfig{IgnorePID: 777, IgnoreKey: "vigil"})
	var got []string
	for _, g := range groups {
		for _, e := range n.Normalise(g) {
			got = append(got, e.Get("type")+":"+e.Get("key"))
		}
	}
	if want := []string{"CONFIG_CHANGE:other"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestParseLogErrors(t *testing.T) {
	_, err := ParseLog(strings.NewReader("# comment\n\nnot an audit line\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
}

// BenchmarkNormalise measures the processing path of one exec event (seven
// records) without the kernel: parse, reassemble, normalise.
func BenchmarkNormalise(b *testing.B) {
	f, err := os.Open(filepath.Join("testdata", "records.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	groups, err := ParseLog(f)
	if err != nil {
		b.Fatal(err)
	}
	var exec []*auparse.AuditMessage
	for _, g := range groups {
		if g[0].Sequence == 523 {
			exec = g
		}
	}
	n := NewNormaliser(NormaliserConfig{Host: "h", PasswdFile: filepath.Join("testdata", "passwd")})
	b.ReportAllocs()
	for b.Loop() {
		if len(n.Normalise(exec)) == 0 {
			b.Fatal("no events")
		}
	}
	b.ReportMetric(float64(len(exec))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
