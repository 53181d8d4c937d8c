package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
)

// InitOptions are the flags of `vigil init`.
type InitOptions struct {
	// Path is the file to write (default vigil.toml).
	Path  string
	Force bool
}

func newCmdInit(io IO, runF func(*InitOptions) error) *cobra.Command {
	o := &InitOptions{Path: config.DefaultFile}
	cmd := &cobra.Command{
		Use:   "init [PATH]",
		Short: "Write a commented example vigil.toml",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Path = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			return runInit(io, o)
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite an existing file")
	return cmd
}

func runInit(io IO, o *InitOptions) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(o.Path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return usageErr(fmt.Errorf("%s exists (use --force to overwrite)", o.Path))
	}
	if err != nil {
		return usageErr(err)
	}
	if _, err := f.WriteString(config.Example); err != nil {
		f.Close()
		return runtimeErr(err)
	}
	if err := f.Close(); err != nil {
		return runtimeErr(err)
	}
	fmt.Fprintf(io.Out, "wrote %s\n", o.Path)
	return nil
}

func newCmdVersion(io IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print vigil's version and plugin protocol version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(io.Out, "vigil %s (plugin protocol %d)\n", Version, plugin.ProtocolVersion)
		},
	}
}
