package attack

import (
	"errors"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		id       string
		wantName string
		wantErr  error
		wantMsg  string
	}{
		{id: "T1070.002", wantName: "Clear Linux or Mac System Logs"},
		{id: " t1053.003 ", wantName: "Cron"},
		{id: "T1059", wantName: "Command and Scripting Interpreter"},
		{id: "T1099", wantErr: ErrRevoked, wantMsg: `T1099 "Timestomp": revoked ATT&CK technique, use T1070.006 instead`},
		{id: "T9999", wantErr: ErrUnknown, wantMsg: "T9999: unknown ATT&CK Enterprise technique (ATT&CK v18.1)"},
		{id: "T1070.2", wantErr: ErrMalformed},
		{id: "1070", wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := Lookup(tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Lookup(%q) error = %v, want %v", tc.id, err, tc.wantErr)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Fatalf("Lookup(%q) error text = %q, want %q", tc.id, err.Error(), tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tc.id, err)
			}
			if got.Name != tc.wantName {
				t.Fatalf("Lookup(%q).Name = %q, want %q", tc.id, got.Name, tc.wantName)
			}
		})
	}
}

func TestDeprecatedRejected(t *testing.T) {
	n := 0
	for id, tech := range Default().techniques {
		if !tech.Deprecated || tech.Revoked {
			continue
		}
		n++
		if _, err := Lookup(string(id)); !errors.Is(err, ErrDeprecated) {
			t.Errorf("Lookup(%s) = %v, want ErrDeprecated", id, err)
		}
	}
	if n == 0 {
		t.Fatal("the embedded table has no deprecated technique to test with")
	}
}

func TestTableShape(t *testing.T) {
	tab := Default()
	if tab.Version != "18.1" || tab.Domain != "enterprise-attack" {
		t.Fatalf("table = %s %s", tab.Domain, tab.Version)
	}
	tactics := tab.Tactics()
	if len(tactics) != 14 || tactics[0].ShortName != "reconnaissance" || tactics[13].ShortName != "impact" {
		t.Fatalf("tactics = %v", tactics)
	}
	if got := len(tab.Techniques()); got != 691 {
		t.Fatalf("current techniques = %d, want 691", got)
	}
	cron, _ := Lookup("T1053.003")
	if got := cron.FullName(); got != "Scheduled Task/Job: Cron" {
		t.Fatalf("FullName = %q", got)
	}
	if len(cron.Tactics) != 3 || cron.Tactics[0] != "execution" {
		t.Fatalf("cron tactics = %v", cron.Tactics)
	}
}

func TestTactic(t *testing.T) {
	for _, name := range []string{"defense-evasion", "TA0005", "Defense Evasion", "DEFENSE-EVASION"} {
		tac, err := Default().Tactic(name)
		if err != nil || tac.ShortName != "defense-evasion" || tac.Order != 6 {
			t.Errorf("Tactic(%q) = %+v, %v", name, tac, err)
		}
	}
	if _, err := Default().Tactic("stealthiness"); err == nil {
		t.Error("Tactic(stealthiness) succeeded")
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		signal, expected TechniqueID
		want             bool
	}{
		{"T1070.002", "T1070.002", true},
		{"T1070", "T1070.002", true},
		{"T1070.002", "T1070", false},
		{"T1070.003", "T1070.002", false},
		{"T1071", "T1070.002", false},
	}
	for _, tc := range tests {
		if got := tc.signal.Covers(tc.expected); got != tc.want {
			t.Errorf("%s.Covers(%s) = %v, want %v", tc.signal, tc.expected, got, tc.want)
		}
		lower := []string{"T0000", " " + strings.ToLower(string(tc.signal)) + " "}
		if got := AnyCovers(lower, strings.ToLower(string(tc.expected))); got != tc.want {
			t.Errorf("AnyCovers(%q, %s) = %v, want %v", lower, tc.expected, got, tc.want)
		}
	}
	if AnyCovers(nil, "T1070") {
		t.Error("AnyCovers(nil) = true")
	}
}
