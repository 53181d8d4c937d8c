package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
)

func newCmdInit(io IO) *cobra.Command {
	force := false
	cmd := &cobra.Command{
		Use:   "init [PATH]",
		Short: "Write a commented example vigil.toml",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := config.DefaultFile
			if len(args) == 1 {
				path = args[0]
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(path, flags, 0o600)
			if errors.Is(err, os.ErrExist) {
				return usageErr(fmt.Errorf("%s exists (use --force to overwrite)", path))
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
			fmt.Fprintf(io.Out, "wrote %s\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
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
