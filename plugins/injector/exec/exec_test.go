//go:build unix

package exec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/internal/plugintest"
)

// mode is how a test reaches the injector: directly, or through go-plugin's
// gRPC shims.
type mode struct {
	name string
	wrap func(t *testing.T, impl *Injector) plugin.Injector
}

var modes = []mode{
	{"inproc", func(t *testing.T, impl *Injector) plugin.Injector { return impl }},
	{"grpc", func(t *testing.T, impl *Injector) plugin.Injector { return plugintest.Injector(t, impl) }},
}

// fixture is one test's injector, configured with a private tmp_root.
type fixture struct {
	inj    plugin.Injector
	impl   *Injector
	grpc   bool
	root   string
	marker string
}

func (f *fixture) workdir() string { return filepath.Join(f.root, f.marker) }

func (f *fixture) request(params plugin.Params) plugin.InjectRequest {
	return plugin.InjectRequest{
		TestID: "test-1", Technique: "T1059.004", Marker: f.marker, Workdir: f.workdir(),
		Params: params, Timeout: 10 * time.Second, Safety: "safe",
	}
}

func (f *fixture) inject(t *testing.T, params plugin.Params) plugin.InjectResult {
	t.Helper()
	r, err := f.inj.Inject(context.Background(), f.request(params))
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	return r
}

func (f *fixture) cleanup(t *testing.T, params plugin.Params) plugin.CleanupResult {
	t.Helper()
	r, err := f.inj.Cleanup(context.Background(), plugin.CleanupRequest{
		TestID: "test-1", Marker: f.marker, Workdir: f.workdir(), Params: params, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	return r
}

// forEachMode runs fn in parallel subtests, once per mode, each with a new
// injector configured with tmp_root = a fresh directory plus config.
func forEachMode(t *testing.T, config string, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			impl := new(Injector)
			f := &fixture{impl: impl, grpc: m.name == "grpc", root: root, marker: newMarker(t)}
			f.inj = m.wrap(t, impl)
			cfg := fmt.Sprintf("tmp_root = %q\n%s", root, config)
			if err := f.inj.Configure(context.Background(), []byte(cfg)); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			t.Cleanup(func() { _ = f.inj.Close(context.Background()) })
			fn(t, f)
		})
	}
}

func newMarker(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "vigil-" + hex.EncodeToString(b)
}

// shellQuote quotes s the way the engine quotes values substituted into
// shell params (catalog.ShellQuote).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// processGone reports whether pid has exited (a zombie counts as exited:
// the container's init may never reap orphans).
func processGone(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(f) == 0 || f[0] == "Z" || f[0] == "X"
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPid waits for the command to write a pid into file.
func readPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s: %v", file, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegistered(t *testing.T) {
	f, ok := plugin.LookupInjector(Name)
	if !ok {
		t.Fatal(`injector "exec" is not registered`)
	}
	d, err := f().Describe(context.Background())
	if err != nil || d.Name != Name {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
}

func TestDescribe(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		d, err := f.inj.Describe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "exec" || d.Kind != plugin.KindInjector || d.ProtocolVersion != plugin.ProtocolVersion {
			t.Errorf("Describe = %+v", d)
		}
		if !slices.Contains(d.Platforms, "linux") {
			t.Errorf("Platforms = %v, want linux", d.Platforms)
		}
		types := map[string]string{}
		for _, p := range d.Params {
			types[p.Name] = p.Type
			if p.Name == "command" && !p.Required {
				t.Errorf("command is not required")
			}
		}
		want := map[string]string{"command": "shell", "shell": "string", "env": "table", "expect_exit": "int", "stdin": "string", "cleanup.command": "shell"}
		for n, ty := range want {
			if types[n] != ty {
				t.Errorf("param %s: type %q, want %q", n, types[n], ty)
			}
		}
		if !d.ShellParams()["command"] {
			t.Errorf("command is not a shell param")
		}
		wantLoc := []plugin.MarkerLocation{plugin.MarkerCommandLine, plugin.MarkerEnvironment, plugin.MarkerFilePath}
		if fmt.Sprint(d.MarkerLocations) != fmt.Sprint(wantLoc) {
			t.Errorf("MarkerLocations = %v, want %v", d.MarkerLocations, wantLoc)
		}
	})
}

