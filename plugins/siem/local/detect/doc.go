// Package detect is the Sigma detection stage of vigil's embedded "local"
// SIEM: it loads Sigma rules and evaluates normalised events
// (plugins/siem/local/event) against them.
//
// # Loading
//
// [Load] walks the .yml/.yaml files below one or more roots of an fs.FS. Every
// file either becomes a [Rule] or is reported as a [Problem] carrying a
// [Reason] and a detail message: YAML or Sigma parse errors, missing id or
// title, deprecated/unsupported status, correlation and aggregation rules,
// logsources the local sensor does not produce, keyword searches, modifiers or
// values the evaluator cannot handle, and evaluator construction failures
// (panics included). Loading never panics on bad input.
//
// Only three logsources are produced by the local sensor and accepted:
// linux/auditd ([event.Auditd]), linux/process_creation
// ([event.ProcessCreation]) and linux/file_event ([event.FileEvent]).
//
// # Matching
//
// Confirmation of a match is always done by github.com/bradleyjkemp/sigma-go's
// RuleEvaluator, with Sigma's case-insensitive semantics. An [Engine] avoids
// running that evaluator for every rule: at build time it derives, for each
// rule, a set of field requirements (field equals / contains / starts with /
// ends with a value) at least one of which must hold whenever the rule
// matches. Requirements are indexed per logsource and field in exact-value
// hash maps (keyed by Unicode simple case folding, exactly like
// strings.EqualFold) and an Aho-Corasick automaton over lower-cased patterns
// (exactly like sigma-go's strings.ToLower based comparators). For an event,
// only the rules whose requirement fired, plus the rules whose condition could
// not be analysed safely (kept on an "always evaluate" list), are passed to
// the evaluator. The prefilter is conservative: it never changes which rules
// match, only how many are evaluated.
//
// # Field values
//
// Event fields hold a string or a []string. A []string matches a Sigma value
// when any element matches it (the usual Sigma list semantics); a missing
// field behaves as sigma-go treats a missing field.
//
// # Licence of the SigmaHQ rules
//
// SigmaHQ rules are under the Detection Rule License 1.1, which requires the
// rule author and a link to the rule to be kept with the rule and its
// matches: [Rule] keeps Author and Link, and every [Match] points to its Rule.
package detect
