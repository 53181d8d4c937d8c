package atomic

import (
	"path"
	"regexp"
	"slices"
	"strings"
)

// classify gives an imported test its safety from its command and its
// cleanup_command (with the argument defaults filled in, and the atomics
// folder as AtomicsFolder, so that the label never depends on where the
// user keeps the atomics). It reads what the command changes and what the
// cleanup undoes, and it is conservative: what it cannot tell counts
// against the test.
//
//   - safe: the command writes nothing and changes nothing.
//   - reversible: everything the command changes outside temporary
//     directories (/tmp, /var/tmp, /dev/shm, the working directory) the
//     cleanup undoes: it deletes the files and directories the command
//     created, copies back a well-known system file the command saved
//     before changing it, and deletes the accounts, groups, services,
//     kernel modules and mounts the command created.
//   - destructive: anything else. A file changed in place (appended to,
//     edited with sed -i, chmod) or deleted that the command did not
//     create; a crontab replaced; an account it did not create changed
//     (passwd, chpasswd, usermod); a service it did not create started,
//     stopped or enabled; software installed with any package manager
//     (apt, pip, cpan, gem, npm, go install); an editor or visudo on a
//     file outside temporary directories; the clock, the firewall, kernel
//     parameters or audit rules changed; a cloud or cluster CLI; a cleanup
//     that deletes or changes what the command did not create.
//
// Accounts, services, package managers and editors are never safe.
// Inline interpreter code (python -c) is not read, except for the shell
// redirections in it. It returns the level and why, for the file's header.
func classify(command, cleanup string) (safety, why string) {
	cmd, cln := analyze(command), analyze(cleanup)
	v := verdict{cmd: cmd, cln: cln}
	v.changes()
	v.files()
	v.cleanupOnly()
	switch {
	case len(v.problems) > 0:
		return "destructive", v.problems[0]
	case len(v.undone) > 0:
		return "reversible", "the cleanup undoes what the command changes: " + strings.Join(v.undone, "; ")
	case v.tmpWrites:
		return "reversible", "the command only writes in temporary directories"
	default:
		return "safe", "the command writes nothing and changes nothing outside the shell"
	}
}

// AtomicsFolder stands for PathToAtomicsFolder in the texts classify and
// needsNetwork read: a directory of the user's that is not temporary.
const AtomicsFolder = "/ATOMICS"

// fileOp is what a simple command does to a file.
type fileOp int

const (
	opCreate fileOp = iota // creates or overwrites it (>, cp, touch, mkdir)
	opModify               // changes it in place (>>, sed -i, chmod)
	opRemove               // deletes it (rm, the source of mv)
)

type fileEffect struct {
	op   fileOp
	path string
	verb string
}

// change is a change to the system beyond files: kind says what it
// touches (account, group, service, module, mount) or, for kinds that
// can never be undone (package, editor, crontab, clock, ...), why.
type change struct {
	kind, verb, name string
	undo             bool   // userdel, systemctl stop, rmmod, umount
	link             string // the link systemctl link PATH makes
	flags            string // the command's words, for options (userdel -r)
	line             string // the whole line, for accounts named on it
}

// analysis is what a command does, as far as classify can tell.
type analysis struct {
	files   []fileEffect
	changes []change
	// backups maps a file to the copy the command made of it (cp F B,
	// cat F > B).
	backups map[string]string
	cwd     string // the directory of the last cd
}

// verdict compares a command's analysis with its cleanup's.
type verdict struct {
	cmd, cln  analysis
	problems  []string // why the test is destructive
	undone    []string // non-temporary changes the cleanup undoes
	tmpWrites bool
}

// changes checks the command's system changes against the cleanup.
func (v *verdict) changes() {
	for _, c := range v.cmd.changes {
		switch c.kind {
		case "account", "group":
			if c.undo {
				v.problems = append(v.problems, "the command deletes the "+c.kind+" "+c.name+", which it did not create")
			} else if u := v.cln.find(c.kind, c.name, true); u == nil {
				v.problems = append(v.problems, "the command creates the "+c.kind+" "+c.name+" and the cleanup does not delete it")
			} else if c.kind == "account" && homeCreated(c.flags) && !homeRemoved(u.flags) {
				v.problems = append(v.problems, "the command creates the account "+c.name+" with a home directory and the cleanup does not remove it (userdel -r)")
			} else {
				v.undone = append(v.undone, c.verb+" "+c.name+" / "+u.verb+" "+c.name)
			}
		case "account-change":
			if !v.cmd.createdAccountOn(c.line) {
				v.problems = append(v.problems, "the command changes an account it did not create ("+c.verb+")")
			}
		case "service":
			if !v.cmd.ownsUnit(c.name) {
				v.problems = append(v.problems, "the command "+c.verb+"s the service "+orUnknown(c.name)+", which it did not create")
			} else if !c.undo && v.cln.find("service", c.name, true) == nil {
				v.problems = append(v.problems, "the command "+c.verb+"s its service "+c.name+" and the cleanup does not stop or disable it")
			} else if !c.undo {
				v.undone = append(v.undone, "systemctl "+c.verb+" "+c.name+" / stop")
			}
		case "transient-service":
			v.undone = append(v.undone, c.verb+" (a transient unit, gone when it ends)")
		case "module", "mount":
			if c.undo {
				v.problems = append(v.problems, "the command "+c.verb+"s "+orUnknown(c.name)+", which it did not "+map[string]string{"module": "load", "mount": "mount"}[c.kind])
			} else if v.cln.find(c.kind, c.name, true) == nil {
				v.problems = append(v.problems, "the command "+c.verb+"s "+orUnknown(c.name)+" and the cleanup does not undo it")
			} else {
				v.undone = append(v.undone, c.verb+" "+c.name)
			}
		case "kill-own":
		case "kill":
			v.problems = append(v.problems, "the command kills processes it did not start ("+c.verb+" "+c.name+")")
		case "reload":
			// systemctl daemon-reload and the like re-read files: what
			// they change, the file checks judge.
		default:
			v.problems = append(v.problems, "the command "+c.kind+" ("+c.verb+")")
		}
	}
}

