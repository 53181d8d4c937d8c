package atomic

import (
	"regexp"
	"strings"
)

// classify gives an imported test its safety from its command (with the
// argument defaults filled in) and whether it has a cleanup_command. It is
// a heuristic, and a conservative one:
//
//   - with a cleanup_command the test is reversible (Atomic Red Team's
//     cleanup undoes what the command did);
//   - without one, a command that changes the system (users, services,
//     packages, processes, kernel modules, mounts, firewall, cloud or
//     cluster resources, history) or writes, moves or deletes files outside
//     /tmp, /var/tmp, /dev/shm and the working directory is destructive;
//   - a command that only writes there is reversible (it leaves files in
//     temporary directories);
//   - a command that writes nothing is safe (discovery).
//
// When a write's target cannot be told (a variable, ~, $HOME), it counts as
// outside. It returns the level and why, for the file's header.
func classify(command string, hasCleanup bool) (safety, why string) {
	if hasCleanup {
		return "reversible", "the atomic has a cleanup_command"
	}
	for _, simple := range splitCommands(command) {
		if m := systemChangeRE.FindStringSubmatch(simple); m != nil {
			return "destructive", "no cleanup_command, and the command changes the system (" + strings.Fields(m[1])[0] + ")"
		}
	}
	targets, writes := writeTargets(command)
	for _, t := range targets {
		if !temporary(t) {
			return "destructive", "no cleanup_command, and the command writes " + t
		}
	}
	if writes {
		return "reversible", "no cleanup_command; the command only writes in temporary directories"
	}
	return "safe", "no cleanup_command, and the command writes nothing"
}

// systemChangeRE matches simple commands that change the system beyond
// files.
var systemChangeRE = regexp.MustCompile(`^((?:sudo\s+)?(?:` + strings.Join([]string{
	`useradd`, `userdel`, `usermod`, `adduser`, `deluser`, `groupadd`, `groupdel`, `groupmod`, `passwd`, `chpasswd`, `gpasswd`,
	`crontab`, `at`, `atrm`, `systemctl\s+(?:start|stop|restart|enable|disable|mask|kill|daemon-reload|set-default|isolate)`,
	`service\s+\S+\s+(?:start|stop|restart)`, `kill`, `pkill`, `killall`, `insmod`, `rmmod`, `modprobe`,
	`mount`, `umount`, `iptables`, `ip6tables`, `nft`, `ufw`, `firewall-cmd`, `setenforce`, `apt-get`, `apt`, `yum`, `dnf`,
	`zypper`, `apk`, `rpm`, `dpkg`, `pip3?\s+install`, `npm\s+install`, `gem\s+install`, `shutdown`, `reboot`, `halt`,
	`poweroff`, `telinit`, `swapoff`, `ldconfig`, `chattr`, `history\s+-c`, `shred`, `wipe`, `visudo`,
	`hostnamectl`, `timedatectl`, `sysctl\s+-w`, `setcap`, `auditctl`, `journalctl\s+--(?:vacuum|rotate)`,
	`gcloud`, `aws`, `az`, `kubectl`, `docker`, `podman`, `ctr`, `crictl`, `unset\s+HISTFILE`, `export\s+HISTFILE`,
}, "|") + `))(\s|$)`)

// fileWriteRE matches commands that write, move or delete files: every
// path argument counts as a target.
var fileWriteRE = regexp.MustCompile(`^(?:sudo\s+)?(rm|rmdir|unlink|mv|cp|ln|install|chmod|chown|chgrp|touch|mkdir|truncate|tee|sed\s+-i|zip|gzip|gunzip|bzip2|xz|tar|7z|curl|wget|git\s+clone|gcc|cc|make|split|csplit|dd)\b`)

// redirectRE matches output redirections and their target.
var redirectRE = regexp.MustCompile(`(?:^|[^0-9&<>])(?:[0-9]?>>?|&>)\s*("[^"]*"|'[^']*'|[^\s;&|)]+)`)