func TestInjectOutcomes(t *testing.T) {
	cases := []struct {
		name           string
		params         plugin.Params
		want           plugin.Outcome
		exit           int
		stdout, stderr string // {{marker}} and {{workdir}} are replaced
		errHas         string
	}{
		{name: "success captures stdout", params: plugin.Params{"command": "echo hello; echo world"},
			want: plugin.OutcomeSucceeded, stdout: "hello\nworld\n"},
		{name: "non-zero exit fails with code and stderr", params: plugin.Params{"command": "echo oops >&2; exit 3"},
			want: plugin.OutcomeFailed, exit: 3, stderr: "oops\n", errHas: "command exited 3, want 0: oops"},
		{name: "expect_exit makes a non-zero exit a success", params: plugin.Params{"command": "exit 3", "expect_exit": 3},
			want: plugin.OutcomeSucceeded, exit: 3},
		{name: "expect_exit makes a zero exit a failure", params: plugin.Params{"command": "true", "expect_exit": 1},
			want: plugin.OutcomeFailed, errHas: "command exited 0, want 1"},
		{name: "ignore_exit makes any exit a success and keeps the code", params: plugin.Params{"command": "echo oops >&2; exit 3", "ignore_exit": true},
			want: plugin.OutcomeSucceeded, exit: 3, stderr: "oops\n"},
		{name: "killed by a signal exits 128+N", params: plugin.Params{"command": "kill -TERM $$"},
			want: plugin.OutcomeFailed, exit: 143},
		{name: "marker is $0 and VIGIL_MARKER", params: plugin.Params{"command": `printf '%s|%s|%s' "$0" "$VIGIL_MARKER" "$VIGIL_TEST_ID"`},
			want: plugin.OutcomeSucceeded, stdout: "{{marker}}|{{marker}}|test-1"},
		{name: "runs in the workdir", params: plugin.Params{"command": `pwd; printf '%s\n' "$TMPDIR" "$VIGIL_WORKDIR" "$LANG"`},
			want: plugin.OutcomeSucceeded, stdout: "{{workdir}}\n{{workdir}}\n{{workdir}}\nC\n"},
		{name: "stdin", params: plugin.Params{"command": "cat", "stdin": "line 1\n$(not run)\n"},
			want: plugin.OutcomeSucceeded, stdout: "line 1\n$(not run)\n"},
		{name: "env param", params: plugin.Params{"command": `printf '%s|%s|%s' "$GREETING" "$N" "$FROM_CONFIG"`, "env": map[string]any{"GREETING": "hi $(there)", "N": 3}},
			want: plugin.OutcomeSucceeded, stdout: "hi $(there)|3|config"},
		{name: "test env overrides config env", params: plugin.Params{"command": `printf %s "$FROM_CONFIG"`, "env": map[string]any{"FROM_CONFIG": "test"}},
			want: plugin.OutcomeSucceeded, stdout: "test"},
		{name: "shell param", params: plugin.Params{"command": `echo "$0"`, "shell": "/bin/sh"},
			want: plugin.OutcomeSucceeded, stdout: "{{marker}}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "[env]\nFROM_CONFIG = \"config\"\n", func(t *testing.T, f *fixture) {
				repl := strings.NewReplacer("{{marker}}", f.marker, "{{workdir}}", f.workdir())
				before := time.Now().UTC()
				r := f.inject(t, tc.params)
				after := time.Now().UTC()
				if r.Outcome != tc.want || r.ExitCode != tc.exit {
					t.Errorf("Outcome, ExitCode = %s, %d; want %s, %d (error %q, stderr %q)", r.Outcome, r.ExitCode, tc.want, tc.exit, r.Error, r.Stderr)
				}
				if got, want := string(r.Stdout), repl.Replace(tc.stdout); got != want {
					t.Errorf("Stdout = %q, want %q", got, want)
				}
				if got, want := string(r.Stderr), repl.Replace(tc.stderr); got != want {
					t.Errorf("Stderr = %q, want %q", got, want)
				}
				if !strings.Contains(r.Error, tc.errHas) || (tc.errHas == "" && r.Error != "" && r.Outcome == plugin.OutcomeSucceeded) {
					t.Errorf("Error = %q, want it to contain %q", r.Error, tc.errHas)
				}
				if r.StartedAt.Before(before.Add(-time.Millisecond)) || r.EndedAt.After(after.Add(time.Millisecond)) || r.EndedAt.Before(r.StartedAt) ||
					r.StartedAt.Location() != time.UTC {
					t.Errorf("StartedAt, EndedAt = %v, %v; not within [%v, %v] in UTC", r.StartedAt, r.EndedAt, before, after)
				}
				host, _ := os.Hostname()
				if r.Host != host {
					t.Errorf("Host = %q, want %q", r.Host, host)
				}
				if len(r.Artifacts) != 1 || r.Artifacts[0] != (plugin.Artifact{Kind: "dir", Ref: f.workdir()}) {
					t.Errorf("Artifacts = %v, want the workdir", r.Artifacts)
				}
				if len(r.MarkerLocations) != 3 {
					t.Errorf("MarkerLocations = %v", r.MarkerLocations)
				}
				f.cleanup(t, nil)
			})
		})
	}
}

