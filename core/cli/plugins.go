package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/session"
)

func newCmdPlugins(io IO) *cobra.Command {
	var (
		configPath    string
		dirs          []string
		allowUnpinned bool
	)
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List built-in and external plugins with what they describe of themselves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Find(configPath)
			if err != nil {
				return usageErr(err)
			}
			host := session.NewHost(cfg, dirs, allowUnpinned, nil)
			defer host.Close()
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tSOURCE\tVERSION\tPROTOCOL\tMARKER\tDETAILS")
			describe := func(kind, name string) {
				dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				var (
					d   plugin.Description
					src pluginhost.Source
					err error
				)
				if kind == plugin.KindSIEM {
					var s plugin.SIEM
					if s, src, err = host.SIEM(dctx, name); err == nil {
						d, err = s.Describe(dctx)
					}
				} else {
					var i plugin.Injector
					if i, src, err = host.Injector(dctx, name); err == nil {
						d, err = i.Describe(dctx)
					}
				}
				where := "built-in"
				if !src.Builtin {
					where = src.Path
				}
				if err != nil {
					fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\terror: %v\n", kind, name, where, err)
					return
				}
				var marks []string
				for _, m := range d.MarkerLocations {
					marks = append(marks, string(m))
				}
				details := d.Summary
				if kind == plugin.KindSIEM {
					details = fmt.Sprintf("dialect=%s capabilities=%s", d.QueryDialect, strings.Join(d.Capabilities, ","))
				} else {
					var ps []string
					for _, p := range d.Params {
						ps = append(ps, p.Name)
					}
					details = fmt.Sprintf("platforms=%s params=%s", strings.Join(d.Platforms, ","), strings.Join(ps, ","))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", kind, name, where, d.Version, d.ProtocolVersion, strings.Join(marks, ","), details)
			}
			for _, kind := range []string{plugin.KindSIEM, plugin.KindInjector} {
				for _, name := range plugin.Builtins(kind) {
					describe(kind, name)
				}
			}
			for _, src := range host.Discover() {
				if src.SHA256 == "" && !allowUnpinned {
					fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\tnot started: %v\n", src.Kind, src.Name, src.Path, pluginhost.ErrUnpinned)
					continue
				}
				describe(src.Kind, src.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file")
	cmd.Flags().StringArrayVar(&dirs, "plugin-dir", nil, "extra directory of external plugins")
	cmd.Flags().BoolVar(&allowUnpinned, "allow-unpinned", false, "describe external plugins that have no sha256 pin")
	return cmd
}

// newCmdPlugin is the hidden `vigil plugin serve KIND NAME`: how the vigil
// binary serves its own built-in plugins to go-plugin.
func newCmdPlugin() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Hidden: true, Short: "internal: plugin commands"}
	cmd.AddCommand(&cobra.Command{
		Use:    "serve KIND NAME",
		Short:  "internal: serve a built-in plugin over go-plugin (started by vigil itself; do not call it yourself)",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := plugin.ServeBuiltin(args[0], args[1]); err != nil {
				return usageErr(err)
			}
			return nil
		},
	})
	return cmd
}
