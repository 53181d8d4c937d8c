package sensor

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/vigilsec/vigil/core/telemetry"
)

// contextFields are the SYSCALL record fields copied into every other record
// of the same audit event (when the record lacks them), so that a rule on a
// PATH or EXECVE record can still test the process. The syscall arguments
// a0..a3 are not among them: EXECVE uses the same names for argv.
var contextFields = []string{
	"syscall", "SYSCALL", "exe", "comm", "key", "success", "exit",
	"pid", "ppid", "uid", "auid", "euid", "gid", "tty", "ses",
}

// Open flags that make an open a write (x86, arm and most other arches
// share these values).
const (
	oWronly = 0x1
	oRdwr   = 0x2
	oCreat  = 0x40
	oTrunc  = 0x200
)

// NormaliserConfig configures a Normaliser.
type NormaliserConfig struct {
	// Host is copied into every Event.
	Host string
	// ProcDir is the proc file system used to fill the process table on a
	// miss ("/proc" live); "" disables look-ups, for pure tests and replays.
	ProcDir string
	// PasswdFile resolves uids to user names ("/etc/passwd" live); "" keeps
	// the numeric uid in User.
	PasswdFile string
	// MaxProcesses bounds the process table (default 16384).
	MaxProcesses int
	// IgnorePID, when not 0, drops the audit events of that process (the
	// sensor's own, logged by the kernel with its configuration changes).
	IgnorePID int
	// IgnoreKey, when not "", drops the CONFIG_CHANGE records carrying that
	// rule key: the sensor adding and removing its own rules.
	IgnoreKey string
}

// Normaliser turns reassembled audit events (the records that share one
// audit serial) into normalised Events. It keeps a process table, fed by the
// exec events it sees, to fill ParentImage, ParentCommandLine and Ancestry.
// A Normaliser is not safe for concurrent use.
type Normaliser struct {
	host      string
	procs     *procTable
	users     *userNames
	ignorePID string
	ignoreKey string
}

// NewNormaliser returns a Normaliser. It touches no file until it is used.
func NewNormaliser(cfg NormaliserConfig) *Normaliser {
	n := &Normaliser{
		host:      cfg.Host,
		procs:     newProcTable(cfg.ProcDir, cfg.MaxProcesses),
		users:     newUserNames(cfg.PasswdFile),
		ignoreKey: cfg.IgnoreKey,
	}
	if cfg.IgnorePID != 0 {
		n.ignorePID = strconv.Itoa(cfg.IgnorePID)
	}
	return n
}

// Normalise normalises one reassembled audit event with a fresh Normaliser
// that reads no file: ancestry holds only the process itself and User holds
// numeric uids. It is a pure function of its arguments, meant for tests and
// tools; the sensor uses a long-lived Normaliser.
func Normalise(host string, msgs []*auparse.AuditMessage) []telemetry.Event {
	return NewNormaliser(NormaliserConfig{Host: host}).Normalise(msgs)
}

// SeedProcesses fills the process table from every process in ProcDir.
func (n *Normaliser) SeedProcesses() { n.procs.seed() }

// ExpireProcesses forgets processes that exited since the previous call and
// were not used in between.
func (n *Normaliser) ExpireProcesses() { n.procs.sweep() }

// parsedRecord is one audit record with its decoded fields.
type parsedRecord struct {
	typ    auparse.AuditMessageType
	fields map[string]string
}