// files checks the command's file effects against the cleanup.
func (v *verdict) files() {
	for _, f := range v.cmd.files {
		if temporary(f.path) {
			v.tmpWrites = true
			continue
		}
		switch {
		case v.cln.restores(f.path, v.cmd.backups):
			v.undone = append(v.undone, "restores "+f.path+" from its copy")
		case f.op == opCreate && systemFile(f.path):
			v.problems = append(v.problems, "the command overwrites "+f.path+" and the cleanup does not copy it back from a saved copy")
		case f.op == opCreate && v.cln.removes(f.path, v.cmd):
			v.undone = append(v.undone, "removes "+f.path)
		case f.op == opCreate:
			v.problems = append(v.problems, "the command writes "+f.path+" and the cleanup does not remove it")
		case v.cmd.creates(f.path) && v.cln.removes(f.path, v.cmd):
			// Changed after the command created it: removed with it.
		case f.op == opModify:
			v.problems = append(v.problems, "the command changes "+f.path+" in place ("+f.verb+") and the cleanup does not copy it back from a saved copy")
		default:
			v.problems = append(v.problems, "the command deletes "+f.path+", which it did not create")
		}
	}
}

// cleanupOnly finds what the cleanup changes beyond undoing the command.
func (v *verdict) cleanupOnly() {
	for _, f := range v.cln.files {
		if temporary(f.path) {
			// A command whose cleanup deletes temporary files wrote them,
			// even where classify cannot see it (python -c).
			v.tmpWrites = true
			continue
		}
		if v.cmd.creates(f.path) || v.cln.restores(f.path, v.cmd.backups) {
			continue
		}
		if f.op == opRemove && strings.Contains(f.path, ".wants/") && v.cmd.ownsUnit(strings.TrimSuffix(path.Base(f.path), ".service")) {
			continue // the link systemctl enable made for its own unit
		}
		v.problems = append(v.problems, "the cleanup changes or deletes "+f.path+", which the command did not create")
	}
	for _, c := range v.cln.changes {
		switch {
		case c.kind == "reload" || c.kind == "transient-service":
		case c.undo && (c.kind == "account" || c.kind == "group" || c.kind == "module" || c.kind == "mount") && v.cmd.find(c.kind, c.name, false) != nil:
		case c.kind == "service" && c.undo && v.cmd.ownsUnit(c.name):
		case c.kind == "kill" || c.kind == "kill-own":
			// Cleanups stop the processes their command started.
		default:
			v.problems = append(v.problems, "the cleanup changes what the command did not ("+c.verb+" "+c.name+")")
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

// find returns the change of kind for name, an undo one or not.
func (a analysis) find(kind, name string, undo bool) *change {
	for i, c := range a.changes {
		if c.kind == kind && c.undo == undo && (c.name == name || kind == "mount" && c.name == "") {
			return &a.changes[i]
		}
	}
	return nil
}

// createdAccountOn says whether line names an account the command
// creates (echo NAME:PASSWORD | chpasswd after useradd NAME).
func (a analysis) createdAccountOn(line string) bool {
	for _, c := range a.changes {
		if c.kind == "account" && !c.undo && c.name != "" && slices.ContainsFunc(shellWords(strings.NewReplacer(":", " ", `"`, " ", "'", " ").Replace(line)), func(w string) bool { return w == c.name }) {
			return true
		}
	}
	return false
}

// ownsUnit says whether the command writes the unit file of name.
func (a analysis) ownsUnit(name string) bool {
	if name == "" {
		return false
	}
	if a.find("transient-service", name, false) != nil {
		return true
	}
	for _, f := range a.files {
		if f.op == opCreate && strings.TrimSuffix(path.Base(f.path), ".service") == name {
			return true
		}
	}
	return false
}

// creates says whether the command creates p, or a directory above it.
func (a analysis) creates(p string) bool {
	for _, f := range a.files {
		if f.op == opCreate && (f.path == p || strings.HasPrefix(p, f.path+"/")) {
			return true
		}
	}
	return false
}

// removes says whether the cleanup deletes p: p itself, or a directory
// above it that the command created or that is temporary, or the home of
// an account the command created (userdel -r).
func (a analysis) removes(p string, cmd analysis) bool {
	for _, f := range a.files {
		if f.op != opRemove {
			continue
		}
		if f.path == p || strings.HasPrefix(p, f.path+"/") && (cmd.creates(f.path) || temporary(f.path)) {
			return true
		}
	}
	return false
}

// restores says whether the cleanup copies p back from the copy the
// command saved, in place (cp or cat, which keep its inode and mode), and
// p is a file every Linux host has: a copy of a file that was not there
// would create it.
func (a analysis) restores(p string, backups map[string]string) bool {
	b, ok := backups[p]
	// The cleanup's cp B P is recorded as its backups[B] = P.
	return ok && systemFile(p) && a.backups[b] == p
}

// systemFiles exist on every Linux host: overwriting one cannot be undone
// by deleting it.
var systemFiles = []string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/hosts", "/etc/hostname",
	"/etc/profile", "/etc/bash.bashrc", "/etc/environment", "/etc/crontab", "/etc/fstab", "/etc/resolv.conf",
	"/etc/ssh/sshd_config", "/etc/ld.so.conf", "/etc/login.defs", "/etc/shells", "/etc/os-release", "/etc/sysctl.conf",
	"/etc/pam.d/common-auth", "/etc/pam.d/common-password", "/etc/pam.d/common-session", "/etc/pam.d/common-account",
	"/etc/pam.d/sshd", "/etc/pam.d/su", "/etc/pam.d/sudo", "/etc/pam.d/login", "/etc/pam.d/other",
}

func systemFile(p string) bool { return slices.Contains(systemFiles, p) }

// analyze reads a command line.
func analyze(command string) analysis {
	a := analysis{backups: map[string]string{}}
	prev := ""
	for _, simple := range splitCommands(command) {
		a.simple(simple, prev+" "+simple)
		prev = simple
	}
	return a
}

// abs is p as written, or under the directory of the last cd when p is
// relative.
func (a *analysis) abs(p string) string {
	p = normPath(p)
	if a.cwd == "" || p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "~") || strings.HasPrefix(p, "$") {
		return p
	}
	return path.Join(a.cwd, p)
}

// simple reads one simple command; context is it with the one before
// (echo NAME:PASSWORD | chpasswd).
func (a *analysis) simple(simple, context string) {
	for _, m := range redirectRE.FindAllStringSubmatch(simple, -1) {
		t := a.abs(m[2])
		if t == "" || strings.HasPrefix(t, "&") || devNull(t) {
			continue
		}
		op := opCreate
		if strings.Contains(m[1], ">>") {
			op = opModify
		}
		a.files = append(a.files, fileEffect{op: op, path: t, verb: strings.TrimSpace(m[1])})
	}
	w := stripPrefixes(shellWords(stripRedirects(simple)))
	if len(w) == 0 {
		return
	}
	verb := w[0]
	if strings.HasPrefix(verb, "/") {
		verb = path.Base(verb) // /usr/sbin/useradd
	}
	args := w[1:]
	if verb == "cd" {
		a.cwd = "~"
		if len(args) > 0 && args[0] != "-" {
			a.cwd = a.abs(args[0])
		}
		return
	}
	if verb == "pw" && len(args) > 0 { // FreeBSD: pw useradd NAME
		verb, args = "pw "+args[0], args[1:]
	}
	if i := slices.Index(args, "-c"); i >= 0 && i+1 < len(args) && slices.Contains([]string{"sh", "bash", "dash", "zsh", "ksh", "su"}, verb) {
		inner := analyze(args[i+1])
		a.files = append(a.files, inner.files...)
		a.changes = append(a.changes, inner.changes...)
		for k, b := range inner.backups {
			a.backups[k] = b
		}
		return
	}
	line := context
	if c, ok := systemChange(verb, args, line); ok {
		a.changes = append(a.changes, c)
		if c.link != "" {
			a.files = append(a.files, fileEffect{op: opCreate, path: c.link, verb: "systemctl " + c.verb})
		}
		// useradd -m makes /home/NAME; userdel -r removes it.
		if c.kind == "account" && c.name != "" && (!c.undo && homeCreated(c.flags) || c.undo && homeRemoved(c.flags)) {
			op := opCreate
			if c.undo {
				op = opRemove
			}
			a.files = append(a.files, fileEffect{op: op, path: "/home/" + c.name, verb: verb})
		}
		return
	}
	a.fileCommand(verb, args)
	// cat F > B saves a copy of F: backups[F] = B.
	if verb == "cat" && len(args) == 1 {
		if m := redirectRE.FindStringSubmatch(simple); m != nil && !strings.Contains(m[1], ">>") {
			a.backups[a.abs(args[0])] = a.abs(m[2])
		}
	}
}

// fileCommand records what a file command does to its paths.
func (a *analysis) fileCommand(verb string, args []string) {
	add := func(op fileOp, ps ...string) {
		for _, p := range ps {
			if p != "" && !devNull(p) {
				a.files = append(a.files, fileEffect{op: op, path: a.abs(p), verb: verb})
			}
		}
	}
	switch verb {
	case "rm", "rmdir", "unlink", "shred", "wipe", "srm":
		add(opRemove, operands(args, "")...)
	case "mv":
		if ps := operands(args, "St"); len(ps) >= 2 {
			add(opRemove, ps[:len(ps)-1]...)
			add(opCreate, into(ps[len(ps)-1], ps[0]))
		}
	case "cp", "install", "ln", "rsync":
		ps := operands(args, "mogStT")
		switch {
		case len(ps) >= 2:
			dst := into(ps[len(ps)-1], ps[0])
			add(opCreate, dst)
			if verb == "cp" && len(ps) == 2 {
				a.backups[a.abs(ps[0])] = a.abs(dst)
			}
		case verb == "install" && slices.Contains(args, "-d"):
			add(opCreate, ps...)
		}
	case "touch":
		add(opCreate, operands(args, "tdr")...)
	case "mkdir", "mkfifo", "mknod":
		add(opCreate, operands(args, "m")...)
	case "tee":
		if slices.Contains(args, "-a") || slices.Contains(args, "--append") {
			add(opModify, operands(args, "")...)
		} else {
			add(opCreate, operands(args, "")...)
		}
	case "dd":
		for _, x := range args {
			if strings.HasPrefix(x, "of=") {
				add(opCreate, x[3:])
			}
		}
	case "curl", "wget", "ssh-keygen", "gcc", "cc", "clang", "g++":
		add(opCreate, optionValues(args, "-o", "-O", "--output", "--output-document", "-f")...)
	case "git":
		if ps := operands(args, ""); len(ps) == 3 && ps[0] == "clone" {
			add(opCreate, ps[2])
		}
	case "tar", "zip", "7z", "unzip":
		add(opCreate, archiveWrites(verb, args)...)
	case "split", "csplit":
		if ps := operands(args, "bClna"); len(ps) == 2 {
			add(opCreate, ps[1]+"*")
		}
	case "truncate":
		add(opModify, operands(args, "sr")...)
	case "chmod", "chown", "chgrp", "setcap", "chattr", "setfacl":
		// The first word that is not a known option is the mode, owner,
		// capability or attribute (chmod -x F, chattr -i F).
		var ps []string
		for _, x := range args {
			if x == "-R" || x == "-f" || x == "-v" || x == "-c" || x == "-h" || strings.HasPrefix(x, "--") {
				continue
			}
			ps = append(ps, x)
		}
		if len(ps) > 0 {
			ps = ps[1:]
		}
		add(opModify, ps...)
	case "sed", "perl":
		if slices.ContainsFunc(args, func(s string) bool {
			return strings.HasPrefix(s, "-i") || strings.HasPrefix(s, "-pi") || strings.HasPrefix(s, "--in-place")
		}) {
			add(opModify, scriptFiles(args)...)
		}
	case "gzip", "bzip2", "xz", "gunzip":
		ps := operands(args, "S")
		if slices.Contains(args, "-k") || slices.Contains(args, "-c") || slices.Contains(args, "--keep") {
			if verb != "gunzip" && !slices.Contains(args, "-d") {
				for _, p := range ps {
					add(opCreate, p+map[string]string{"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}[verb])
				}
			}
			return
		}
		add(opRemove, ps...) // replaced by the compressed file
		for _, p := range ps {
			add(opCreate, p+".*")
		}
	}
}

// operands are the words of args that are not options, nor the values of
// the single-letter options in withValue.
func operands(args []string, withValue string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "--"):
		case strings.HasPrefix(a, "-") && len(a) >= 2 && withValue != "" && strings.Contains(withValue, a[len(a)-1:]):
			i++ // -o VALUE, or -acmr VALUE
		case strings.HasPrefix(a, "-") && len(a) > 1:
		default:
			out = append(out, a)
		}
	}
	return out
}

