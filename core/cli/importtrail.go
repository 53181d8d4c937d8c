package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/core/cloudtrail"
)

// ImportCloudTrailOptions are the flags of `vigil import cloudtrail`.
type ImportCloudTrailOptions struct {
	Files         []string
	Technique     string
	Out           string
	ID            string
	MarkerField   string
	MarkerPattern string
}

func newCmdImportCloudTrail(io IO, runF func(*ImportCloudTrailOptions) error) *cobra.Command {
	o := &ImportCloudTrailOptions{}
	cmd := &cobra.Command{
		Use:   "cloudtrail FILE...",
		Short: "Turn recorded CloudTrail into a replay test",
		Long: `Turn recorded AWS CloudTrail (a log file {"Records": [...]}, a JSON array of
records such as Stratus Red Team's detonation logs, or one record per line)
into a replay test: OUT/<id>.toml and its recording OUT/<id>.jsonl. The
records kept are those carrying the detonation's marker in --marker-field
(default userAgent: Stratus Red Team's stratus-red-team_<uuid>, or vigil's
vigil-<hex>); on replay it is replaced by the run's marker, so signals are
tied to the replay. The local SIEM evaluates the records with vigil's and
SigmaHQ's CloudTrail rules; Datadog, Elastic and Splunk ingest them where
their CloudTrail integrations put them.`,
		Example: `  vigil import cloudtrail aws.persistence.iam-create-admin-user.json --technique T1098 --out incidents/
  vigil run --replay --catalog incidents/ --replay-dir incidents/ --id ct-aws-persistence-iam-create-admin-user`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Files = args
			if runF != nil {
				return runF(o)
			}
			return runImportCloudTrail(io, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Technique, "technique", "t", "", "the ATT&CK technique the recorded activity is (required)")
	f.StringVarP(&o.Out, "out", "o", "", "write <id>.toml and <id>.jsonl into this directory (required)")
	f.StringVar(&o.ID, "id", "", "the test's id (default: ct- and the first file's name)")
	f.StringVar(&o.MarkerField, "marker-field", cloudtrail.DefaultMarkerField, "the record field that carries the detonation's marker (dotted, e.g. requestParameters.roleSessionName)")
	f.StringVar(&o.MarkerPattern, "marker-pattern", cloudtrail.DefaultMarker.String(), "a regular expression for the marker in that field")
	return cmd
}

func runImportCloudTrail(io IO, o *ImportCloudTrailOptions) error {
	if o.Out == "" {
		return usageErr(fmt.Errorf("--out DIR is required"))
	}
	re, err := regexp.Compile(o.MarkerPattern)
	if err != nil {
		return usageErr(fmt.Errorf("--marker-pattern: %w", err))
	}
	var files []cloudtrail.File
	for _, p := range o.Files {
		b, err := os.ReadFile(p)
		if err != nil {
			return usageErr(err)
		}
		files = append(files, cloudtrail.File{Name: p, Data: b})
	}
	r, err := cloudtrail.Import(files, cloudtrail.Options{Technique: o.Technique, ID: o.ID, MarkerField: o.MarkerField, MarkerPattern: re})
	if err != nil {
		return usageErr(err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return runtimeErr(fmt.Errorf("create --out: %w", err))
	}
	test, rec := filepath.Join(o.Out, r.ID+".toml"), filepath.Join(o.Out, r.ID+".jsonl")
	for p, b := range map[string][]byte{test: r.TOML, rec: r.Recording} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return runtimeErr(fmt.Errorf("write %s: %w", p, err))
		}
	}
	fmt.Fprintf(io.Out, "%d of %d record(s) carry the marker %s: %s\n", r.Kept, r.Records, r.Marker, strings.Join(r.Calls, ", "))
	fmt.Fprintf(io.Out, "wrote %s and %s\n", test, rec)
	fmt.Fprintf(io.Out, "replay it: vigil run --replay --catalog %s --replay-dir %s --id %s\n", o.Out, o.Out, r.ID)
	return nil
}
