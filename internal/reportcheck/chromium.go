package reportcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNoChromium means no headless Chromium was found on PATH (Debian's
// package `chromium`).
var ErrNoChromium = errors.New("no chromium on PATH (Debian: apt-get install chromium)")

// Chromium returns the path of a Chromium executable.
func Chromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Page is an HTML page as headless Chromium rendered it.
type Page struct {
	// DOM is the document after its scripts ran (--dump-dom).
	DOM string
	// Console holds every message the page wrote to the console: its own
	// logs, uncaught exceptions and Content-Security-Policy violations
	// (a blocked fetch is one).
	Console []string
}

var consoleLine = regexp.MustCompile(`:CONSOLE[:(]`)

// Render opens file (with an optional #fragment) in headless Chromium,
// with the network features a browser uses on its own turned off and a
// throwaway profile, and returns the DOM after the page's scripts ran and
// the console messages it logged.
func Render(ctx context.Context, file, fragment string) (*Page, error) {
	bin, err := Chromium()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	profile, err := os.MkdirTemp("", "vigil-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium: profile: %w", err)
	}
	defer os.RemoveAll(profile)
	url := "file://" + abs
	if fragment != "" {
		url += "#" + fragment
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--user-data-dir="+profile, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("chromium %s: %w\n%s", url, err, errOut.String())
	}
	p := &Page{DOM: out.String()}
	sc := bufio.NewScanner(strings.NewReader(errOut.String()))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if consoleLine.MatchString(sc.Text()) {
			p.Console = append(p.Console, sc.Text())
		}
	}
	if strings.TrimSpace(p.DOM) == "" {
		return p, fmt.Errorf("chromium %s: empty DOM\n%s", url, errOut.String())
	}
	return p, nil
}