// optionValues are the values of the named options (-o FILE, -oFILE,
// --output=FILE).
func optionValues(args []string, names ...string) []string {
	var out []string
	for i, a := range args {
		for _, n := range names {
			switch {
			case a == n && i+1 < len(args):
				out = append(out, args[i+1])
			case strings.HasPrefix(n, "--") && strings.HasPrefix(a, n+"="):
				out = append(out, a[len(n)+1:])
			}
		}
	}
	return out
}

// archiveWrites is what an archiver writes: the archive it creates, or the
// directory it extracts into (the working directory without -C or -d).
func archiveWrites(verb string, args []string) []string {
	if verb == "tar" {
		if len(args) == 0 {
			return nil
		}
		mode := args[0]
		if !strings.HasPrefix(mode, "--") && strings.Contains(mode, "x") || slices.Contains(args, "--extract") {
			return under(optionValues(args, "-C", "--directory"))
		}
		if f := optionValues(args, "-f", "--file"); len(f) > 0 {
			return f[:1]
		}
		if !strings.HasPrefix(mode, "--") && strings.Contains(mode, "f") && len(args) > 1 {
			return args[1:2]
		}
		return nil
	}
	if verb == "unzip" || verb == "7z" && len(args) > 0 && (args[0] == "x" || args[0] == "e") {
		return under(optionValues(args, "-d", "-o"))
	}
	ps := operands(args, "P")
	if verb == "7z" && len(ps) > 0 {
		ps = ps[1:] // the mode (a)
	}
	return ps[:min(1, len(ps))]
}