// writeTargets returns the files a command writes (redirections, and every
// path-like argument of a file-writing command) and whether it writes at
// all.
func writeTargets(command string) ([]string, bool) {
	var targets []string
	writes := false
	for _, m := range redirectRE.FindAllStringSubmatch(command, -1) {
		t := strings.Trim(m[1], `"'`)
		if t == "" || strings.HasPrefix(t, "&") || t == "/dev/null" || t == "/dev/stdout" || t == "/dev/stderr" {
			continue
		}
		writes = true
		targets = append(targets, t)
	}
	for _, simple := range splitCommands(command) {
		m := fileWriteRE.FindStringSubmatch(simple)
		if m == nil {
			continue
		}
		writes = true
		var paths []string
		for _, w := range strings.Fields(simple)[1:] {
			w = strings.Trim(w, `"'`)
			if strings.HasPrefix(w, "if=") {
				continue // dd's input
			}
			if i := strings.LastIndexByte(w, '='); i >= 0 && !strings.HasPrefix(w, "$") {
				w = w[i+1:] // dd of=/x, --output=/x
			}
			if strings.HasPrefix(w, "-") || w == "" || !pathLike(w) {
				continue
			}
			paths = append(paths, w)
		}
		if len(paths) == 0 {
			continue
		}
		switch verb := strings.Fields(strings.TrimPrefix(m[1], "sudo"))[0]; verb {
		case "cp", "ln", "install":
			paths = paths[len(paths)-1:] // the destination; the sources are read
		case "zip", "tar", "7z":
			paths = paths[:1] // the archive; the members are read
		}
		targets = append(targets, paths...)
	}
	return targets, writes
}

// splitCommands splits a command line into its simple commands, roughly:
// at newlines, ;, &&, ||, |, (, ), `, $( and the shell keywords that start
// a command.
func splitCommands(s string) []string {
	s = strings.NewReplacer("$(", "\n", "&&", "\n", "||", "\n", ";", "\n", "|", "\n", "(", "\n", ")", "\n", "`", "\n").Replace(s)
	var out []string
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		for len(f) > 0 && keywords[f[0]] {
			f = f[1:]
		}
		if len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}

var keywords = map[string]bool{"then": true, "else": true, "do": true, "if": true, "elif": true, "while": true, "until": true, "!": true, "{": true, "exec": true, "nohup": true, "time": true}

// pathLike says whether a word of a file-writing command may name a file
// outside the working directory.
func pathLike(w string) bool {
	if strings.Contains(w, "://") {
		return false // a URL
	}
	return strings.HasPrefix(w, "/") || strings.HasPrefix(w, "~") || strings.HasPrefix(w, "$") || strings.Contains(w, "/")
}

// temporary says whether a write target is in a temporary directory or the
// working directory (a relative path).
func temporary(t string) bool {
	for _, p := range []string{"/tmp/", "/var/tmp/", "/dev/shm/", "/dev/null", "/dev/tty", "/dev/stdout", "/dev/stderr", "$TMPDIR/", "${TMPDIR}/", "$VIGIL_WORKDIR", "${VIGIL_WORKDIR}"} {
		if strings.HasPrefix(t, p) {
			return !strings.Contains(t, "..")
		}
	}
	if t == "/tmp" || t == "/var/tmp" || t == "/dev/shm" {
		return true
	}
	return !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "~") && !strings.HasPrefix(t, "$") && !strings.Contains(t, "..")
}

// networkRE matches downloads, package installs, cloud CLIs and tools
// that reach other hosts.
var networkRE = regexp.MustCompile(`(?i)(?:https?|ftp)://|(^|[\s;&|(` + "`" + `])(?:curl|wget|git\s+clone|pip3?\s+install|(?:apt-get|apt|yum|dnf|zypper|apk)\s+(?:-y\s+)?(?:install|add|update)|npm\s+install|gem\s+install|go\s+(?:install|get)|gcloud|aws|az|scp|sftp|rsync|ssh|ping|nc|ncat|telnet|nslookup|dig|ldapsearch)(\s|$)|/dev/(?:tcp|udp)/`)

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