func TestHostileValuesAreNotExecuted(t *testing.T) {
	values := []string{
		`'; touch PWNED #`,
		`$(touch PWNED)`,
		"`touch PWNED`",
		"a\nb; touch PWNED",
		`"; touch PWNED; echo "`,
		`\'; touch PWNED; #`,
	}
	for i, v := range values {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				pwned := filepath.Join(f.root, "pwned")
				v := strings.ReplaceAll(v, "PWNED", pwned)
				// The engine renders `printf '%s\n' {{args.msg}}` with the
				// value shell-quoted.
				r := f.inject(t, plugin.Params{"command": `printf '%s\n' ` + shellQuote(v)})
				if r.Outcome != plugin.OutcomeSucceeded || string(r.Stdout) != v+"\n" {
					t.Errorf("Outcome %s, Stdout %q; want %q", r.Outcome, r.Stdout, v+"\n")
				}
				f.cleanup(t, plugin.Params{"command": `printf '%s\n' ` + shellQuote(v)})
				if _, err := os.Lstat(pwned); err == nil {
					t.Fatalf("%s was created: the value was executed", pwned)
				}
			})
		})
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	cases := []struct {
		name     string
		command  string
		min, max time.Duration
	}{
		// The shell and sleep die of SIGTERM.
		{"sigterm", `sleep 30 & echo $! > "$VIGIL_WORKDIR/child"; wait`, 0, 2 * time.Second},
		// Both ignore SIGTERM: SIGKILL after KillGrace.
		{"sigkill after grace", `trap '' TERM; sleep 30 & echo $! > "$VIGIL_WORKDIR/child"; wait; wait`, KillGrace, KillGrace + 2*time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				req := f.request(plugin.Params{"command": tc.command})
				req.Timeout = 300 * time.Millisecond
				start := time.Now()
				r, err := f.inj.Inject(context.Background(), req)
				took := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if r.Outcome != plugin.OutcomeTimedOut || !strings.Contains(r.Error, "timed out after 300ms") {
					t.Errorf("Outcome %s, Error %q; want timed_out", r.Outcome, r.Error)
				}
				if took < req.Timeout+tc.min || took > req.Timeout+tc.max {
					t.Errorf("Inject took %s, want %s..%s", took, req.Timeout+tc.min, req.Timeout+tc.max)
				}
				waitGone(t, readPid(t, filepath.Join(f.workdir(), "child")), time.Second)
				f.cleanup(t, nil)
			})
		})
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		child := filepath.Join(f.workdir(), "child")
		go func() {
			for i := 0; i < 300; i++ {
				if b, err := os.ReadFile(child); err == nil && bytes.HasSuffix(b, []byte("\n")) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
		}()
		r, err := f.inj.Inject(ctx, f.request(plugin.Params{"command": `sleep 30 & echo $! > "$VIGIL_WORKDIR/child"; wait`}))
		switch {
		case f.grpc:
			// The client gives up at once; the plugin still kills.
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Inject error = %v, want context.Canceled", err)
			}
		case err != nil:
			t.Fatal(err)
		case r.Outcome != plugin.OutcomeTimedOut || !strings.Contains(r.Error, "canceled"):
			t.Errorf("Outcome %s, Error %q; want timed_out, canceled", r.Outcome, r.Error)
		}
		waitGone(t, readPid(t, child), 3*time.Second)
		f.cleanup(t, nil)
	})
}

