package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/atomic"
)

// ImportAtomicsOptions are the flags of `vigil import atomics`.
type ImportAtomicsOptions struct {
	Dir        string
	Out        string
	Techniques []string
	// All lists the atomics skipped for having no linux platform too.
	All bool
}

func newCmdImport(io IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert other test libraries into catalog files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr(fmt.Errorf("import what? (vigil import atomics DIR, vigil import cloudtrail FILE...)"))
		},
	}
	cmd.AddCommand(newCmdImportAtomics(io, nil), newCmdImportCloudTrail(io, nil))
	return cmd
}

func newCmdImportAtomics(io IO, runF func(*ImportAtomicsOptions) error) *cobra.Command {
	o := &ImportAtomicsOptions{}
	cmd := &cobra.Command{
		Use:   "atomics DIR",
		Short: "Convert Atomic Red Team atomics into catalog files",
		Long: `Convert the atomics of an Atomic Red Team checkout (DIR/atomics/<TID>/<TID>.yaml,
or DIR is the atomics directory) into catalog files for the exec injector,
one per atomic test that runs on linux with the sh or bash executor, written
as OUT/linux/<tactic>/<id>.toml. Every other atomic test is reported with
its file, line and reason (windows or macos only, manual or powershell
executor, a technique ATT&CK does not know, malformed YAML).

Without --out nothing is written: the report says what would be imported.
To run atomics without writing files, use vigil run --atomics DIR.
Exit status: 0 when at least one atomic test was imported, 2 otherwise.`,
		Example: `  vigil import atomics ~/atomic-red-team --out atomics-catalog
  vigil validate --catalog atomics-catalog
  sudo vigil run --catalog atomics-catalog --technique T1016 --exclude-tag network`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			if runF != nil {
				return runF(o)
			}
			return runImportAtomics(io, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Out, "out", "o", "", "write the catalog files under this directory")
	f.StringArrayVarP(&o.Techniques, "technique", "t", nil, "only the atomics of this ATT&CK technique or its sub-techniques (repeatable)")
	f.BoolVar(&o.All, "all", false, "also list the atomic tests skipped for having no linux platform")
	return cmd
}

func runImportAtomics(io IO, o *ImportAtomicsOptions) error {
	r, err := atomic.Import(o.Dir, atomic.Options{Techniques: o.Techniques})
	if err != nil {
		return usageErr(err)
	}
	writeImportReport(io.Out, r, o.All)
	if len(r.Tests) == 0 {
		return usageErr(fmt.Errorf("no atomic test of %s could be imported", o.Dir))
	}
	if o.Out == "" {
		fmt.Fprintf(io.Out, "\nnothing written (give --out DIR to write %d catalog files)\n", len(r.Tests))
		return nil
	}
	files, err := r.Write(o.Out)
	if err != nil {
		return runtimeErr(err)
	}
	fmt.Fprintf(io.Out, "\nwrote %d catalog files under %s\n", len(files), o.Out)
	fmt.Fprintf(io.Out, "check them:  vigil validate --catalog %s\n", o.Out)
	fmt.Fprintf(io.Out, "run them:    sudo vigil run --catalog %s --exclude-tag network --exclude-tag payload\n", o.Out)
	return nil
}

// writeImportReport prints the counts, the safety of the imported tests
// and one line per skipped atomic test.
func writeImportReport(w io.Writer, r *atomic.Result, all bool) {
	fmt.Fprint(w, r.Summary())
	safety := map[string]int{}
	tags := map[string]int{}
	for _, t := range r.Tests {
		safety[t.Safety]++
		for _, tag := range t.Tags {
			tags[tag]++
		}
	}
	fmt.Fprintf(w, "  imported %4d  safe %d, reversible %d, destructive %d; tagged network %d, payload %d\n",
		len(r.Tests), safety["safe"], safety["reversible"], safety["destructive"], tags[atomic.TagNetwork], tags[atomic.TagPayload])
	if d := r.Details(all); d != "" {
		fmt.Fprintln(w)
		fmt.Fprint(w, d)
	}
}
