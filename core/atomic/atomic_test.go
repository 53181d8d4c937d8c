package atomic

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/vigilsec/vigil/core/catalog"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	corpus = "testdata/atomic-red-team"
	broken = "testdata/broken"
)

// load imports dir and loads the result through the catalog, as `vigil run
// --atomics` does.
func load(t *testing.T, dir string, opts Options) (*Result, *catalog.Catalog) {
	t.Helper()
	r, err := Import(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(r.Source())
	if err != nil {
		t.Fatalf("converted tests do not load: %v", err)
	}
	r.Relocate(c)
	return r, c
}

func get(t *testing.T, c *catalog.Catalog, id string) *catalog.Test {
	t.Helper()
	ct, ok := c.Get(id)
	if !ok {
		t.Fatalf("no test %s", id)
	}
	return ct
}

func TestImportCounts(t *testing.T) {
	r, c := load(t, corpus, Options{})
	if r.Files != 9 || len(r.Tests) != 36 || len(c.Tests) != 36 {
		t.Errorf("files %d, tests %d, loaded %d; want 9, 36, 36", r.Files, len(r.Tests), len(c.Tests))
	}
	want := map[string]int{ReasonPlatform: 33, ReasonExecutor: 5, ReasonTechnique: 9}
	if got := r.SkippedByReason(); !reflect.DeepEqual(got, want) {
		t.Errorf("skipped by reason %v, want %v", got, want)
	}
	abs, _ := filepath.Abs(filepath.Join(corpus, "atomics"))
	if r.AtomicsDir != abs {
		t.Errorf("AtomicsDir %s, want %s", r.AtomicsDir, abs)
	}
	// The atomics directory itself works as well as the checkout.
	r2, err := Import(filepath.Join(corpus, "atomics"), Options{})
	if err != nil || len(r2.Tests) != 36 || r2.Tests[0].Origin.File != filepath.Join(corpus, "atomics", "T1007", "T1007.yaml") {
		t.Errorf("importing the atomics directory: %v, %d tests, first from %v", err, len(r2.Tests), r2.Tests[0].Origin)
	}
}

// TestConvertFields checks each atomic field's conversion on corpus atomics.
func TestConvertFields(t *testing.T) {
	_, c := load(t, corpus, Options{})
	atomics, _ := filepath.Abs(filepath.Join(corpus, "atomics"))
	for _, ct := range c.Tests {
		if want := "atomic-red-team/" + string(ct.Technique.ID); ct.SerialGroup != want {
			t.Errorf("%s: serial group %q, want %q", ct.ID, ct.SerialGroup, want)
		}
		if ct.Inject.Params["ignore_exit"] != true {
			t.Errorf("%s: inject params %q lack ignore_exit = true (Atomic Red Team ignores exit codes)", ct.ID, ct.Inject.Params)
		}
	}
	yaml := func(tid string) string { return filepath.Join(corpus, "atomics", tid, tid+".yaml") }
	cases := []struct {
		name, id string
		check    func(t *testing.T, ct *catalog.Test)
	}{
		{"metadata, guid, references, position", "art-t1016-c141bbdb", func(t *testing.T, ct *catalog.Test) {
			if ct.Name != "System Network Configuration Discovery" || ct.AtomicGUID != "c141bbdb-7fca-4254-9fd6-f47e79447e17" ||
				ct.Technique.ID != "T1016" || !reflect.DeepEqual(ct.Platforms, []string{"linux"}) {
				t.Errorf("got %q %q %s %v", ct.Name, ct.AtomicGUID, ct.Technique.ID, ct.Platforms)
			}
			if !strings.HasPrefix(ct.Description, "Identify network configuration information.\nUpon successful execution") {
				t.Errorf("description %q", ct.Description)
			}
			if want := []string{"https://attack.mitre.org/techniques/T1016/", "https://github.com/redcanaryco/atomic-red-team/blob/master/atomics/T1016/T1016.md"}; !reflect.DeepEqual(ct.References, want) {
				t.Errorf("references %q", ct.References)
			}
			if want := (catalog.Position{File: yaml("T1016"), Line: 32}); ct.Source != want || ct.Expect[0].Source != want {
				t.Errorf("source %v, expect source %v, want %v", ct.Source, ct.Expect[0].Source, want)
			}
			if len(ct.Expect) != 1 || ct.Expect[0].Technique != "T1016" || ct.Expect[0].Rule != "" || ct.Expect[0].Absent {
				t.Errorf("expect %+v, want the default expectation", ct.Expect)
			}
			if ct.Inject.Plugin != "exec" || ct.Inject.Params["shell"] != "/bin/sh" || !strings.HasPrefix(ct.Inject.Params["command"].(string), `if [ "$(uname)" = 'FreeBSD' ]`) {
				t.Errorf("inject %+v", ct.Inject)
			}
		}},
		{"sh dependencies become prerequisites; get needs network", "art-t1016-c141bbdb", func(t *testing.T, ct *catalog.Test) {
			want := []catalog.Prerequisite{{
				Description: "Check if arp command exists on the machine",
				Check:       "if [ -x \"$(command -v arp)\" ]; then exit 0; else exit 1; fi;\n",
				Get:         "(which yum && yum -y install net-tools)||(which apt-get && DEBIAN_FRONTEND=noninteractive apt-get install -y net-tools)\n",
			}}
			if !reflect.DeepEqual(ct.Prerequisites, want) {
				t.Errorf("prerequisites %q\nwant %q", ct.Prerequisites, want)
			}
			if !reflect.DeepEqual(ct.Tags, []string{TagAtomic, TagNetwork}) || ct.Safety != catalog.SafetySafe || ct.ElevationRequired || ct.Cleanup != nil {
				t.Errorf("tags %v safety %s elevation %v cleanup %v", ct.Tags, ct.Safety, ct.ElevationRequired, ct.Cleanup)
			}
		}},
		{"input arguments, raw placeholders, bash executor, elevation, cleanup", "art-t1560-001-c51cec55", func(t *testing.T, ct *catalog.Test) {
			if want := map[string]string{"input_files": "/var/log/{w,b}tmp", "output_file": "$HOME/data.zip"}; !reflect.DeepEqual(ct.Args, want) {
				t.Errorf("args %q", ct.Args)
			}
			if ct.Inject.Params["shell"] != "/bin/bash" || ct.Inject.Params["command"] != "zip {{args.output_file | raw}} {{args.input_files | raw}}\n" {
				t.Errorf("inject %q", ct.Inject.Params)
			}
			if ct.Cleanup == nil || ct.Cleanup.Params["command"] != "rm -f {{args.output_file | raw}}\n" {
				t.Errorf("cleanup %+v", ct.Cleanup)
			}
			if !ct.ElevationRequired || ct.Safety != catalog.SafetyReversible {
				t.Errorf("elevation %v safety %s", ct.ElevationRequired, ct.Safety)
			}
		}},
		{"bash dependency_executor_name wraps prerequisites in bash", "art-t1560-001-c51cec55", func(t *testing.T, ct *catalog.Test) {
			if len(ct.Prerequisites) != 1 {
				t.Fatalf("prerequisites %q", ct.Prerequisites)
			}
			p := ct.Prerequisites[0]
			if p.Description != "Files to zip must exist (/var/log/{w,b}tmp)" {
				t.Errorf("description %q", p.Description)
			}
			want := "/bin/bash -c \"$(cat <<'VIGIL_ATOMIC'\nif [ $(ls {{args.input_files | raw}} | wc -l) > 0 ] && [ -x $(which zip) ] ; then exit 0; else exit 1; fi;\nVIGIL_ATOMIC\n)\"\n"
			if p.Check != want {
				t.Errorf("check %q\nwant  %q", p.Check, want)
			}
		}},
		{"PathToAtomicsFolder resolves to the checkout; payload tag", "art-t1222-002-973631cf", func(t *testing.T, ct *catalog.Test) {
			if want := atomics + "/T1222.002/src/T1222.002.c"; ct.Args["source_file"] != want {
				t.Errorf("source_file %q, want %q", ct.Args["source_file"], want)
			}
			if !reflect.DeepEqual(ct.Tags, []string{TagAtomic, TagPayload}) {
				t.Errorf("tags %v", ct.Tags)
			}
			if ct.Prerequisites[0].Description != "Compile the script from ("+atomics+"/T1222.002/src/T1222.002.c). Destination is /tmp/T1222002" {
				t.Errorf("prerequisite %q", ct.Prerequisites[0].Description)
			}
		}},
		{"no cleanup, writes outside /tmp: destructive", "art-t1552-003-3cfde62b", func(t *testing.T, ct *catalog.Test) {
			if ct.Safety != catalog.SafetyDestructive {
				t.Errorf("safety %s", ct.Safety)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, get(t, c, tc.id)) })
	}
}

// TestArgOverrides: defaults apply, --arg overrides them, and the value is
// substituted raw, so the shell parses it as an atomic's #{name} would be.
func TestArgOverrides(t *testing.T) {
	_, c := load(t, corpus, Options{Techniques: []string{"T1552.003"}})
	ct := get(t, c, "art-t1552-003-3cfde62b")
	render := func(specs ...string) string {
		t.Helper()
		o, err := catalog.ParseArgOverrides(specs)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Check([]*catalog.Test{ct}); err != nil {
			t.Fatal(err)
		}
		out, err := catalog.Render(ct.Inject.Params, catalog.Vars{Args: o.Resolve(ct)}, map[string]bool{"command": true})
		if err != nil {
			t.Fatal(err)
		}
		return out["command"].(string)
	}
	if got, want := render(), "cat ~/.bash_history | grep -e '-p ' -e 'pass' -e 'ssh' > ~/loot.txt\n"; got != want {
		t.Errorf("defaults: %q\nwant %q", got, want)
	}
	got := render("output_file=/tmp/loot file.txt", "art-t1552-003-3cfde62b.bash_history_grep_args=-e root")
	if want := "cat ~/.bash_history | grep -e root > /tmp/loot file.txt\n"; got != want {
		t.Errorf("overrides: %q\nwant %q", got, want)
	}

	// The shell sees the raw value: a grep argument list stays several words.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	hist := filepath.Join(dir, "history")
	if err := os.WriteFile(hist, []byte("ls\nssh -p 22 root@host\nmysql -ppass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "loot")
	cmd := exec.Command(sh, "-c", render("bash_history_filename="+hist, "output_file="+out))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if b, _ := os.ReadFile(out); string(b) != "ssh -p 22 root@host\nmysql -ppass\n" {
		t.Errorf("loot %q", b)
	}
}

// TestSkipped: every atomic that is not converted is listed with its file,
// line and reason.
func TestSkipped(t *testing.T) {
	r, _ := load(t, corpus, Options{})
	yaml := func(tid string) string { return filepath.Join(corpus, "atomics", tid, tid+".yaml") }
	want := map[string]bool{
		yaml("T1016") + `:4: T1016 #1 "System Network Configuration Discovery on Windows" no linux platform: supported_platforms: windows`:                                  true,
		yaml("T1027.013") + `:19: T1027.013 #1 "Decode Eicar File and Write to File" unsupported executor: executor "powershell" (vigil runs sh and bash)`:                  true,
		yaml("T1048.003") + `:28: T1048.003 #1 "Exfiltration Over Alternative Protocol - HTTP" unsupported executor: executor "manual": steps for a person, nothing to run`: true,
		yaml("T1690") + `:54: T1690 #4 "Clear bash history" unknown technique: attack_technique T1690: unknown ATT&CK Enterprise technique (ATT&CK v18.1)`:                  true,
	}
	for _, s := range r.Skipped {
		delete(want, s.String())
	}
	for w := range want {
		t.Errorf("not skipped: %s", w)
	}
	if d := r.Details(false); strings.Contains(d, ReasonPlatform) || !strings.Contains(d, "T1690 #4") {
		t.Errorf("Details(false) lists platform skips or misses others:\n%s", d)
	}
	if d := r.Details(true); !strings.Contains(d, ReasonPlatform) {
		t.Error("Details(true) does not list platform skips")
	}
}

// TestBrokenFiles: a file that is not YAML, and a malformed atomic, are
// reported with file and line, and everything else still imports.
func TestBrokenFiles(t *testing.T) {
	r, c := load(t, broken, Options{})
	yaml := func(tid string) string { return filepath.Join(broken, "atomics", tid, tid+".yaml") }
	var got []string
	for _, s := range r.Skipped {
		if s.Reason != ReasonPlatform {
			got = append(got, s.String())
		}
	}
	want := []string{
		yaml("T1059.004") + ":3: malformed atomic: did not find expected key",
		yaml("T1082") + ":16: T1082 #2 malformed atomic: cannot unmarshal !!map into []string",
		yaml("T1082") + `:25: T1082 #3 "No command" malformed atomic: executor has no command`,
		yaml("T1082") + `:34: T1082 #5 "Catalog placeholder syntax" invalid after conversion: catalog: inject.params.command: unknown placeholder {{end}} (known: {{marker}}, {{tmpdir}}, {{host}}, {{target}}, {{test_id}}, {{args.NAME}})`,
		yaml("T1082") + `:42: T1082 #6 "Same GUID as the first" invalid after conversion: test id art-t1082-00000000 is also the id of ` + yaml("T1082") + `:4 (duplicate auto_generated_guid?)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var ids []string
	for _, ct := range c.Tests {
		ids = append(ids, ct.ID)
	}
	if want := []string{"art-t1007-8f2a5d2b", "art-t1007-f4b26bce", "art-t1082-00000000", "art-t1082-4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("imported %q, want %q", ids, want)
	}
	// No GUID: the ID falls back to the test number; no description: the name.
	if ct := get(t, c, "art-t1082-4"); ct.AtomicGUID != "" || ct.Description != "Good hostname, no GUID" {
		t.Errorf("guid %q description %q", ct.AtomicGUID, ct.Description)
	}
}

func TestTechniqueFilter(t *testing.T) {
	r, err := Import(corpus, Options{Techniques: []string{"T1070", "t1016"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ct := range r.Tests {
		seen[string(ct.Technique)] = true
	}
	if !reflect.DeepEqual(seen, map[string]bool{"T1070.003": true, "T1016": true}) || r.Files != 2 {
		t.Errorf("techniques %v from %d files", seen, r.Files)
	}
	if _, err := Import(corpus, Options{Techniques: []string{"T99"}}); err == nil {
		t.Error("a malformed technique filter is not an error")
	}
	if _, err := Import(filepath.Join(corpus, "nope"), Options{}); err == nil {
		t.Error("a missing directory is not an error")
	}
}

// TestGolden compares converted files with testdata/golden; the atomics
// directory's absolute path is written $ATOMICS there.
func TestGolden(t *testing.T) {
	r, err := Import(corpus, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"art-t1560-001-c51cec55", "art-t1222-002-973631cf", "art-t1070-003-784e4011"} {
		t.Run(id, func(t *testing.T) {
			var ct *Test
			for _, x := range r.Tests {
				if x.ID == id {
					ct = x
				}
			}
			if ct == nil {
				t.Fatalf("no test %s", id)
			}
			got := strings.ReplaceAll(string(ct.TOML), r.AtomicsDir, "$ATOMICS")
			path := filepath.Join("testdata", "golden", id+".toml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", id, path, got)
			}
		})
	}
}

// TestWrite writes the converted tests and loads them as a catalog
// directory (what `vigil validate --catalog OUT` does).
func TestWrite(t *testing.T) {
	r, err := Import(corpus, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	files, err := r.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 36 || files[0] != filepath.Join(out, "linux", "discovery", "art-t1007-f4b26bce.toml") {
		t.Errorf("wrote %d files, first %s", len(files), files[0])
	}
	c, err := catalog.Load(catalog.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tests) != 36 {
		t.Errorf("loaded %d tests", len(c.Tests))
	}
}

// TestClassify: a test is reversible only when its cleanup undoes what its
// command changes, destructive when classify cannot tell, and safe only
// when the command changes nothing.
func TestClassify(t *testing.T) {
	cases := []struct {
		name, command, cleanup string
		want                   string
		why                    string // in the reason
	}{
		{"discovery", "cat /etc/passwd\nid", "", "safe", ""},
		{"discovery to /dev/null", "ps aux | grep -v grep | grep sshd > /dev/null 2>&1", "", "safe", ""},
		{"a cleanup with nothing to undo", "systemctl list-units --type=service --all", `echo "No cleanup required"`, "safe", ""},
		{"not the at command", "echo look at this", "", "safe", ""},
		{"temporary output", "uname -a > /tmp/T1082.txt", "", "reversible", "temporary"},
		{"temporary copies", "cp /etc/passwd /tmp/x; tar -czf /tmp/a.tgz /etc", "", "reversible", "temporary"},
		{"the working directory", "echo x > out.txt", "", "reversible", "temporary"},
		{"dd into /tmp", "dd if=/dev/zero of=/tmp/x bs=1 count=1", "", "reversible", "temporary"},
		{"cron file removed", `echo "* * * * * id" > /etc/cron.d/persistevil`, "rm /etc/cron.d/persistevil -f", "reversible", "removes /etc/cron.d/persistevil"},
		{"directory and file removed", "mkdir $HOME/...\ncp $(which sh) $HOME/...\n$HOME/.../sh -c id", "rm -f $HOME/.../sh\nrmdir $HOME/.../", "reversible", "removes ~/..."},
		{"account created and deleted", "useradd -M -N -r -s /bin/bash -c evil_account art", "userdel art", "reversible", "useradd art / userdel art"},
		{"password of the account it created", `useradd -g 0 -M -d /root -s /bin/bash butter` + "\n" + `echo "butter:BetterWithButter" | sudo chpasswd`, "userdel butter", "reversible", ""},
		{"useradd -p with a substitution", "useradd -G sudo -s /bin/bash -p $(openssl passwd -1 password123) art", "userdel -f art", "reversible", "userdel art"},
		{"userdel -r of a home it did not create", "useradd -G sudo -s /bin/bash art", "userdel -fr art", "destructive", "/home/art"},
		{"home directory left", "useradd --create-home --shell /bin/bash art", "userdel art", "destructive", "home directory"},
		{"own service unit", "echo '[Service]' > /etc/systemd/system/art.service\nsystemctl daemon-reload\nsystemctl enable art.service\nsystemctl start art", "systemctl stop art\nsystemctl disable art.service\nrm -f /etc/systemd/system/art.service\nsystemctl daemon-reload", "reversible", "removes /etc/systemd/system/art.service"},
		{"own background process", "sleep 100 &\necho $! > /tmp/pid\nkill $!", "", "reversible", ""},

		// What the issue found labelled reversible or safe.
		{"password of an existing account", `echo "nobody:Atomic123" | chpasswd`, "usermod -s /usr/sbin/nologin nobody", "destructive", "an account it did not create (chpasswd)"},
		{"passwd", "passwd nobody", "", "destructive", "passwd"},
		{"usermod", "usermod -aG sudo nobody", "usermod -G nogroup nobody", "destructive", "usermod"},
		{"authorized_keys rewritten", `echo "ssh-rsa AAAA art" > ~/.ssh/authorized_keys`, "rm -f /tmp/art-key", "destructive", "~/.ssh/authorized_keys"},
		{"authorized_keys appended, cleanup edits", `echo "ssh-rsa AAAA art" >> ~/.ssh/authorized_keys`, `sed -i '/art$/d' ~/.ssh/authorized_keys`, "destructive", "in place"},
		{"cpan", "PERL_MM_USE_DEFAULT=1 cpan", "", "destructive", "software (cpan)"},
		{"pip", "pip3 install --user impacket", "pip3 uninstall -y impacket", "destructive", "software (pip3)"},
		{"gem", "gem install evil-winrm", "", "destructive", "gem"},
		{"npm", "npm install -g left-pad", "", "destructive", "npm"},
		{"go install", "go install example.com/x@latest", "", "destructive", "go install"},
		{"apt", "sudo apt-get install -y zip", "", "destructive", "apt-get"},
		{"vim on sudoers", "sudo vim /etc/sudoers", "", "destructive", "editor"},
		{"ee", "sudo ee /etc/sudoers", "", "destructive", "editor"},
		{"visudo", "visudo -c", "", "destructive", "visudo"},
		{"service stopped and started", "sudo systemctl stop cron", "sudo systemctl start cron", "destructive", "service cron"},
		{"killed by name", "sudo pkill -SIGTERM cron", "sudo systemctl start cron", "destructive", "kills"},
		{"crontab replaced", "crontab -l > /tmp/notevil\necho '* * * * * id' > /tmp/persistevil && crontab /tmp/persistevil", "crontab /tmp/notevil", "destructive", "crontab"},
		{"appended, head -n -2 in cleanup", "echo 'id' >> ~/.bashrc", "head -n '-2' ~/.bashrc > /tmp/T1546.004\nmv /tmp/T1546.004 ~/.bashrc", "destructive", "~/.bashrc"},
		{"appended, sed in cleanup", "echo '# art' >> /etc/profile", `sed -i "s/# art//" /etc/profile`, "destructive", "/etc/profile"},
		{"backup of a file that may not exist", "sudo cp /etc/pam.d/password-auth /tmp/pa.bk\necho x >> /etc/pam.d/password-auth", "sudo cp -f /tmp/pa.bk /etc/pam.d/password-auth", "destructive", "/etc/pam.d/password-auth"},
		{"backup of a system file restored", "cp /etc/hosts /tmp/hosts.bak\necho '10.0.0.1 evil' >> /etc/hosts", "cp /tmp/hosts.bak /etc/hosts", "reversible", "restores /etc/hosts"},
		{"system file overwritten, then removed", "echo evil > /etc/hosts", "rm -f /etc/hosts", "destructive", "overwrites /etc/hosts"},
		{"clock set", "date 010100001971\ntouch /tmp/x", "rm -f /tmp/x", "destructive", "clock"},
		{"audit rules", "auditctl -a always,exit -F arch=b64 -S execve -k CMDS", "systemctl restart auditd", "destructive", "audit"},
		{"bind mount left", "sudo mount -B /proc/1 /proc/$(cat /tmp/evil_pid.txt)", "kill $(cat /tmp/evil_pid.txt)", "destructive", "mount"},
		{"cleanup deletes what it did not create", "echo x > /tmp/x", "rm -rf /opt/app", "destructive", "cleanup changes or deletes /opt/app"},
		{"cleanup deletes a user it did not create", "ssh testuser1@localhost -T hostname", "userdel -f testuser1", "destructive", "cleanup"},
		{"history file linked to /dev/null", "ln -sf /dev/null ~/.bash_history", "", "destructive", "~/.bash_history"},
		{"logs deleted", "rm -rf /var/log/*", "", "destructive", "/var/log/*"},
		{"writes under a variable", "cat ~/.bash_history > $HOME/loot.txt", "", "destructive", "~/loot.txt"},
		{"useradd without cleanup", "useradd -M -N -r -s /bin/bash art", "", "destructive", "account art"},
		{"at job", "if [ -x $(which at) ]; then echo id | at now; fi", "", "destructive", "at job"},
		{"dd outside /tmp", "dd if=/dev/zero of=/etc/x bs=1 count=1", "", "destructive", "/etc/x"},
		{"download outside /tmp", "curl -o /usr/local/bin/x https://example.com/x", "", "destructive", "/usr/local/bin/x"},
		{"the atomics folder is never temporary", "echo x > " + AtomicsFolder + "/T1/out.txt", "", "destructive", AtomicsFolder},
		{"sudo sh -c", `sudo sh -c 'echo evil >> /etc/ld.so.preload'`, "", "destructive", "/etc/ld.so.preload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := classify(tc.command, tc.cleanup)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("classify(%q, %q) = %s (%s), want %s (%q)", tc.command, tc.cleanup, got, why, tc.want, tc.why)
			}
		})
	}
}

func TestNeedsNetwork(t *testing.T) {
	for text, want := range map[string]bool{
		"curl -s http://example.com": true,
		"wget x":                     true,
		"(which apt-get && apt-get install -y zip)": true,
		"pip3 install impacket":                     true,
		"PERL_MM_USE_DEFAULT=1 cpan":                true,
		"python3 -m pip install x":                  true,
		"cat /etc/hosts":                            false,
		"echo curly":                                false,
	} {
		if got := needsNetwork(text); got != want {
			t.Errorf("needsNetwork(%q) = %v", text, got)
		}
	}
}

// TestTOMLString round-trips awkward strings through BurntSushi/toml.
func TestTOMLString(t *testing.T) {
	for _, s := range []string{
		"plain", `a "quoted" \ word`, "it's", "multi\nline\n", "ends with '\n'", "has ''' inside\n",
		"tab\there", "cr\r\nlf", "nul\x00byte", "ends with quote'", "\nleading newline", "bell\a\n", "ünïcode\n",
	} {
		var v struct{ S string }
		if _, err := toml.Decode("S = "+tomlString(s)+"\n", &v); err != nil {
			t.Errorf("tomlString(%q) = %s: %v", s, tomlString(s), err)
			continue
		}
		if v.S != s {
			t.Errorf("tomlString(%q) = %s decodes to %q", s, tomlString(s), v.S)
		}
	}
}

func TestArgSlug(t *testing.T) {
	for in, want := range map[string]string{"output_file": "output_file", "project-id": "project_id", "MimiPenguin_Location": "mimipenguin_location", "7zip_exe": "_7zip_exe"} {
		if got := argSlug(in); got != want {
			t.Errorf("argSlug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBashDependencies: a dependency whose executor is bash runs in bash
// even though the exec injector runs prerequisites with /bin/sh, and its
// raw placeholders are still parsed by bash.
func TestBashDependencies(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no /bin/bash")
	}
	check := inShell("/bin/bash", "[[ -n $BASH_VERSION ]] && printf '[%s]' {{args.words | raw}}\n")
	line, err := catalog.RenderString(check, catalog.Vars{Args: map[string]string{"words": `one "two three"`}}, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("sh -c %q: %v: %s", line, err, out)
	}
	if string(out) != "[one][two three]" {
		t.Errorf("output %q", out)
	}
	if got := inShell("/bin/sh", "true\n"); got != "true\n" {
		t.Errorf("sh dependency changed: %q", got)
	}
}