// Normalise turns the records of one audit event into Events: one
// linux/auditd Event per record (EXECVE records merged into one, EOE
// dropped), one linux/process_creation Event for a successful execve or
// execveat, and one linux/file_event Event per file created or opened for
// writing. Records are expected in the order the kernel sent them.
func (n *Normaliser) Normalise(msgs []*auparse.AuditMessage) []telemetry.Event {
	if len(msgs) == 0 {
		return nil
	}
	var (
		recs   []parsedRecord
		sys    map[string]string
		execve map[string]string // the first EXECVE record's fields, shared with recs
		cwd    string
		title  string
	)
	for _, m := range msgs {
		if m == nil || m.RecordType == auparse.AUDIT_EOE {
			continue
		}
		f := recordFields(m.RecordType, recordBody(m.RawData))
		if m.RecordType == auparse.AUDIT_CONFIG_CHANGE && n.ignoreKey != "" && f["key"] == n.ignoreKey {
			continue
		}
		switch m.RecordType {
		case auparse.AUDIT_SYSCALL:
			if sys == nil {
				sys = f
			}
		case auparse.AUDIT_EXECVE:
			// Long argument vectors span several EXECVE records: merge them.
			if execve != nil {
				for k, v := range f {
					execve[k] = v
				}
				continue
			}
			execve = f
		case auparse.AUDIT_CWD:
			cwd = f["cwd"]
		case auparse.AUDIT_PROCTITLE:
			f["proctitle"] = strings.TrimRight(strings.ReplaceAll(f["proctitle"], "\x00", " "), " ")
			title = f["proctitle"]
		}
		recs = append(recs, parsedRecord{typ: m.RecordType, fields: f})
	}
	if len(recs) == 0 {
		return nil
	}
	if n.ignorePID != "" && sys != nil && sys["pid"] == n.ignorePID {
		return nil
	}

	// The context every record of the event inherits.
	ctx := map[string]any{}
	var syscall string
	if sys != nil {
		name, arch := syscallName(sys["arch"], sys["syscall"])
		syscall = name
		sys["syscall"] = name
		sys["SYSCALL"] = name
		sys["ARCH"] = arch
		for _, k := range contextFields {
			if v, ok := sys[k]; ok {
				ctx[k] = v
			}
		}
		if k, ok := sys["key"]; ok {
			ctx["key"] = splitKey(k)
		}
	}

	// The process: from the SYSCALL record, or from a standalone record
	// (ANOM_ABEND, USER_*) that carries its own pid.
	pf := sys
	if pf == nil {
		pf = recs[0].fields
	}
	pid, _ := strconv.Atoi(pf["pid"])
	ppid, _ := strconv.Atoi(pf["ppid"])
	exe := pf["exe"]

	var argv []string
	if execve != nil {
		argv = execveArgs(execve)
		for k := range execve {
			if k != "argc" {
				delete(execve, k)
			}
		}
		for i, a := range argv {
			execve["a"+strconv.Itoa(i)] = a
		}
	}
	cmdline := strings.Join(argv, " ")
	isExec := (syscall == "execve" || syscall == "execveat") && sys["success"] == "yes"

	var self string
	switch {
	case isExec:
		if cmdline == "" {
			cmdline = title
		}
		n.procs.exec(pid, ppid, exe, cmdline)
		self = cmdline
	case pid > 0:
		p := n.procs.observe(pid, ppid, exe, title)
		switch {
		case p != nil && p.cmdline != "":
			self = p.cmdline
		case title != "":
			self = title
		default:
			self = exe
		}
	}
	var ancestry []string
	if pid > 0 {
		ancestry = n.procs.ancestry(pid, self)
	}

	base := telemetry.Event{
		Time:     msgs[0].Timestamp,
		Sequence: uint64(msgs[0].Sequence),
		Host:     n.host,
		Ancestry: ancestry,
	}
	out := make([]telemetry.Event, 0, len(recs)+2)
	for _, r := range recs {
		f := r.fields
		fields := make(map[string]any, len(f)+len(ctx)+1)
		for k, v := range f {
			fields[k] = v
		}
		if k, ok := f["key"]; ok {
			fields["key"] = splitKey(k)
		}
		for k, v := range ctx {
			if _, own := fields[k]; !own {
				fields[k] = v
			}
		}
		fields["type"] = r.typ.String()
		ev := base
		ev.Source = telemetry.Auditd
		ev.Fields = fields
		out = append(out, ev)
	}

	if isExec {
		fields := map[string]any{
			"Image":           exe,
			"CommandLine":     cmdline,
			"ProcessId":       strconv.Itoa(pid),
			"ParentProcessId": strconv.Itoa(ppid),
			"User":            n.users.name(sys["uid"]),
			"LogonId":         sys["auid"],
		}
		if cwd != "" {
			fields["CurrentDirectory"] = cwd
		}
		if parent := n.procs.lookup(ppid); parent != nil {
			fields["ParentImage"] = parent.exe
			fields["ParentCommandLine"] = parent.cmdline
		}
		ev := base
		ev.Source = telemetry.ProcessCreation
		ev.Fields = fields
		out = append(out, ev)
	}

	if sys != nil {
		write := isWriteOpen(syscall, sys)
		for _, r := range recs {
			if r.typ != auparse.AUDIT_PATH {
				continue
			}
			nt := r.fields["nametype"]
			name := r.fields["name"]
			if name == "" || !(nt == "CREATE" || (nt == "NORMAL" && write)) {
				continue
			}
			if !filepath.IsAbs(name) && cwd != "" {
				name = filepath.Join(cwd, name)
			}
			ev := base
			ev.Source = telemetry.FileEvent
			ev.Fields = map[string]any{
				"TargetFilename": name,
				"Image":          exe,
				"User":           n.users.name(sys["uid"]),
				"ProcessId":      strconv.Itoa(pid),
			}
			out = append(out, ev)
		}
	}
	return out
}

// isWriteOpen reports whether a syscall opened its path for writing.
func isWriteOpen(syscall string, sys map[string]string) bool {
	var flags string
	switch syscall {
	case "creat", "truncate":
		return true
	case "open":
		flags = sys["a1"]
	case "openat":
		flags = sys["a2"]
	default:
		return false
	}
	v, err := strconv.ParseUint(flags, 16, 64)
	if err != nil {
		return false
	}
	return v&(oWronly|oRdwr|oCreat|oTrunc) != 0
}

// splitKey returns a rule key as a string, or as a []string when the rule
// carried several keys (joined by the kernel with 0x01).
func splitKey(k string) any {
	if strings.IndexByte(k, 0x01) < 0 {
		return k
	}
	return strings.Split(k, "\x01")
}