func TestWorkdirAndEnvironment(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		r := f.inject(t, plugin.Params{"command": "touch dropped; env", "env": map[string]any{"EXTRA": "1"}})
		if r.Outcome != plugin.OutcomeSucceeded {
			t.Fatalf("Outcome %s: %s", r.Outcome, r.Error)
		}
		fi, err := os.Lstat(f.workdir())
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("workdir: %v, %v; want a 0700 directory", fi, err)
		}
		if _, err := os.Stat(filepath.Join(f.workdir(), "dropped")); err != nil {
			t.Errorf("command did not run in the workdir: %v", err)
		}
		var names []string
		for _, kv := range strings.Split(strings.TrimSpace(string(r.Stdout)), "\n") {
			name, _, _ := strings.Cut(kv, "=")
			switch name {
			case "PWD", "OLDPWD", "SHLVL", "_": // set by the shell
			default:
				names = append(names, name)
			}
		}
		sort.Strings(names)
		want := "EXTRA HOME LANG PATH TMPDIR VIGIL_MARKER VIGIL_TEST_ID VIGIL_WORKDIR"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("environment has %s, want exactly %s", got, want)
		}
		if !strings.Contains(string(r.Stdout), "PATH="+DefaultPath+"\n") {
			t.Errorf("PATH is not the default: %s", r.Stdout)
		}

		c := f.cleanup(t, plugin.Params{"command": `pwd; echo "$VIGIL_MARKER $EXTRA"; ls`})
		if want := f.workdir() + "\n" + f.marker + " 1\ndropped\n"; c.ExitCode != 0 || string(c.Output) != want {
			t.Errorf("Cleanup = %+v (output %q); want the command run in the workdir with the inject env: %q", c, c.Output, want)
		}
		if _, err := os.Lstat(f.workdir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("workdir not removed: %v", err)
		}
	})
}

func TestCleanup(t *testing.T) {
	cases := []struct {
		name string
		// inject, if set, runs first.
		inject   plugin.Params
		cleanup  plugin.Params
		exit     int
		output   string // prefix; {{root}} and {{workdir}} are replaced
		errHas   string
		artifact plugin.Artifact
	}{
		{name: "after a failed inject", inject: plugin.Params{"command": "touch half; exit 1"},
			cleanup: plugin.Params{"command": "echo cleaning; ls"}, output: "cleaning\nhalf\n"},
		{name: "after an inject that timed out", inject: plugin.Params{"command": "touch half; sleep 30"},
			cleanup: plugin.Params{"command": "ls"}, output: "half\n"},
		{name: "without inject runs in tmp_root", cleanup: plugin.Params{"command": "pwd; echo $TMPDIR $VIGIL_WORKDIR"},
			output: "{{root}}\n{{root}} {{workdir}}\n"},
		{name: "without a command", inject: plugin.Params{"command": "true"}},
		{name: "failing command is reported", inject: plugin.Params{"command": "true"},
			cleanup: plugin.Params{"command": "echo nope; exit 5"}, exit: 5, output: "nope\n", errHas: "cleanup command exited 5"},
		{name: "invalid params skip the command but not the removal", inject: plugin.Params{"command": "true"},
			cleanup: plugin.Params{"comand": "echo typo"}, errHas: `cleanup command not run: invalid params: comand: unknown param`},
		{name: "artifacts outside the workdir are left", inject: plugin.Params{"command": "true"},
			artifact: plugin.Artifact{Kind: "file", Ref: "/etc/passwd"}, errHas: "file artifact /etc/passwd left in place: outside the workdir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				if tc.inject != nil {
					req := f.request(tc.inject)
					req.Timeout = 200 * time.Millisecond
					if _, err := f.inj.Inject(context.Background(), req); err != nil {
						t.Fatal(err)
					}
				}
				req := plugin.CleanupRequest{TestID: "test-1", Marker: f.marker, Workdir: f.workdir(), Params: tc.cleanup, Timeout: 5 * time.Second}
				if tc.artifact.Kind != "" {
					req.Artifacts = []plugin.Artifact{{Kind: "dir", Ref: f.workdir()}, {Kind: "file", Ref: filepath.Join(f.workdir(), "x")}, tc.artifact}
				}
				c, err := f.inj.Cleanup(context.Background(), req)
				if err != nil {
					t.Fatalf("Cleanup: %v", err)
				}
				want := strings.NewReplacer("{{root}}", f.root, "{{workdir}}", f.workdir()).Replace(tc.output)
				if c.ExitCode != tc.exit || !strings.HasPrefix(string(c.Output), want) {
					t.Errorf("ExitCode %d, Output %q; want %d, %q", c.ExitCode, c.Output, tc.exit, want)
				}
				if tc.errHas == "" && c.Error != "" || !strings.Contains(c.Error, tc.errHas) {
					t.Errorf("Error = %q, want %q", c.Error, tc.errHas)
				}
				if _, err := os.Lstat(f.workdir()); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("workdir not removed: %v", err)
				}
				if _, err := os.Stat("/etc/passwd"); err != nil {
					t.Errorf("/etc/passwd: %v", err)
				}
			})
		})
	}
}

