package detect

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Options tunes Load.
type Options struct {
	// LinkBase, when set, is prefixed to each rule's Path to form Rule.Link
	// (see SigmaHQLinkBase).
	LinkBase string
}

// Load walks the .yml and .yaml files below roots (paths in fsys; "." when
// none is given) and parses each as a Sigma rule. Every file ends up either
// in Ruleset.Rules or in Ruleset.Problems. The error is non-nil only when a
// root cannot be walked at all.
func Load(fsys fs.FS, roots ...string) (*Ruleset, error) {
	return LoadWithOptions(fsys, Options{}, roots...)
}

// LoadWithOptions is Load with Options.
func LoadWithOptions(fsys fs.FS, opts Options, roots ...string) (*Ruleset, error) {
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var files []string
	seenFile := map[string]bool{}
	rs := &Ruleset{}
	for _, root := range roots {
		if _, err := fs.Stat(fsys, root); err != nil {
			return nil, fmt.Errorf("detect: load %s: %w", root, err)
		}
		err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				// An unreadable directory or file below the root: report it
				// and carry on with the rest.
				rs.Problems = append(rs.Problems, Problem{Path: p, Reason: ReasonRead, Detail: err.Error()})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(path.Ext(p))
			if (ext == ".yml" || ext == ".yaml") && !seenFile[p] {
				seenFile[p] = true
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("detect: load %s: %w", root, err)
		}
	}
	sort.Strings(files)

	ids := map[string]string{}
	for _, p := range files {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			rs.Problems = append(rs.Problems, Problem{Path: p, Reason: ReasonRead,
				Detail: fmt.Errorf("detect: load %s: %w", p, err).Error()})
			continue
		}
		link := ""
		if opts.LinkBase != "" {
			link = opts.LinkBase + p
		}
		r, prob := ParseRule(p, data, link)
		if prob != nil {
			rs.Problems = append(rs.Problems, *prob)
			continue
		}
		if first, dup := ids[r.ID]; dup {
			rs.Problems = append(rs.Problems, Problem{Path: p, Reason: ReasonDuplicateID,
				Detail: fmt.Sprintf("id %s already loaded from %s", r.ID, first), ID: r.ID, Title: r.Title})
			continue
		}
		ids[r.ID] = p
		rs.Rules = append(rs.Rules, r)
	}
	sort.SliceStable(rs.Problems, func(i, j int) bool { return rs.Problems[i].Path < rs.Problems[j].Path })
	return rs, nil
}