// under is what is extracted into each directory: its members.
func under(dirs []string) []string {
	for i, d := range dirs {
		dirs[i] = strings.TrimSuffix(d, "/") + "/*"
	}
	return dirs
}

// scriptFiles are the files of sed -i or perl -pi: the operands after the
// script (the first operand, unless -e gave it).
func scriptFiles(args []string) []string {
	ps := operands(args, "efE")
	if len(optionValues(args, "-e", "--expression", "-E")) > 0 {
		return ps
	}
	if len(ps) > 0 {
		return ps[1:]
	}
	return nil
}

// into is where cp SRC DST puts SRC: DST, or DST/base(SRC) when DST ends
// with a slash.
func into(dst, src string) string {
	if strings.HasSuffix(dst, "/.") || strings.HasSuffix(dst, "/") {
		return path.Join(dst, path.Base(src))
	}
	return dst
}

// systemChange recognises a simple command that changes the system beyond
// files.
func systemChange(verb string, args []string, line string) (change, bool) {
	joined := strings.Join(args, " ")
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	words := func() []string {
		var out []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				out = append(out, a)
			}
		}
		return out
	}
	last := func() string {
		if w := words(); len(w) > 0 {
			return w[len(w)-1]
		}
		return ""
	}
	c := change{verb: verb, flags: joined, line: line}
	switch verb {
	case "useradd", "adduser":
		c.kind, c.name = "account", lastOperand(args, "bcdefgGkKpsuRPZ")
	case "pw useradd":
		c.kind, c.name = "account", first
	case "userdel", "deluser", "rmuser", "pw userdel":
		c.kind, c.name, c.undo = "account", last(), true
		if verb == "pw userdel" {
			c.name = first
		}
	case "groupadd", "addgroup":
		c.kind, c.name = "group", last()
	case "groupdel", "delgroup":
		c.kind, c.name, c.undo = "group", last(), true
	case "usermod", "passwd", "chpasswd", "gpasswd", "chsh", "chfn", "chage", "groupmod", "pw usermod", "pw groupmod", "vipw", "vigr":
		c.kind = "account-change"
	case "systemctl", "service", "rc-service", "update-rc.d", "chkconfig", "rc-update":
		return serviceChange(verb, args)
	case "systemd-run":
		c.kind = "transient-service"
		if u := optionValues(args, "--unit", "-u"); len(u) > 0 {
			c.name = strings.TrimSuffix(u[0], ".service")
		}
	case "insmod", "modprobe", "rmmod", "kldload", "kldunload":
		c.kind, c.name = "module", strings.TrimSuffix(path.Base(last()), ".ko")
		c.undo = verb == "rmmod" || verb == "kldunload" || slices.Contains(args, "-r") || slices.Contains(args, "--remove")
	case "mount":
		if len(words()) == 0 {
			return c, false // lists mounts
		}
		c.kind, c.name = "mount", last()
	case "umount":
		c.kind, c.name, c.undo = "mount", "", true
	case "crontab":
		if joined == "-l" || strings.HasPrefix(joined, "-u ") && strings.HasSuffix(joined, " -l") || strings.HasPrefix(joined, "-l ") {
			return c, false
		}
		c.kind = "replaces a crontab, which no cleanup restores byte for byte"
	case "at", "batch", "atrm":
		c.kind = "schedules or removes an at job"
	case "kill", "pkill", "killall":
		// Its own background process: $!, %1 or a pid file it wrote.
		if verb == "kill" && (strings.Contains(line, "$!") || strings.Contains(joined, "$$") || strings.Contains(joined, "%") || strings.Contains(line, "$(cat /tmp/") || joined == "-l") {
			c.kind = "kill-own"
			return c, true
		}
		c.kind, c.name = "kill", joined
	case "vi", "vim", "nvim", "nano", "ee", "emacs", "pico", "joe", "mcedit", "sudoedit", "visudo":
		for _, p := range words() {
			if !temporary(normPath(p)) || verb == "visudo" || verb == "sudoedit" {
				c.kind = "opens an editor on a system file, which without a terminal can hang or change it"
				return c, true
			}
		}
		if verb == "visudo" {
			c.kind = "runs visudo"
			return c, true
		}
		return c, false
	case "iptables", "ip6tables", "nft", "ufw", "firewall-cmd", "pfctl", "ipfw", "ebtables", "arptables":
		if readOnlyFirewall(args) {
			return c, false
		}
		c.kind = "changes the firewall"
	case "date":
		if len(args) == 0 || strings.HasPrefix(first, "+") || first == "-u" || first == "-d" || first == "--date" || first == "-r" || first == "-R" || strings.HasPrefix(first, "-I") || strings.HasPrefix(first, "--iso") || strings.HasPrefix(first, "--rfc") {
			return c, false
		}
		c.kind = "sets the system clock"
	case "hwclock", "timedatectl", "ntpdate", "chronyc":
		if verb == "timedatectl" && (len(args) == 0 || first == "status" || first == "show") || verb == "hwclock" && (len(args) == 0 || first == "-r" || first == "--show") {
			return c, false
		}
		c.kind = "sets the system clock"
	case "sysctl":
		if !slices.Contains(args, "-w") && !strings.Contains(joined, "=") && !slices.Contains(args, "-p") {
			return c, false
		}
		c.kind = "changes kernel parameters"
	case "auditctl", "augenrules":
		if joined == "-l" || joined == "-s" {
			return c, false
		}
		c.kind = "changes the kernel audit rules"
	case "setenforce", "aa-disable", "aa-complain", "apparmor_parser":
		c.kind = "changes the mandatory access control"
	case "swapoff", "swapon", "shutdown", "reboot", "halt", "poweroff", "telinit", "init":
		c.kind = "changes the running system (" + verb + ")"
	case "hostname", "hostnamectl":
		if len(words()) == 0 || first == "status" || first == "-f" || first == "-i" || first == "-I" || first == "-d" || first == "-s" {
			return c, false
		}
		c.kind = "changes the host name"
	case "ldconfig", "update-ca-certificates", "update-ca-trust", "certctl", "update-alternatives", "update-grub", "grub-mkconfig", "depmod", "update-initramfs", "dracut":
		c.kind = "regenerates system state (" + verb + "), which it cannot tell is restored"
	case "ip":
		if !regexp.MustCompile(`^(?:link|addr|address|route|rule|neigh|tuntap|netns)\s+(?:add|del|delete|set|flush|change|replace)\b`).MatchString(joined) {
			return c, false
		}
		c.kind = "changes the network configuration"
	case "ifconfig", "ifdown", "ifup", "nmcli", "route":
		if len(words()) <= 1 && verb != "ifdown" && verb != "ifup" {
			return c, false
		}
		c.kind = "changes the network configuration"
	case "journalctl":
		if !regexp.MustCompile(`--(?:vacuum|rotate|flush|relinquish)`).MatchString(joined) {
			return c, false
		}
		c.kind = "rotates or deletes the journal"
	case "logrotate":
		c.kind = "rotates logs"
	case "gcloud", "aws", "az", "kubectl", "docker", "podman", "ctr", "crictl", "helm", "oc":
		c.kind = "calls a cloud or container API (" + verb + "), whose changes it cannot tell"
	default:
		if pm := packageChange(verb, args); pm != "" {
			c.kind = "installs or removes software (" + pm + ")"
			return c, true
		}
		return c, false
	}
	return c, true
}