func TestUnsafeWorkdirs(t *testing.T) {
	cases := []struct {
		name string
		// setup prepares the file system and returns the workdir to use.
		setup   func(t *testing.T, f *fixture) string
		errHas  string
		cleanup string // "kept" if Cleanup must leave the path, "error" if it must fail
	}{
		{name: "pre-existing directory", setup: func(t *testing.T, f *fixture) string {
			mustMkdir(t, f.workdir())
			return f.workdir()
		}, errHas: "file exists; refusing to use a workdir that already exists", cleanup: "kept"},
		{name: "pre-existing symlink", setup: func(t *testing.T, f *fixture) string {
			if err := os.Symlink(t.TempDir(), f.workdir()); err != nil {
				t.Fatal(err)
			}
			return f.workdir()
		}, errHas: "already exists", cleanup: "kept"},
		{name: "outside tmp_root", setup: func(t *testing.T, f *fixture) string {
			return filepath.Join(t.TempDir(), f.marker)
		}, errHas: "not under tmp_root", cleanup: "error"},
		{name: "tmp_root itself", setup: func(t *testing.T, f *fixture) string {
			return f.root
		}, errHas: "not under tmp_root", cleanup: "error"},
		{name: "dot-dot escape", setup: func(t *testing.T, f *fixture) string {
			return f.root + "/../" + f.marker
		}, errHas: "not under tmp_root", cleanup: "error"},
		{name: "without the marker", setup: func(t *testing.T, f *fixture) string {
			return filepath.Join(f.root, "plain")
		}, errHas: "does not contain the marker", cleanup: "error"},
		{name: "parent is a symlink out of tmp_root", setup: func(t *testing.T, f *fixture) string {
			if err := os.Symlink(t.TempDir(), filepath.Join(f.root, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f.root, "link", f.marker)
		}, errHas: "outside tmp_root", cleanup: "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				dir := tc.setup(t, f)
				existed := exists(dir)
				req := f.request(plugin.Params{"command": "touch ran"})
				req.Workdir = dir
				r, err := f.inj.Inject(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if r.Outcome != plugin.OutcomeRefused || !strings.Contains(r.Error, tc.errHas) {
					t.Errorf("Outcome %s, Error %q; want refused, %q", r.Outcome, r.Error, tc.errHas)
				}
				if exists(filepath.Join(dir, "ran")) {
					t.Errorf("the command ran")
				}
				if !existed && exists(dir) {
					t.Errorf("Inject created %s", dir)
				}
				// Make the path exist for Cleanup, which must leave it.
				if !exists(dir) && filepath.Clean(dir) != f.root {
					if err := os.MkdirAll(dir, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				c, err := f.inj.Cleanup(context.Background(), plugin.CleanupRequest{Marker: f.marker, Workdir: dir})
				switch tc.cleanup {
				case "kept":
					if err != nil || !strings.Contains(c.Error, "existed before the injection") {
						t.Errorf("Cleanup = %+v, %v; want the pre-existing workdir reported and kept", c, err)
					}
				case "error":
					if err == nil || !strings.Contains(err.Error(), "refusing to remove workdir") {
						t.Errorf("Cleanup error = %v, want a refusal", err)
					}
				}
				if !exists(dir) {
					t.Errorf("Cleanup removed %s", dir)
				}
			})
		})
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestOutputTruncation(t *testing.T) {
	forEachMode(t, "max_output = 100\n", func(t *testing.T, f *fixture) {
		r := f.inject(t, plugin.Params{"command": `head -c 1000 /dev/zero | tr '\0' a; echo short >&2`})
		if want := strings.Repeat("a", 100) + "\n[truncated 900 bytes]\n"; string(r.Stdout) != want {
			t.Errorf("Stdout = %q, want %q", r.Stdout, want)
		}
		if string(r.Stderr) != "short\n" || r.Outcome != plugin.OutcomeSucceeded {
			t.Errorf("Stderr %q, Outcome %s", r.Stderr, r.Outcome)
		}
		f.cleanup(t, nil)
	})
}

func TestDestructive(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				req := f.request(plugin.Params{"command": "true"})
				req.Safety, req.AllowDestructive = "destructive", allow
				r, err := f.inj.Inject(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				want := plugin.OutcomeRefused
				if allow {
					want = plugin.OutcomeSucceeded
				}
				if r.Outcome != want {
					t.Errorf("Outcome %s (%s), want %s", r.Outcome, r.Error, want)
				}
				if !allow && exists(f.workdir()) {
					t.Errorf("refused injection created the workdir")
				}
				f.cleanup(t, nil)
			})
		})
	}
}

