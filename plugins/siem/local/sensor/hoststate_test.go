package sensor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestHostLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	original := savedStatus{Enabled: 0, BacklogLimit: 64, RateLimit: 10, BacklogWaitTime: 15000}
	changed := savedStatus{Enabled: 1, BacklogLimit: 32768, BacklogWaitTime: 15000}

	a, orig, recovered, err := acquireLease(ctx, dir, original)
	if err != nil || orig != original || recovered {
		t.Fatalf("first acquire: %v %+v %v", err, orig, recovered)
	}
	// A second sensor sees the kernel as the first left it, but must
	// restore the status the first found.
	b, orig, _, err := acquireLease(ctx, dir, changed)
	if err != nil || orig != original {
		t.Fatalf("second acquire: %v %+v", err, orig)
	}
	if _, last, err := a.release(ctx); err != nil || last {
		t.Fatalf("first release: last=%v err=%v, want not last", last, err)
	}
	orig, last, err := b.release(ctx)
	if err != nil || !last || orig != original {
		t.Fatalf("second release: %+v last=%v err=%v", orig, last, err)
	}

	// A sensor that crashed (its lease file closed without release) leaves
	// its saved status for the next one.
	c, _, _, err := acquireLease(ctx, dir, original)
	if err != nil {
		t.Fatal(err)
	}
	c.holders.Close() // the crash
	d, orig, recovered, err := acquireLease(ctx, dir, changed)
	if err != nil || orig != original || !recovered {
		t.Fatalf("acquire after a crash: %v %+v recovered=%v", err, orig, recovered)
	}
	// A state file removed behind the sensor's back restores nothing.
	if err := os.Truncate(filepath.Join(dir, stateFileName), 0); err != nil {
		t.Fatal(err)
	}
	if _, last, err := d.release(ctx); err != nil || last {
		t.Fatalf("release without state: last=%v err=%v", last, err)
	}
}
