package cli

import (
	"reflect"
	"testing"
)

func TestKillChainOrder(t *testing.T) {
	m := map[string]int{"impact": 1, "discovery": 1, "persistence": 1, "execution": 1, "zz-custom": 1, "collection": 1}
	want := []string{"execution", "persistence", "discovery", "collection", "impact", "zz-custom"}
	if got := killChainOrder(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("killChainOrder = %v, want %v", got, want)
	}
}
