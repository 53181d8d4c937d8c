// Package detect is the Sigma detection stage of vigil's embedded "local"
// SIEM: it loads Sigma rules and evaluates normalised events
// (core/telemetry) against them.
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
// Five logsources are accepted: the three the local sensor produces,
// linux/auditd ([event.Auditd]), linux/process_creation
// ([event.ProcessCreation]) and linux/file_event ([event.FileEvent]),
// Kubernetes API server audit events, kubernetes/audit
// ([event.KubernetesAudit], which SigmaHQ's rules also write with category
// application; see [NormalizeLogsource]), whose fields are the audit event
// flattened with dotted keys ([event.FromAudit]), and AWS CloudTrail
// records, aws/cloudtrail ([telemetry.AWSCloudTrail], flattened the same way
// by [telemetry.FromCloudTrail]). Sigma's null value is supported (the field
// is absent) without modifiers.
//
// # Matching
//
// Whether a rule matches is always decided by
// github.com/bradleyjkemp/sigma-go's RuleEvaluator, with Sigma's
// case-insensitive semantics. An [Engine] avoids running that evaluator for
// every rule and event:
//
//   - At build time each rule's condition is turned into a "shadow": the same
//     and/or tree with every field matcher replaced by requirements it
//     implies (field equals / contains / starts with / ends with a literal,
//     minimum length, the compiled regular expression itself) and every part
//     that cannot be modelled (not, unknown modifiers) replaced by "maybe".
//     The shadow over-approximates the rule.
//   - From the shadow the engine derives a set of requirements one of which
//     holds whenever the rule matches, and indexes the rule under them, per
//     logsource and field: exact values in hash maps (keyed by Unicode simple
//     case folding, exactly like strings.EqualFold) and substrings, prefixes
//     and suffixes in an Aho-Corasick automaton (lower-cased, exactly like
//     sigma-go's strings.ToLower based comparators). Rules whose condition
//     yields no such set (a top-level not, a regular expression without a
//     literal) go to the logsource's "always evaluate" list.
//   - For an event, the rules whose requirement fired plus the always list
//     are the candidates; a candidate whose shadow is false is dropped, and
//     sigma-go confirms the rest.
//
// Both steps are conservative: they never change which rules match, only how
// many are evaluated (the tests compare the engine with plain loops over
// every sigma-go evaluator).
//
// # Wildcards
//
// sigma-go v0.6.6 compares values literally, so Sigma wildcards (* and ?)
// would never match. The loader hands sigma-go a copy of the rule in which
// every plain, contains, startswith or endswith matcher with a wildcard value
// is an equivalent case-insensitive regular expression matcher.
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