// lastOperand is the last word of args that is neither an option nor the
// value of one of the single-letter options in withValue.
func lastOperand(args []string, withValue string) string {
	name := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--"):
			if !strings.Contains(a, "=") && !slices.Contains([]string{"--create-home", "--no-create-home", "--system", "--no-user-group", "--user-group", "--disabled-password", "--disabled-login", "--quiet"}, a) {
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) == 2:
			if strings.Contains(withValue, a[1:]) {
				i++
			}
		case strings.HasPrefix(a, "-"):
		default:
			name = a
		}
	}
	return name
}

// homeCreated says whether useradd's words create a home directory.
func homeCreated(flags string) bool {
	return regexp.MustCompile(`(^|\s)(-m|--create-home)(\s|$)`).MatchString(flags)
}

// homeRemoved says whether userdel's words remove the home directory.
func homeRemoved(flags string) bool {
	return regexp.MustCompile(`(^|\s)(-[a-z]*r[a-z]*|--remove(-home|-all-files)?)(\s|$)`).MatchString(flags)
}

// serviceChange reads systemctl and service commands.
func serviceChange(verb string, args []string) (change, bool) {
	c := change{verb: verb, kind: "service"}
	var sub, unit string
	var ops []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			ops = append(ops, a)
		}
	}
	switch verb {
	case "systemctl":
		if len(ops) == 0 {
			return c, false
		}
		sub = ops[0]
		if len(ops) > 1 {
			unit = ops[1]
		}
	case "service", "rc-service":
		if len(ops) < 2 {
			return c, false
		}
		unit, sub = ops[0], ops[1]
	default: // update-rc.d NAME defaults, chkconfig NAME on
		if len(ops) == 0 {
			return c, false
		}
		unit, sub = ops[0], "enable"
	}
	switch sub {
	case "status", "show", "cat", "list-units", "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "is-active", "is-enabled", "is-failed", "help", "--help", "status-all":
		return c, false
	case "daemon-reload", "daemon-reexec", "reset-failed":
		c.kind = "reload"
		return c, true
	case "stop", "disable":
		c.undo = true
	}
	c.verb = sub
	c.name = strings.TrimSuffix(path.Base(unit), ".service")
	if strings.Contains(unit, "/") && (sub == "link" || sub == "enable") {
		c.link = "/etc/systemd/system/" + path.Base(unit) // a unit file outside the search path
	}
	return c, true
}

