package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// ListOptions are the flags of `vigil list`.
type ListOptions struct {
	selectOptions
	Output string
}

// listedTest is the JSON form of a test in `vigil list --output json`.
type listedTest struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Technique     string   `json:"technique"`
	TechniqueName string   `json:"technique_name"`
	Tactics       []string `json:"tactics"`
	Platforms     []string `json:"platforms"`
	Safety        string   `json:"safety"`
	Injector      string   `json:"injector"`
	Elevation     bool     `json:"elevation_required"`
	AtomicGUID    string   `json:"atomic_guid,omitempty"`
	Source        string   `json:"source"`
}

func newCmdList(io IO, runF func(*ListOptions) error) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the catalog's tests with technique, tactics, platforms and safety",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Output != "table" && o.Output != "json" {
				return usageErr(fmt.Errorf("--output %q: want table or json", o.Output))
			}
			if runF != nil {
				return runF(o)
			}
			return runList(io, o)
		},
	}
	o.addFlags(cmd, false)
	cmd.Flags().StringVar(&o.Output, "output", "table", "table or json")
	return cmd
}

func runList(io IO, o *ListOptions) error {
	l, err := o.load()
	if err != nil {
		return err
	}
	tests := append(l.Tests, l.Skipped...)
	if o.Output == "json" {
		out := make([]listedTest, 0, len(tests))
		for _, t := range tests {
			out = append(out, listedTest{
				ID: t.ID, Name: t.Name, Technique: string(t.Technique.ID), TechniqueName: t.Technique.FullName(),
				Tactics: t.Tactics, Platforms: t.Platforms, Safety: string(t.Safety), Injector: t.Inject.Plugin,
				Elevation: t.ElevationRequired, AtomicGUID: t.AtomicGUID, Source: t.Source.String(),
			})
		}
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTECHNIQUE\tTACTICS\tPLATFORMS\tSAFETY\tNAME")
	for _, t := range tests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Technique.ID, strings.Join(t.Tactics, ","),
			strings.Join(t.Platforms, ","), t.Safety, t.Name)
	}
	tw.Flush()
	fmt.Fprintf(io.Out, "\n%d tests\n", len(tests))
	return nil
}
