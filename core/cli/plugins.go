package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/plugin"
	"github.com/vigilsec/vigil/core/pluginhost"
	"github.com/vigilsec/vigil/core/session"
)

// PluginsOptions are the flags of `vigil plugins`.
type PluginsOptions struct {
	ConfigPath    string
	PluginDirs    []string
	AllowUnpinned bool
}

func newCmdPlugins(io IO, runF func(*PluginsOptions) error) *cobra.Command {
	o := &PluginsOptions{}
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List built-in and external plugins with what they describe of themselves",
		Long: `List the built-in plugins and the external ones found in ~/.vigil/plugins,
the config's plugin_dirs and --plugin-dir, each as it describes itself:
version, plugin protocol, summary; then, per plugin, where it plants or
finds the run marker and, for SIEM plugins, the query dialect and the
optional calls it supports (raw_events, ingest, rules, close_signals,
clock, ...), for injectors the platforms and params. An external plugin
without a sha256 pin is listed but not started (--allow-unpinned starts
it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runPlugins(cmd.Context(), io, o)
		},
	}
	cmd.Flags().StringVarP(&o.ConfigPath, "config", "c", "", "config file")
	cmd.Flags().StringArrayVar(&o.PluginDirs, "plugin-dir", nil, "extra directory of external plugins")
	cmd.Flags().BoolVar(&o.AllowUnpinned, "allow-unpinned", false, "describe external plugins that have no sha256 pin")
	return cmd
}

// described is one plugin as it describes itself (or why it could not).
type described struct {
	kind, name, where string
	d                 plugin.Description
	err               error
}

func runPlugins(ctx context.Context, io IO, o *PluginsOptions) error {
	cfg, err := config.Find(o.ConfigPath)
	if err != nil {
		return usageErr(err)
	}
	host := session.NewHost(cfg, o.PluginDirs, o.AllowUnpinned, nil)
	defer host.Close()
	var all []described
	for _, kind := range []string{plugin.KindSIEM, plugin.KindInjector} {
		for _, name := range plugin.Builtins(kind) {
			all = append(all, describePlugin(ctx, host, kind, name))
		}
	}
	for _, src := range host.Discover() {
		if src.SHA256 == "" && !o.AllowUnpinned {
			all = append(all, described{kind: src.Kind, name: src.Name, where: src.Path, err: fmt.Errorf("not started: %w", pluginhost.ErrUnpinned)})
			continue
		}
		all = append(all, describePlugin(ctx, host, src.Kind, src.Name))
	}
	writePlugins(io.Out, all)
	return nil
}

// describePlugin starts one plugin and asks it to describe itself.
func describePlugin(ctx context.Context, host *pluginhost.Host, kind, name string) described {
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var src pluginhost.Source
	out := described{kind: kind, name: name}
	if kind == plugin.KindSIEM {
		var s plugin.SIEM
		if s, src, out.err = host.SIEM(dctx, name); out.err == nil {
			out.d, out.err = s.Describe(dctx)
		}
	} else {
		var i plugin.Injector
		if i, src, out.err = host.Injector(dctx, name); out.err == nil {
			out.d, out.err = i.Describe(dctx)
		}
	}
	out.where = "built-in"
	if !src.Builtin {
		out.where = src.Path
	}
	return out
}

// writePlugins prints the plugins as a table with their summaries, then
// what each can do.
func writePlugins(w io.Writer, all []described) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSOURCE\tVERSION\tPROTOCOL\tSUMMARY")
	for _, p := range all {
		if p.err != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\terror: %v\n", p.kind, p.name, p.where, p.err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.kind, p.name, p.where, p.d.Version, p.d.ProtocolVersion, p.d.Summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, p := range all {
		if p.err != nil {
			continue
		}
		var marks []string
		for _, m := range p.d.MarkerLocations {
			marks = append(marks, string(m))
		}
		can := ""
		if p.kind == plugin.KindSIEM {
			can = fmt.Sprintf("dialect %s; capabilities %s", nonEmptyOr(p.d.QueryDialect, "none"), nonEmptyOr(strings.Join(p.d.Capabilities, ", "), "none"))
		} else {
			var ps []string
			for _, x := range p.d.Params {
				ps = append(ps, x.Name)
			}
			can = fmt.Sprintf("platforms %s; params %s", nonEmptyOr(strings.Join(p.d.Platforms, ", "), "any"), nonEmptyOr(strings.Join(ps, ", "), "none"))
		}
		fmt.Fprintf(w, "%s %s: markers %s; %s\n", p.kind, p.name, nonEmptyOr(strings.Join(marks, ", "), "none"), can)
	}
}

func nonEmptyOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
