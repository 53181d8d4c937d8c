package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/core/telemetry"
)

// helperEnv makes the test binary act as a small helper process instead of
// running the tests: the sensor excludes its own pid from its rules, so the
// live tests need a separate process for the syscalls they audit.
const helperEnv = "VIGIL_SENSOR_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "settimeofday":
		// Set the clock to what it reads: audited, and harmless.
		var tv unix.Timeval
		if err := unix.Gettimeofday(&tv); err != nil {
			fmt.Fprintln(os.Stderr, "gettimeofday:", err)
			os.Exit(1)
		}
		if err := unix.Settimeofday(&tv); err != nil {
			fmt.Fprintln(os.Stderr, "settimeofday:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "clock_settime":
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
			fmt.Fprintln(os.Stderr, "clock_gettime:", err)
			os.Exit(1)
		}
		if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
			fmt.Fprintln(os.Stderr, "clock_settime:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "start":
		// Start as whatever user runs the helper; report the error.
		s := New(Config{StateDir: os.TempDir()})
		err := s.Start(context.Background(), func([]telemetry.Event) {})
		if err == nil {
			_ = s.Stop(context.Background())
			fmt.Println("started")
			os.Exit(0)
		}
		fmt.Println(err)
		if errors.Is(err, ErrUnavailable) {
			os.Exit(3)
		}
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}
