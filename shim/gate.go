package shim

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/containerd/containerd/v2/pkg/sys/reaper"

	"github.com/hardened-dev/hardened/internal/hostprobe"
)

// gateRunc refuses a runc binary with a known escape (hostprobe's table:
// CVE-2024-21626, CVE-2025-31133/52565/52881). The verdict is cached in
// cacheDir by the binary's identity, so a container start runs runc
// --version only when the binary changed.
func gateRunc(ctx context.Context, pr hostprobe.Prober, path, cacheDir string) error {
	_, err := pr.GateRunc(ctx, path, cacheDir)
	return err
}

// RunThroughReaper runs cmd to completion through containerd's shim
// reaper. In the shim process the reaper calls wait4(-1) on every SIGCHLD,
// so a plain cmd.Run can lose its child's exit to it and fail with ECHILD;
// every command the shim itself runs (the runc gate's `runc --version`)
// must go through here. Only valid in a process whose reaper loop runs
// (pkg/shim starts it), so it is installed by the task plugin, not by
// NewService.
func RunThroughReaper(cmd *exec.Cmd) error {
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return err
	}
	status, err := reaper.Default.Wait(cmd, ec)
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("exit status %d", status)
	}
	return nil
}
