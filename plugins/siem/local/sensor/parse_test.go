package sensor

import (
	"reflect"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
)

func TestRecordFields(t *testing.T) {
	cases := []struct {
		name string
		typ  auparse.AuditMessageType
		body string
		want map[string]string
	}{
		{
			name: "quoted, unquoted, hex, null and unknown values",
			typ:  auparse.AUDIT_SYSCALL,
			body: `arch=c000003e syscall=59 a0=7ffd41 comm="ls" exe=2F746D702F6120622F6C73 key=(null) hostname=? tty=(none)`,
			want: map[string]string{"arch": "c000003e", "syscall": "59", "a0": "7ffd41", "comm": "ls", "exe": "/tmp/a b/ls", "tty": "(none)"},
		},
		{
			name: "SYSCALL arguments are never hex-decoded",
			typ:  auparse.AUDIT_SYSCALL,
			body: `a0=41 a1=4142 a2=DEAD`,
			want: map[string]string{"a0": "41", "a1": "4142", "a2": "DEAD"},
		},
		{
			name: "EXECVE arguments and pieces are",
			typ:  auparse.AUDIT_EXECVE,
			body: `argc=3 a0="echo" a1=4142 a2_len=4 a2[0]=4142 a2[1]="CD"`,
			want: map[string]string{"argc": "3", "a0": "echo", "a1": "AB", "a2_len": "4", "a2[0]": "AB", "a2[1]": "CD"},
		},
		{
			name: "a lower-case or odd-length value is not hex",
			typ:  auparse.AUDIT_PATH,
			body: `name=deadbeef dev=fe:00 mode=0100644`,
			want: map[string]string{"name": "deadbeef", "dev": "fe:00", "mode": "0100644"},
		},
		{
			name: "user message payload flattened, outer keys win",
			typ:  auparse.AUDIT_USER_START,
			body: `pid=10 uid=0 auid=1000 ses=2 msg='op=PAM:session_open acct="root" exe="/usr/bin/sudo" pid=99 hostname=? res=success'`,
			want: map[string]string{"pid": "10", "uid": "0", "auid": "1000", "ses": "2", "op": "PAM:session_open", "acct": "root", "exe": "/usr/bin/sudo", "res": "success"},
		},
		{
			name: "quoted values with spaces survive",
			typ:  auparse.AUDIT_CONFIG_CHANGE,
			body: `op="remove rule" key="a b" list=4`,
			want: map[string]string{"op": "remove rule", "key": "a b", "list": "4"},
		},
		{
			name: "numbers that look like hex stay numbers",
			typ:  auparse.AUDIT_CONFIG_CHANGE,
			body: `op=set audit_backlog_limit=32768 old=64 auid=4294967295 ses=4294967295 res=1`,
			want: map[string]string{"op": "set", "audit_backlog_limit": "32768", "old": "64", "auid": "4294967295", "ses": "4294967295", "res": "1"},
		},
		{
			name: "bare words are skipped",
			typ:  auparse.AUDIT_AVC,
			body: `avc:  denied  { read } for  pid=5 comm="x"`,
			want: map[string]string{"pid": "5", "comm": "x"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := recordFields(c.typ, c.body); !reflect.DeepEqual(got, c.want) {
				t.Errorf("recordFields = %q\nwant            %q", got, c.want)
			}
		})
	}
}

func TestExecveArgs(t *testing.T) {
	cases := []struct {
		name string
		f    map[string]string
		want []string
	}{
		{"plain", map[string]string{"argc": "2", "a0": "ls", "a1": "-l"}, []string{"ls", "-l"}},
		{"pieces", map[string]string{"argc": "2", "a0": "x", "a1[0]": "ab", "a1[1]": "cd", "a1[2]": "e"}, []string{"x", "abcde"}},
		{"truncated stream stops at the first gap", map[string]string{"argc": "4", "a0": "x", "a1": "y", "a3": "z"}, []string{"x", "y"}},
		{"no argc counts what is there", map[string]string{"a0": "x", "a1": "y"}, []string{"x", "y"}},
		{"empty", map[string]string{"argc": "0"}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := execveArgs(c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("execveArgs = %q, want %q", got, c.want)
			}
		})
	}
}

func TestSyscallName(t *testing.T) {
	cases := []struct{ arch, nr, name, archName string }{
		{"c000003e", "59", "execve", "x86_64"},
		{"c000003e", "164", "settimeofday", "x86_64"},
		{"40000003", "25", "stime", "i386"},
		{"c00000b7", "221", "execve", "aarch64"},
		{"c000003e", "99999", "99999", "x86_64"},
		{"zz", "59", "59", "zz"},
	}
	for _, c := range cases {
		name, arch := syscallName(c.arch, c.nr)
		if name != c.name || arch != c.archName {
			t.Errorf("syscallName(%s, %s) = %s, %s; want %s, %s", c.arch, c.nr, name, arch, c.name, c.archName)
		}
	}
}

func TestRecordBody(t *testing.T) {
	cases := map[string]string{
		"audit(1700000000.123:42): a=1 b=2":   "a=1 b=2",
		"audit(1700000000.123:42):  a2[1]=41": "a2[1]=41",
		"audit(1700000000.123:42): ":          "",
	}
	for in, want := range cases {
		if got := recordBody(in); got != want {
			t.Errorf("recordBody(%q) = %q, want %q", in, got, want)
		}
	}
}
