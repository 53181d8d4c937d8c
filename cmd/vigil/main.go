// Command vigil fires MITRE ATT&CK techniques and measures whether, and how
// fast, each SIEM detects them. See README.md.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigilsec/vigil/core/cli"
	_ "github.com/vigilsec/vigil/plugins" // the built-in plugins
)

func main() {
	// First SIGINT/SIGTERM: stop firing, clean up. Second: abort cleanup.
	ctx, cancel := context.WithCancelCause(context.Background())
	abort, abortCancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(errors.New("interrupted by " + s.String()))
		s = <-sigs
		abortCancel(errors.New("cleanup aborted by a second " + s.String()))
	}()
	code := cli.Main(ctx, os.Args[1:], cli.IO{Out: os.Stdout, Err: os.Stderr, IsTerminal: cli.StderrIsTerminal(), Abort: abort})
	goplugin.CleanupClients()
	os.Exit(int(code))
}
