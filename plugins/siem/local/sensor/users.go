package sensor

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"time"
)

// userRecheck is how often the passwd file's modification time is checked.
const userRecheck = 5 * time.Second

// userNames resolves numeric uids to user names from a passwd file, caching
// the file and re-reading it when it changes. It is not safe for concurrent
// use.
type userNames struct {
	path    string // "" disables resolution
	byUID   map[string]string
	mtime   time.Time
	checked time.Time
	now     func() time.Time
}

func newUserNames(path string) *userNames {
	return &userNames{path: path, now: time.Now}
}

// name returns the user name of uid, or uid itself when it is unknown.
func (u *userNames) name(uid string) string {
	if uid == "" {
		return ""
	}
	u.refresh()
	if n, ok := u.byUID[uid]; ok {
		return n
	}
	return uid
}

func (u *userNames) refresh() {
	if u.path == "" {
		return
	}
	now := u.now()
	if u.byUID != nil && now.Sub(u.checked) < userRecheck {
		return
	}
	u.checked = now
	fi, err := os.Stat(u.path)
	if err != nil {
		return
	}
	if u.byUID != nil && fi.ModTime().Equal(u.mtime) {
		return
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		return
	}
	u.mtime = fi.ModTime()
	u.byUID = parsePasswd(b)
}

// parsePasswd maps uid to name for each name:x:uid:... line; the first
// name of a uid wins, as getpwuid does.
func parsePasswd(b []byte) map[string]string {
	m := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, ":", 4)
		if len(parts) < 3 || parts[0] == "" {
			continue
		}
		if _, dup := m[parts[2]]; !dup {
			m[parts[2]] = parts[0]
		}
	}
	return m
}