func TestBackgroundProcesses(t *testing.T) {
	cases := []struct {
		name    string
		command string
		stop    func(t *testing.T, f *fixture)
	}{
		{"killed by cleanup", `sleep 30 >/dev/null 2>&1 & echo $! > "$VIGIL_WORKDIR/child"`,
			func(t *testing.T, f *fixture) { f.cleanup(t, nil) }},
		{"killed by close", `sleep 30 >/dev/null 2>&1 & echo $! > "$VIGIL_WORKDIR/child"`,
			func(t *testing.T, f *fixture) {
				if err := f.inj.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				f.cleanup(t, nil)
			}},
		// The background process holds stdout open: Inject returns after
		// pipeGrace with what was written.
		{"holding stdout", `sleep 30 & echo $! > "$VIGIL_WORKDIR/child"; echo started`,
			func(t *testing.T, f *fixture) { f.cleanup(t, nil) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				start := time.Now()
				r := f.inject(t, plugin.Params{"command": tc.command})
				if took := time.Since(start); took > pipeGrace+time.Second {
					t.Errorf("Inject took %s", took)
				}
				if r.Outcome != plugin.OutcomeSucceeded {
					t.Fatalf("Outcome %s: %s", r.Outcome, r.Error)
				}
				if strings.Contains(tc.command, "started") && string(r.Stdout) != "started\n" {
					t.Errorf("Stdout = %q", r.Stdout)
				}
				pid := readPid(t, filepath.Join(f.workdir(), "child"))
				if len(r.Artifacts) != 2 || r.Artifacts[1].Kind != ArtifactProcessGroup {
					t.Errorf("Artifacts = %v, want the workdir and a process group", r.Artifacts)
				}
				if processGone(pid) {
					t.Fatalf("background process %d died with the shell", pid)
				}
				tc.stop(t, f)
				waitGone(t, pid, time.Second)
			})
		})
	}
}

