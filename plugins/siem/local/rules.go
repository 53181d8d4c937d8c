package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/plugins/siem/local/detect"
	"github.com/vigilsec/vigil/rules"
)

// ruleSet is what loadRules found.
type ruleSet struct {
	rules []*detect.Rule
	// own counts vigil's own rules among rules.
	own int
	// problems lists the SigmaHQ and extra files that were skipped.
	problems []detect.Problem
}

// loadRules loads vigil's own rules (every file must load), then the
// SigmaHQ rules and the extra directories (files that do not load are
// skipped and listed). A rule whose id is already loaded is skipped: vigil's
// own rules win over SigmaHQ's, which win over the extra directories'.
func loadRules(c Config) (*ruleSet, error) {
	rs := &ruleSet{}
	seen := map[string]string{} // rule id → file

	own, err := loadOwnRules(c.Rules)
	if err != nil {
		return nil, err
	}
	for _, r := range own {
		if first, dup := seen[r.ID]; dup {
			return nil, fmt.Errorf("local: vigil's own Sigma rules: %s: %s: id %s already loaded from %s", r.Path, detect.ReasonDuplicateID, r.ID, first)
		}
		seen[r.ID] = r.Path
		rs.rules = append(rs.rules, r)
	}
	rs.own = len(rs.rules)

	add := func(set *detect.Ruleset, prefix string) {
		for _, p := range set.Problems {
			p.Path = prefix + p.Path
			rs.problems = append(rs.problems, p)
		}
		for _, r := range set.Rules {
			if first, dup := seen[r.ID]; dup {
				rs.problems = append(rs.problems, detect.Problem{
					Path: r.Path, Reason: detect.ReasonDuplicateID, ID: r.ID, Title: r.Title,
					Detail: fmt.Sprintf("id %s already loaded from %s", r.ID, first),
				})
				continue
			}
			seen[r.ID] = r.Path
			rs.rules = append(rs.rules, r)
		}
	}
	if *c.SigmaHQ {
		hq, err := fs.Sub(rules.Sigma, rules.SigmaHQRoot)
		if err != nil {
			return nil, fmt.Errorf("local: sigmahq rules: %w", err)
		}
		set, err := detect.LoadWithOptions(hq, detect.Options{LinkBase: detect.SigmaHQLinkBase})
		if err != nil {
			return nil, fmt.Errorf("local: sigmahq rules: %w", err)
		}
		add(set, "rules/sigma/sigmahq/")
	}
	for _, dir := range c.SigmaDirs {
		set, err := loadDir(dir)
		if err != nil {
			rs.problems = append(rs.problems, detect.Problem{Path: dir, Reason: detect.ReasonRead, Detail: err.Error()})
			continue
		}
		add(set, "")
	}
	return rs, nil
}

// DefaultRules returns the rules a local SIEM with the default config
// evaluates, in load order: vigil's own rules, then the SigmaHQ rules that
// load (those refused are left out, as the SIEM leaves them out). The
// generated technique docs replay the recordings through them.
func DefaultRules() ([]*detect.Rule, error) {
	var c Config
	c.setDefaults()
	rs, err := loadRules(c)
	if err != nil {
		return nil, err
	}
	return rs.rules, nil
}

// loadOwnRules loads vigil's own rules as selected by Config.Rules. Any file
// that does not load is an error naming it and the reason.
func loadOwnRules(sel string) ([]*detect.Rule, error) {
	var (
		set *detect.Ruleset
		err error
	)
	switch sel {
	case RulesNone:
		return nil, nil
	case RulesBuiltin:
		// The Linux and the Kubernetes rules; a directory may not exist in
		// a build without those rules.
		var roots []string
		for _, root := range rules.SigmaOwnRoots {
			if _, serr := fs.Stat(rules.Sigma, root); !errors.Is(serr, fs.ErrNotExist) {
				roots = append(roots, root)
			}
		}
		if len(roots) == 0 {
			return nil, nil
		}
		set, err = detect.Load(rules.Sigma, roots...)
	default:
		set, err = loadDir(sel)
	}
	if err != nil {
		return nil, fmt.Errorf("local: vigil's own Sigma rules: %w", err)
	}
	if len(set.Problems) > 0 {
		msgs := make([]string, len(set.Problems))
		for i, p := range set.Problems {
			msgs[i] = p.Error()
		}
		return nil, fmt.Errorf("local: vigil's own Sigma rules: %d files did not load: %s", len(msgs), strings.Join(msgs, "; "))
	}
	return set.Rules, nil
}

// loadDir loads the rules below a directory of the file system. Rule paths
// and links are the files' paths.
func loadDir(dir string) (*detect.Ruleset, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sigma dir %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("sigma dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("sigma dir %s: not a directory", dir)
	}
	set, err := detect.LoadWithOptions(os.DirFS(abs), detect.Options{LinkBase: filepath.ToSlash(abs) + "/"})
	if err != nil {
		return nil, fmt.Errorf("sigma dir %s: %w", dir, err)
	}
	// Name the files by their full path.
	for _, r := range set.Rules {
		r.Path = r.Link
	}
	for i := range set.Problems {
		set.Problems[i].Path = filepath.ToSlash(abs) + "/" + set.Problems[i].Path
	}
	return set, nil
}
