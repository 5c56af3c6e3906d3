//go:build hardened_testhook

package shim

import (
	"context"
	"os"
	"os/exec"
)

// TestHookEnv names, in a shim built with the hardened_testhook tag, a
// program the shim runs (with the container id and bundle as arguments)
// after pinning a Create's mount sources and before the stock Create; it
// comes from the shim's environment, which is containerd's. The
// integration tests use it to swap a source at the worst moment. Builds
// without the tag contain neither this variable's reader nor the hook.
const TestHookEnv = "HARDENED_TEST_HOOK_AFTER_PIN"

func init() {
	prog := os.Getenv(TestHookEnv)
	if prog == "" {
		return
	}
	testHookAfterPin = func(_ context.Context, id, bundle string) error {
		return RunThroughReaper(exec.Command(prog, id, bundle))
	}
}
