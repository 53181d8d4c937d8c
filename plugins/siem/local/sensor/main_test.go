package sensor

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
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
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}