func TestPrerequisites(t *testing.T) {
	cases := []struct {
		name  string
		euid  int
		req   func(f *fixture) plugin.PrerequisitesRequest
		unmet []plugin.UnmetPrerequisite // {{root}} is replaced
	}{
		{name: "met", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{Prerequisites: []plugin.Prerequisite{{Description: "sh works", Check: "true"}, {Description: "ls exists", Check: "command -v ls"}}}
		}},
		{name: "unmet with exit code and stderr", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{Prerequisites: []plugin.Prerequisite{
				{Description: "ok", Check: "true"},
				{Description: "tool installed", Check: "echo noise; echo 'tool: not found' >&2; exit 4"},
				{Description: "no stderr", Check: "echo only stdout; exit 1"},
				{Description: "no check"},
			}}
		}, unmet: []plugin.UnmetPrerequisite{
			{Description: "tool installed", Reason: "check exited 4: tool: not found"},
			{Description: "no stderr", Reason: "check exited 1: only stdout"},
			{Description: "no check", Reason: "no check command"},
		}},
		{name: "runs in tmp_root without the marker", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{Marker: f.marker, Prerequisites: []plugin.Prerequisite{
				{Description: "where", Check: `echo "$PWD $0 ${VIGIL_MARKER-unset}" >&2; exit 1`},
			}}
		}, unmet: []plugin.UnmetPrerequisite{{Description: "where", Reason: "check exited 1: {{root}} vigil-prerequisite unset"}}},
		{name: "elevation unmet", euid: 1000, req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{ElevationRequired: true}
		}, unmet: []plugin.UnmetPrerequisite{{Description: "elevation_required", Reason: "needs root (elevation_required) but runs as uid 1000"}}},
		{name: "elevation met", euid: 0, req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{ElevationRequired: true}
		}},
		{name: "elevation not required", euid: 1000, req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{}
		}},
		{name: "get not asked", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{Prerequisites: []plugin.Prerequisite{{Description: "got", Check: "test -f got", Get: "touch got"}}}
		}, unmet: []plugin.UnmetPrerequisite{{Description: "got", Reason: "check exited 1"}}},
		{name: "get fetches", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{GetPrerequisites: true, Prerequisites: []plugin.Prerequisite{{Description: "got", Check: "test -f got", Get: "touch got"}}}
		}},
		{name: "get fails", req: func(f *fixture) plugin.PrerequisitesRequest {
			return plugin.PrerequisitesRequest{GetPrerequisites: true, Prerequisites: []plugin.Prerequisite{{Description: "got", Check: "false", Get: "echo no network >&2; exit 2"}}}
		}, unmet: []plugin.UnmetPrerequisite{{Description: "got", Reason: "check exited 1; get exited 2: no network"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				euid := tc.euid
				f.impl.geteuid = func() int { return euid }
				got, err := f.inj.CheckPrerequisites(context.Background(), tc.req(f))
				if err != nil {
					t.Fatal(err)
				}
				want := append([]plugin.UnmetPrerequisite(nil), tc.unmet...)
				for i := range want {
					want[i].Reason = strings.ReplaceAll(want[i].Reason, "{{root}}", f.root)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("unmet = %q\nwant %q", got, want)
				}
			})
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		params  plugin.Params
		cleanup plugin.Params
		want    []string // Problem.String()
	}{
		{name: "valid", params: plugin.Params{"command": "id", "shell": "/bin/sh", "env": map[string]any{"A": "b"}, "expect_exit": 1, "stdin": "x"},
			cleanup: plugin.Params{"command": "true"}},
		{name: "typo names the param", params: plugin.Params{"comand": "id"}, want: []string{
			"comand: unknown param (known: command, env, expect_exit, ignore_exit, shell, stdin)",
			"command: required: a non-empty shell command line",
		}},
		{name: "cleanup typo", params: plugin.Params{"command": "id"}, cleanup: plugin.Params{"command": "true", "shel": "/bin/sh"}, want: []string{
			"cleanup.shel: unknown param (known: command)",
		}},
		{name: "blank command", params: plugin.Params{"command": "  "}, want: []string{"command: required: a non-empty shell command line"}},
		{name: "relative shell", params: plugin.Params{"command": "id", "shell": "sh"}, want: []string{`shell: "sh" is not an absolute path`}},
		{name: "missing shell", params: plugin.Params{"command": "id", "shell": "/nonexistent/sh"}, want: []string{"shell: stat /nonexistent/sh: no such file or directory"}},
		{name: "wrong type", params: plugin.Params{"command": "id", "expect_exit": "zero"}, want: []string{
			"params: params: json: cannot unmarshal string into Go struct field injectParams.expect_exit of type int",
		}},
		{name: "ignore_exit with expect_exit", params: plugin.Params{"command": "id", "expect_exit": 0, "ignore_exit": true}, want: []string{
			"ignore_exit: conflicts with expect_exit: set one of them",
		}},
		{name: "ignore_exit not a boolean", params: plugin.Params{"command": "id", "ignore_exit": "yes"}, want: []string{
			"params: params: json: cannot unmarshal string into Go struct field injectParams.ignore_exit of type bool",
		}},
		{name: "exit out of range", params: plugin.Params{"command": "id", "expect_exit": 256}, want: []string{"expect_exit: 256 out of range 0..255"}},
		{name: "reserved env", params: plugin.Params{"command": "id", "env": map[string]any{"VIGIL_MARKER": "x", "bad-name": "y", "T": []any{1}}}, want: []string{
			"env.T: want a string, number or boolean, got []interface {}",
			"env: VIGIL_MARKER is set by the injector and cannot be overridden",
			`env: bad variable name "bad-name"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, "", func(t *testing.T, f *fixture) {
				probs, err := f.inj.Validate(context.Background(), plugin.ValidateRequest{TestID: "t", Params: tc.params, CleanupParams: tc.cleanup})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]string, len(probs))
				for i, p := range probs {
					got[i] = p.String()
				}
				sort.Strings(got)
				want := append([]string(nil), tc.want...)
				sort.Strings(want)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		})
	}
}

func TestInjectRejectsInvalidParams(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		_, err := f.inj.Inject(context.Background(), f.request(plugin.Params{"comand": "touch ran"}))
		if err == nil || !strings.Contains(err.Error(), `comand: unknown param`) {
			t.Errorf("Inject error = %v, want one naming comand", err)
		}
		if exists(f.workdir()) {
			t.Errorf("Inject created the workdir for invalid params")
		}
	})
}

func TestConfigure(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, toml string
		err        string
	}{
		{"defaults", "", ""},
		{"everything", fmt.Sprintf("tmp_root = %q\nshell = \"/bin/sh\"\nmax_output = 10\n[env]\nPATH = \"/bin\"\n", root), ""},
		{"unknown keys", "tmp_rot = \"/tmp\"\nshel = \"x\"\n", "exec: config: unknown keys shel, tmp_rot (known: env, max_output, shell, tmp_root)"},
		{"relative tmp_root", `tmp_root = "tmp"`, `exec: config: tmp_root "tmp" is not an absolute path`},
		{"missing tmp_root", `tmp_root = "/nonexistent/vigil"`, "exec: config: tmp_root: lstat /nonexistent: no such file or directory"},
		{"tmp_root is a file", fmt.Sprintf("tmp_root = %q", file), "exec: config: tmp_root " + file + " is not a directory"},
		{"relative shell", `shell = "bash"`, `exec: config: shell: "bash" is not an absolute path`},
		{"reserved env", "[env]\nVIGIL_TEST_ID = \"x\"\n", "exec: config: env: VIGIL_TEST_ID is set by the injector and cannot be overridden"},
		{"max_output too big", "max_output = 2000000", "exec: config: max_output 2000000 out of range (1..1048576)"},
		{"bad toml", "tmp_root = ", "exec: decode config: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range modes {
				inj := m.wrap(t, new(Injector))
				err := inj.Configure(context.Background(), []byte(tc.toml))
				switch {
				case tc.err == "" && err != nil:
					t.Errorf("%s: Configure: %v", m.name, err)
				case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
					t.Errorf("%s: Configure error = %v, want %q", m.name, err, tc.err)
				}
			}
		})
	}
}

func TestUnconfiguredInjectorUsesDefaults(t *testing.T) {
	x := new(Injector)
	marker := newMarker(t)
	req := plugin.InjectRequest{Marker: marker, Params: plugin.Params{"command": "pwd"}}
	r, err := x.Inject(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(os.TempDir(), marker)
	if r.Outcome != plugin.OutcomeSucceeded || string(r.Stdout) != want+"\n" {
		t.Errorf("Outcome %s, Stdout %q; want the default workdir %s", r.Outcome, r.Stdout, want)
	}
	if _, err := x.Cleanup(context.Background(), plugin.CleanupRequest{Marker: marker}); err != nil {
		t.Fatal(err)
	}
	if exists(want) {
		t.Errorf("%s not removed", want)
	}
	if _, err := x.Inject(context.Background(), plugin.InjectRequest{Params: plugin.Params{"command": "true"}}); !errors.Is(err, ErrNoMarker) {
		t.Errorf("Inject without a marker: %v, want ErrNoMarker", err)
	}
}

func TestConcurrentInjections(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		const n = 8
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				marker := fmt.Sprintf("%s-%d", f.marker, i)
				dir := filepath.Join(f.root, marker)
				r, err := f.inj.Inject(context.Background(), plugin.InjectRequest{
					Marker: marker, Workdir: dir, Params: plugin.Params{"command": `echo "$0"`}, Timeout: 5 * time.Second,
				})
				switch {
				case err != nil:
				case r.Outcome != plugin.OutcomeSucceeded || string(r.Stdout) != marker+"\n":
					err = fmt.Errorf("%s: Outcome %s, Stdout %q", marker, r.Outcome, r.Stdout)
				default:
					_, err = f.inj.Cleanup(context.Background(), plugin.CleanupRequest{Marker: marker, Workdir: dir})
				}
				errs <- err
			}()
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
			t.Errorf("tmp_root not empty after cleanup: %v", ents)
		}
	})
}

func TestCloseKillsInFlightCommand(t *testing.T) {
	forEachMode(t, "", func(t *testing.T, f *fixture) {
		child := filepath.Join(f.workdir(), "child")
		results := make(chan plugin.InjectResult, 1)
		go func() {
			r, err := f.inj.Inject(context.Background(), f.request(plugin.Params{"command": `sleep 30 & echo $! > "$VIGIL_WORKDIR/child"; wait`}))
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
		pid := readPid(t, child)
		if err := f.inj.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			if r.Outcome != plugin.OutcomeFailed || r.ExitCode != 143 {
				t.Errorf("Outcome %s, ExitCode %d; want failed, 143 (SIGTERM)", r.Outcome, r.ExitCode)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Inject still running after Close")
		}
		waitGone(t, pid, time.Second)
		f.cleanup(t, nil)
	})
}
