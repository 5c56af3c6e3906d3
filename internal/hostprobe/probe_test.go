package hostprobe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The shim runs probes through its reaper: a Prober with Run routes every
// probe through it.
func TestProberRun(t *testing.T) {
	runc := filepath.Join(t.TempDir(), "runc")
	if err := os.WriteFile(runc, []byte("#!/bin/sh\necho 'runc version 1.5.2'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var ran []string
	pr := Prober{Run: func(cmd *exec.Cmd) error {
		ran = append(ran, cmd.Path)
		return cmd.Run()
	}}
	info, err := pr.ProbeRunc(context.Background(), runc)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "1.5.2" || len(ran) != 1 || ran[0] != runc {
		t.Fatalf("version %q, runner saw %v; want 1.5.2 through the runner", info.Version, ran)
	}
}
