package harness

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
)

// CtrResult is what a ctr invocation printed and its exit code.
type CtrResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Ctr runs the pinned ctr against the private containerd in namespace ns.
// A non-zero exit is not an error (it is in ExitCode); failing to run ctr
// at all is.
func (d *Daemon) Ctr(ctx context.Context, ns string, args ...string) (CtrResult, error) {
	full := append([]string{"--address", d.Address, "--namespace", ns}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(d.ToolsBin, "ctr"), full...)
	cmd.Env = daemonEnv(d.Bins.Dir, d.ToolsBin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := CtrResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	return res, err
}

// CtrRun is `ctr run --rm --fifo-dir <private> FLAGS IMAGE ID ARGS...`:
// the CLI path (`ctr run --runtime io.containerd.hardened.v2
// --runtime-config-path F` sends runtimeoptions/v1.Options like CRI does).
func (d *Daemon) CtrRun(ctx context.Context, ns string, flags []string, image, id string, args ...string) (CtrResult, error) {
	full := []string{"run", "--rm", "--fifo-dir", d.FIFODir}
	full = append(full, flags...)
	full = append(full, image, id)
	full = append(full, args...)
	return d.Ctr(ctx, ns, full...)
}
