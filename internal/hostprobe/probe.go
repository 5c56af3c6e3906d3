package hostprobe

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// probeTimeout bounds one `--version` run; ctx may set a shorter one.
const probeTimeout = 10 * time.Second

// maxOutput bounds what is read of a `--version` run.
const maxOutput = 64 << 10

// RuntimeInfo is what probing a runtime binary found.
type RuntimeInfo struct {
	// Path is the absolute path that was run (symlinks resolved).
	Path string
	// Version is the version as printed ("1.5.2", "release-20260105.0").
	Version string
	// Semver is the parsed version (runc only; nil for runsc).
	Semver *Version
	// Raw is the whole `--version` output.
	Raw string
}

// Prober runs runtime binaries' `--version`. Run is how (nil:
// (*exec.Cmd).Run). A process in which something else reaps every child
// must set it: containerd's shim runs a reaper that calls wait4(-1) on each
// SIGCHLD, so a plain cmd.Run there can lose the child's exit to the reaper
// and fail with ECHILD ("waitid: no child processes"), refusing a container
// at random; the shim's prober starts and waits through its reaper.
type Prober struct {
	Run RunFunc
}

// RunFunc runs a command to completion, like (*exec.Cmd).Run.
type RunFunc func(cmd *exec.Cmd) error

func (p Prober) run(cmd *exec.Cmd) error {
	if p.Run == nil {
		return cmd.Run()
	}
	return p.Run(cmd)
}

// ProbeRunc runs `path --version` (path absolute, or a name looked up in
// PATH) and parses runc's version. It does not judge the version: see
// CheckRunc and GateRunc.
func (p Prober) ProbeRunc(ctx context.Context, path string) (*RuntimeInfo, error) {
	abs, err := resolveBinary(path)
	if err != nil {
		return nil, err
	}
	return p.probeRunc(ctx, abs)
}

func (p Prober) probeRunc(ctx context.Context, abs string) (*RuntimeInfo, error) {
	out, err := p.runVersion(ctx, abs)
	if err != nil {
		return nil, err
	}
	v, err := ParseRuncVersion(out)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s --version: %w", abs, err)
	}
	return &RuntimeInfo{Path: abs, Version: v.String(), Semver: &v, Raw: out}, nil
}

// ProbeRunsc runs `path --version` and returns runsc's version.
func (p Prober) ProbeRunsc(ctx context.Context, path string) (*RuntimeInfo, error) {
	abs, err := resolveBinary(path)
	if err != nil {
		return nil, err
	}
	out, err := p.runVersion(ctx, abs)
	if err != nil {
		return nil, err
	}
	v, err := ParseRunscVersion(out)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s --version: %w", abs, err)
	}
	return &RuntimeInfo{Path: abs, Version: v, Raw: out}, nil
}

// resolveBinary turns a policy's runtime path into an absolute path with
// symlinks resolved: a name is looked up in PATH; a relative path with a
// slash is refused (it would depend on the working directory, the bundle).
func resolveBinary(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: empty path", ErrProbe)
	}
	p := path
	if !strings.ContainsRune(path, '/') {
		lp, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrProbe, err)
		}
		p = lp
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%w: %q is neither absolute nor a name in PATH", ErrProbe, path)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrProbe, err)
	}
	return real, nil
}

// runVersion runs `abs --version` with a timeout, from /, with nothing on
// stdin, and returns its stdout.
func (p Prober) runVersion(ctx context.Context, abs string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxOutput, 4<<10
	cmd := exec.CommandContext(ctx, abs, "--version")
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A child that keeps the output pipe open must not hang the caller.
	cmd.WaitDelay = time.Second
	if err := p.run(cmd); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return "", fmt.Errorf("%w: %s --version: %w: %s", ErrProbe, abs, err, msg)
		}
		return "", fmt.Errorf("%w: %s --version: %w", ErrProbe, abs, err)
	}
	return stdout.String(), nil
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.max - b.Len(); room < len(p) {
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return n, nil
}
