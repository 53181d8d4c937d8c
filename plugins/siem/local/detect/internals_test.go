package detect

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bradleyjkemp/sigma-go"
)

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	pairs := []struct{ a, b string }{
		{"EXECVE", "execve"}, {"/usr/bin/Crontab", "/USR/BIN/crontab"}, {"k", "\u212a"}, // Kelvin sign
		{"s", "ſ"}, {"straße", "STRASSE"}, {"straße", "STRAßE"}, {"Σ", "ς"}, {"σ", "ς"},
		{"\xff", "\uFFFD"}, {"\xff", "\xfe"}, {"a\xffb", "A\uFFFDB"}, {"", ""}, {"a", ""}, {"é", "É"}, {"é", "e"},
	}
	for _, p := range pairs {
		if got, want := foldKey(p.a) == foldKey(p.b), strings.EqualFold(p.a, p.b); got != want {
			t.Errorf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", p.a, p.b, got, want)
		}
	}
	// Random strings over an alphabet of fold-interesting runes.
	alphabet := []rune("aAkKsSſ\u212aσςΣéÉß\uFFFD-/ 0")
	rnd := rand.New(rand.NewPCG(3, 4))
	gen := func() string {
		var b strings.Builder
		for i := rnd.IntN(4); i > 0; i-- {
			b.WriteRune(alphabet[rnd.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 20000; i++ {
		a, b := gen(), gen()
		if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", a, b, got, want)
		}
	}
	if got := foldKey("/USR/Bin"); got != "/usr/bin" {
		t.Errorf("ASCII foldKey = %q", got)
	}
}

// TestAutomatonMatchesBruteForce compares every reported occurrence with
// strings.Index over all patterns.
func TestAutomatonMatchesBruteForce(t *testing.T) {
	patterns := []string{"he", "she", "his", "hers", "/bin/", "bin", "/usr/bin/crontab", "a", "aa", "aaa", "-l", " -l", "é"}
	a := newAutomaton(patterns)
	inputs := []string{"ushers", "/usr/bin/crontab -l", "aaaa", "", "xyz", "USHERS", "/BIN/sh", "café", "hishe"}
	for _, in := range inputs {
		type occ struct{ p, end int }
		var got []occ
		a.scan(in, func(p int32, end int) { got = append(got, occ{int(p), end}) })
		var want []occ
		lower := strings.ToLower(in)
		for i := range lower {
			for p, pat := range patterns {
				if strings.HasPrefix(lower[i:], pat) {
					want = append(want, occ{p, i + len(pat)})
				}
			}
		}
		sortOcc := func(o []occ) {
			slices.SortFunc(o, func(x, y occ) int {
				if x.end != y.end {
					return x.end - y.end
				}
				return x.p - y.p
			})
		}
		sortOcc(got)
		sortOcc(want)
		if !slices.Equal(got, want) {
			t.Errorf("scan(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestWildcards(t *testing.T) {
	tests := []struct {
		value      string
		segs       []string
		wild       bool
		re         string
		matches    []string
		nonMatches []string
	}{
		{`/home/*/.bashrc`, []string{"/home/", "/.bashrc"}, true, `/home/.*/\.bashrc`,
			[]string{"/home/bob/.bashrc", "/HOME/a/b/.BASHRC"}, []string{"/home/.bashrc.bak", "/root/.bashrc"}},
		{`/root/.ssh/authorized_key?`, []string{"/root/.ssh/authorized_key", ""}, true, `/root/\.ssh/authorized_key.`,
			[]string{"/root/.ssh/authorized_keys"}, []string{"/root/.ssh/authorized_key"}},
		{`/etc/literal\*star`, []string{"/etc/literal*star"}, false, `/etc/literal\*star`,
			[]string{"/etc/literal*star"}, []string{"/etc/literalXstar"}},
		{`a\\*b`, []string{`a\`, "b"}, true, `a\\.*b`, []string{`a\xyzb`}, []string{"axb"}},
		{`C:\Windows`, []string{`C:\Windows`}, false, `C:\\Windows`, []string{`c:\windows`}, nil},
	}
	for _, tt := range tests {
		segs, wild, _, _ := wildcardSegments(tt.value)
		if !slices.Equal(segs, tt.segs) || wild != tt.wild {
			t.Errorf("wildcardSegments(%q) = %q %v, want %q %v", tt.value, segs, wild, tt.segs, tt.wild)
		}
		body := wildcardRegexp(tt.value)
		if body != tt.re {
			t.Errorf("wildcardRegexp(%q) = %q, want %q", tt.value, body, tt.re)
		}
		re := regexp.MustCompile("(?is)^" + body + "$")
		for _, m := range tt.matches {
			if !re.MatchString(m) {
				t.Errorf("%q should match %q", tt.value, m)
			}
		}
		for _, m := range tt.nonMatches {
			if re.MatchString(m) {
				t.Errorf("%q should not match %q", tt.value, m)
			}
		}
	}
}

// TestRegexMustSound checks, on random strings, that whenever an expression
// matches, one of its necessary literals occurs (case-folded) and the
// string is at least regexMinLen long.
func TestRegexMustSound(t *testing.T) {
	exprs := []struct {
		expr string
		lits []string // expected literal set (nil: none)
	}{
		{`-(W|R)\s?(\s|"|')([0-9a-fA-F]{2}\s?){2,20}(\s|"|')`, []string{"-R", "-W"}},
		{`(?:\s-[^-\s]{0,20}i|\s--inode\s)`, nil},
		{`[^/]{100,}$`, nil},
		{`(?i)/lib/python3\.([5-9]|[0-9]{2})/site-packages/`, []string{"/LIB/PYTHON3."}},
		{`\s-[FTd]\s`, nil},
		{`-D`, []string{"-D"}},
		{`abc|abd`, []string{"abc", "abd"}},
		{`x*`, nil},
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	alphabet := "-RWrwDd \t\"'0aF9/lib/python3.7/site-packages/inode"
	for _, e := range exprs {
		lits, ok := regexMust(e.expr)
		if e.lits != nil && (!ok || !slices.Equal(lits, e.lits)) {
			t.Errorf("regexMust(%q) = %q %v, want %q", e.expr, lits, ok, e.lits)
		}
		re := regexp.MustCompile(e.expr)
		minLen := regexMinLen(e.expr)
		for i := 0; i < 3000; i++ {
			var b strings.Builder
			for j := rnd.IntN(140); j > 0; j-- {
				b.WriteByte(alphabet[rnd.IntN(len(alphabet))])
			}
			s := b.String()
			if i%3 == 0 && e.lits != nil {
				s += e.lits[0] + " 0a 9F 'x"
			}
			if !re.MatchString(s) {
				continue
			}
			if len(s) < minLen {
				t.Fatalf("%q matches %q shorter than min length %d", e.expr, s, minLen)
			}
			if ok {
				found := false
				for _, l := range lits {
					found = found || strings.Contains(strings.ToLower(s), foldKey(l))
				}
				if !found {
					t.Fatalf("%q matches %q without any of %q", e.expr, s, lits)
				}
			}
		}
	}
}

// TestShadowNeeds pins down the index keys derived for typical conditions.
func TestShadowNeeds(t *testing.T) {
	tests := []struct {
		name      string
		detection string
		need      string // "top", "never" or the atoms joined by "; "
	}{
		{"equality beats type", "selection:\n        type: EXECVE\n        a0: base64\n    condition: selection", `a0 equals "base64"`},
		{"endswith", "selection:\n        Image|endswith: '/crontab'\n    condition: selection", `Image endswith "/crontab"`},
		{"not at top", "filter:\n        User: root\n    condition: not filter", "top"},
		{"and not keeps positive part", "sel:\n        Image|endswith: '/nc'\n    filter:\n        User: root\n    condition: sel and not filter", `Image endswith "/nc"`},
		{"or unions", "a:\n        Image|endswith: '/nc'\n    b:\n        CommandLine|contains: 'socket'\n    condition: a or b", `Image endswith "/nc"; CommandLine contains "socket"`},
		{"contains all keeps one", "sel:\n        CommandLine|contains|all:\n            - 'py'\n            - 'subprocess'\n    condition: sel", `CommandLine contains "subprocess"`},
		{"undefined search", "sel:\n        a: b\n    condition: nothing", "never"},
		{"regex literal", "sel:\n        CommandLine|re: 'foo[0-9]+bar'\n    condition: sel", `CommandLine contains "foo"`},
		{"regex without literal", "sel:\n        CommandLine|re: '.{300,}'\n    condition: sel", "top"},
		{"cidr", "sel:\n        DestinationIp|cidr: '10.0.0.0/8'\n    condition: sel", "top"},
		{"wildcard exact", "sel:\n        name: '/home/*/.bashrc'\n    condition: sel", `name endswith "/.bashrc"`},
		{"empty contains", "sel:\n        CommandLine|contains: ''\n    condition: sel", "top"},
		{"null", "sel:\n        CommandLine: 'null'\n    condition: sel", "top"},
		{"case folded key", "sel:\n        Image: '/USR/BIN/ID'\n    condition: sel", `Image equals "/usr/bin/id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// sigma-go's parse, not ParseRule: the loader refuses an
			// undefined search, the shadow must still model it.
			sr, err := sigma.ParseRule([]byte(rule(plc, "detection:\n    "+tt.detection+"\n")))
			if err != nil {
				t.Fatal(err)
			}
			n := ruleShadow(sr).need()
			got := "top"
			if !n.top {
				parts := []string{}
				for _, a := range n.atoms {
					parts = append(parts, a.String())
				}
				got = strings.Join(parts, "; ")
				if len(parts) == 0 {
					got = "never"
				}
			}
			if got != tt.need {
				t.Errorf("need = %s, want %s", got, tt.need)
			}
		})
	}
}