// packageChange names the package manager when verb and args install,
// remove or upgrade software.
func packageChange(verb string, args []string) string {
	sub := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			sub = a
			break
		}
	}
	switch verb {
	case "apt", "apt-get", "aptitude", "yum", "dnf", "zypper", "apk", "snap", "flatpak", "brew", "pkg", "pacman", "emerge":
		if slices.Contains([]string{"install", "in", "remove", "rm", "purge", "erase", "upgrade", "dist-upgrade", "update", "up", "autoremove", "reinstall", "add", "del", "-S", "-R"}, sub) ||
			verb == "pacman" && slices.ContainsFunc(args, func(a string) bool {
				return strings.HasPrefix(a, "-S") || strings.HasPrefix(a, "-R") || strings.HasPrefix(a, "-U")
			}) {
			return verb
		}
	case "dpkg", "rpm":
		if slices.ContainsFunc(args, func(a string) bool {
			return slices.Contains([]string{"-i", "--install", "-r", "--remove", "-P", "--purge", "-U", "-e", "--erase", "--upgrade", "-ivh", "-Uvh"}, a)
		}) {
			return verb
		}
	case "pip", "pip3", "pipx", "gem", "npm", "yarn", "pnpm", "cargo", "composer", "conda":
		if slices.Contains([]string{"install", "i", "add", "uninstall", "remove", "update", "upgrade", "ci", "link"}, sub) {
			return verb
		}
	case "cpan", "cpanm", "cpanp":
		return verb // any call builds ~/.cpan and may install
	case "go":
		if sub == "install" || sub == "get" {
			return "go " + sub
		}
	case "python", "python2", "python3":
		if len(args) >= 3 && args[0] == "-m" && (args[1] == "pip" || args[1] == "ensurepip") && (args[2] == "install" || args[2] == "uninstall") {
			return "pip"
		}
	case "make":
		if sub == "install" || sub == "uninstall" {
			return "make " + sub
		}
	}
	return ""
}

