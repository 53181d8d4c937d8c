// Package rules ships vigil's built-in content inside the binary: the
// technique catalog (techniques/<platform>/<tactic>/<id>.toml, one test of an
// ATT&CK technique per file, loaded by core/catalog; see README.md for the
// format).
//
// Sigma rules for the local SIEM live next to it under sigma/ and get their
// own embedded file system here when the local SIEM loads them.
package rules

import "embed"

// Techniques holds the built-in catalog, rooted at "techniques".
//
//go:embed techniques
var Techniques embed.FS

// TechniquesRoot is the directory of Techniques that holds the catalog.
const TechniquesRoot = "techniques"
