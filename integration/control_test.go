//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/integration/harness"
)

// TestControlStockRuncShim runs the same probes through containerd's stock
// runc shim: it shows the harness reads what it claims to (full default
// capabilities, no no_new_privs, no seccomp, a writable rootfs), so the
// hardened tests' assertions are not vacuous.
func TestControlStockRuncShim(t *testing.T) {
	e := newEnv(t)
	id := e.id("stock")
	c := e.start(harness.Spec{ID: id, Runtime: harness.StockRunc(""), Args: sh(harness.Script(
		[2]string{"status", "cat /proc/self/status"},
		[2]string{"rootfs", "touch /x && echo ROOTFS-WRITABLE"},
	) + "echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", 30e9); err != nil {
		t.Fatalf("stock container: %v", err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	st := statusOf(t, "stock init", sec["status"])
	want := capBits(t, storedSpec(t, e, c).Process.Capabilities.Effective)
	if got := hexField(t, st, "CapEff"); got != want {
		t.Errorf("stock runc shim: CapEff = %016x, want the stored spec's %016x", got, want)
	}
	if v := intField(t, st, "Seccomp"); v != 0 {
		t.Errorf("stock runc shim: Seccomp = %d, want 0 (containerd's default spec has no filter)", v)
	}
	if !strings.Contains(sec["rootfs"], "ROOTFS-WRITABLE") {
		t.Errorf("stock runc shim: rootfs not writable:\n%s", sec["rootfs"])
	}
	res, err := c.Exec(e.ctx, harness.Exec{Args: []string{"ls", "-l", "/proc/1/fd"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec ls /proc/1/fd: %v\n%s", err, res.Output())
	}
	assertStdioOnly(t, "stock runc shim init", openFds(res.Stdout), res.Stdout)
}