// readOnlyFirewall says whether firewall args only list rules.
func readOnlyFirewall(args []string) bool {
	for _, a := range args {
		switch a {
		case "-A", "-I", "-D", "-F", "-X", "-P", "-N", "-R", "-Z", "-E", "--append", "--insert", "--delete", "--flush", "--policy",
			"add", "delete", "flush", "insert", "replace", "enable", "disable", "allow", "deny", "reject", "reset", "reload", "--reload", "-f", "-e", "-d":
			return false
		}
		if strings.HasPrefix(a, "--add") || strings.HasPrefix(a, "--remove") || strings.HasPrefix(a, "--set") {
			return false
		}
	}
	return true
}

// stripPrefixes drops what runs the real command: sudo (and its options),
// env, VAR=value assignments, timeout N, nohup, nice, command, exec, su -c.
func stripPrefixes(w []string) []string {
	for len(w) > 0 {
		switch v := path.Base(w[0]); {
		case v == "sudo" || v == "doas":
			w = w[1:]
			for len(w) > 0 && strings.HasPrefix(w[0], "-") {
				if w[0] == "-u" || w[0] == "-g" || w[0] == "-C" || w[0] == "-D" {
					w = w[1:]
				}
				w = w[1:]
			}
		case v == "env" || v == "nohup" || v == "command" || v == "exec" || v == "builtin" || v == "stdbuf":
			w = w[1:]
			for len(w) > 0 && strings.HasPrefix(w[0], "-") {
				w = w[1:]
			}
		case v == "nice" || v == "ionice":
			w = w[1:]
			for len(w) > 0 && strings.HasPrefix(w[0], "-") {
				if w[0] == "-n" || w[0] == "-c" {
					w = w[1:]
				}
				w = w[1:]
			}
		case v == "timeout":
			w = w[1:]
			for len(w) > 0 && strings.HasPrefix(w[0], "-") {
				w = w[1:]
			}
			if len(w) > 0 {
				w = w[1:] // the duration
			}
		case assignmentRE.MatchString(w[0]):
			w = w[1:]
		default:
			return w
		}
	}
	return w
}

var assignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// shellWords splits a simple command into words, quotes removed (roughly:
// no escapes inside quotes).
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ' || ch == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// normPath strips quotes and a trailing slash, and writes the home
// directory as ~.
func normPath(p string) string {
	p = strings.Trim(strings.TrimSpace(p), `"'`)
	for _, home := range []string{"${HOME}", "$HOME"} {
		if p == home || strings.HasPrefix(p, home+"/") {
			p = "~" + p[len(home):]
		}
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}

func devNull(p string) bool {
	return p == "/dev/null" || p == "/dev/stdout" || p == "/dev/stderr" || p == "/dev/tty" || strings.HasPrefix(p, "/dev/fd/")
}

// redirectRE matches output redirections: the operator and the target.
var redirectRE = regexp.MustCompile(`(?:^|[^0-9&<>])([0-9]?>>?\|?|&>>?)\s*("[^"]*"|'[^']*'|[^\s;&|()<>]+)`)

// stripRedirects removes the output redirections of a simple command.
func stripRedirects(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range redirectRE.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[2]])
		b.WriteByte(' ')
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// splitCommands splits a command line into its simple commands, roughly:
// at newlines, ;, &, |, (, ) and ` outside quotes, with each command
// substitution on its own, and without the shell keywords that start a
// command.
func splitCommands(s string) []string {
	s = substitutions(s)
	var out []string
	var cur strings.Builder
	flush := func() {
		f := strings.Fields(cur.String())
		cur.Reset()
		for len(f) > 0 && keywords[f[0]] {
			f = f[1:]
		}
		if len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote = ch
			cur.WriteByte(ch)
		case ch == '\\' && i+1 < len(s):
			i++
			if s[i] == '\n' {
				cur.WriteByte(' ') // a continued line
			} else {
				cur.WriteByte(ch)
				cur.WriteByte(s[i])
			}
		case ch == '&' && (i > 0 && s[i-1] == '>' || i+1 < len(s) && s[i+1] == '>'), ch == '|' && i > 0 && s[i-1] == '>':
			cur.WriteByte(ch) // >&2, &>, >|: redirections
		case strings.IndexByte(";&|()`\n", ch) >= 0:
			flush()
		default:
			cur.WriteByte(ch)
		}
	}
	flush()
	return out
}

var keywords = map[string]bool{"then": true, "else": true, "do": true, "if": true, "elif": true, "while": true, "until": true, "!": true, "time": true, "{": true, "}": true}

// substitutions moves each command substitution, $(...) or `...`, to a
// line of its own and leaves $SUBST in its place, so that the command
// around it keeps its words (useradd -p $(openssl passwd x) NAME).
func substitutions(s string) string {
	var subs []string
	for {
		open := strings.LastIndex(s, "$(")
		if open < 0 {
			break
		}
		depth, end := 0, -1
		for i := open + 2; i < len(s) && end < 0; i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				if depth == 0 {
					end = i
				}
				depth--
			}
		}
		if end < 0 {
			break
		}
		subs = append(subs, s[open+2:end])
		s = s[:open] + "$SUBST" + s[end+1:]
	}
	return strings.Join(append([]string{s}, subs...), "\n")
}

// temporary says whether a path is in a temporary directory or the
// working directory (a relative path).
func temporary(t string) bool {
	for _, p := range []string{"/tmp/", "/var/tmp/", "/dev/shm/", "$TMPDIR/", "${TMPDIR}/", "$VIGIL_WORKDIR", "${VIGIL_WORKDIR}"} {
		if strings.HasPrefix(t, p) {
			return !strings.Contains(t, "..")
		}
	}
	if t == "/tmp" || t == "/var/tmp" || t == "/dev/shm" {
		return false // the directory itself is the host's
	}
	return !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "~") && !strings.HasPrefix(t, "$") && !strings.Contains(t, "..") && t != "." && t != "*"
}

// networkRE matches downloads, package installs, cloud CLIs and tools
// that reach other hosts.
var networkRE = regexp.MustCompile(`(?i)(?:https?|ftp)://|(^|[\s;&|(` + "`" + `])(?:curl|wget|git\s+clone|pip[3x]?\s+install|python3?\s+-m\s+pip\s+install|(?:apt-get|apt|yum|dnf|zypper|apk)\s+(?:-y\s+)?(?:install|add|update)|npm\s+(?:install|i|ci)|yarn\s+add|gem\s+install|cargo\s+install|go\s+(?:install|get)|cpanm?|cpanp|composer\s+(?:install|require)|gcloud|aws|az|scp|sftp|rsync|ssh|sshpass|ping|nc|ncat|telnet|nslookup|dig|ldapsearch|ldapadd|ldapmodify|whois)(\s|$)|/dev/(?:tcp|udp)/`)

// needsNetwork says whether any of the texts downloads or installs
// something, or calls a cloud.
func needsNetwork(texts ...string) bool {
	for _, t := range texts {
		if networkRE.MatchString(t) {
			return true
		}
	}
	return false
}
