//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/hardened-dev/hardened/integration/harness"
)

// leakyRunc writes a runc wrapper for the node policy's [runtimes.runc]
// path. With leakDir set, it leaks that host directory into every container
// it creates: for `runc create` it opens the directory on fd 3 (a shell
// redirection: no O_CLOEXEC) and asks runc to pass it on with
// --preserve-fds 1, which nothing in the spec asked for. Every other call
// (the shim gate's --version, start, kill, delete) is runc's own. It
// returns the wrapper and a policy naming it.
func (e *env) leakyRunc(name, leakDir string) (wrapper, pol string) {
	e.t.Helper()
	realRunc := filepath.Join(suite.toolsBin, "runc")
	open := ""
	if leakDir != "" {
		open = fmt.Sprintf("if [ -n \"$leak\" ]; then exec 3< %q; fi\n", leakDir)
	}
	w := e.writeFile(name, fmt.Sprintf(`#!/bin/sh
leak=
first=1
for a in "$@"; do
  if [ -n "$first" ]; then set --; first=; fi
  set -- "$@" "$a"
  if [ "$a" = create ] && [ -z "$leak" ]; then
    %s
    leak=1
  fi
done
%sexec %q "$@"
`, map[bool]string{true: `set -- "$@" --preserve-fds 1`, false: ":"}[leakDir != ""], open, realRunc), 0o755)
	return w, e.policy(fmt.Sprintf("[runtimes.runc]\npath = %q\n\n[runtimes.gvisor]\npath = \"runsc\"\n", w))
}

// leakDir makes the host directory the leaky runc passes into containers.
func (e *env) leakDir() string {
	e.t.Helper()
	dir := filepath.Join(e.d.Dir, "host-secret")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// TestLeakedFDRefusedAtStart: a runc that passes a host directory's fd into
// the container (the CVE-2024-21626 class) gets its container refused at
// start by the shim's inspection of the created init process; containerd's
// client deletes the stopped task and the container as usual, and the
// harness finds nothing left behind.
func TestLeakedFDRefusedAtStart(t *testing.T) {
	e := newEnv(t)
	dir := e.leakDir()
	_, pol := e.leakyRunc("leaky-runc", dir)
	id := e.id("leak-client")
	c, err := e.d.Create(e.ctx, e.ns, harness.Spec{ID: id, Runtime: harness.Hardened(pol), Args: []string{"sh", "-c", "ls -l /proc/self/fd/; sleep 60"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer c.Delete(context.Background())
	err = c.Start(e.ctx)
	t.Logf("start: %v", err)
	if harness.Stage(err) != "start" {
		out, _ := c.Output()
		t.Fatalf("want the task's start refused, got stage %q: %v\noutput:\n%s", harness.Stage(err), err, out)
	}
	assertShimRefusal(t, "leaked fd", err, "CVE-2024-21626", "fd 3", dir, "O_CLOEXEC")
	if out, _ := c.Output(); out != "" {
		t.Errorf("the refused container printed (its code ran):\n%s", out)
	}
	ctx := harness.Context(e.ctx, e.ns)
	st, err := c.Task.Status(ctx)
	if err != nil || st.Status != client.Stopped {
		t.Errorf("task status after the refusal: %+v, %v; want stopped", st, err)
	}
	// What CRI and the client do after a failed start: delete the task and
	// the container. It must work, and leave nothing (the env's cleanup
	// checks mounts, cgroups, processes, records).
	if err := c.Delete(context.Background()); err != nil {
		t.Errorf("delete after the refused start: %v", err)
	}
}

// TestLeakedFDRefusedAtStartCtr: the same through `ctr run --rm`, which
// deletes the task and the container itself after the failed start.
func TestLeakedFDRefusedAtStartCtr(t *testing.T) {
	e := newEnv(t)
	dir := e.leakDir()
	_, pol := e.leakyRunc("leaky-runc", dir)
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()
	res, err := e.d.CtrRun(ctx, e.ns, []string{"--runtime", harness.RuntimeHardened, "--runtime-config-path", pol},
		harness.ImageBusybox, e.id("leak-ctr"), "sh", "-c", "ls -l /proc/self/fd/")
	if err != nil {
		t.Fatalf("ctr run: %v", err)
	}
	t.Logf("ctr run: exit %d, stderr: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	if res.ExitCode == 0 {
		t.Fatalf("ctr run with a leaked fd succeeded, want a refusal; output:\n%s", res.Stdout)
	}
	for _, w := range []string{"CVE-2024-21626", "fd 3", dir} {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("ctr's error does not name %q:\n%s", w, res.Stderr)
		}
	}
	if strings.Contains(res.Stdout, dir) {
		t.Errorf("the container ran and saw the leaked directory:\n%s", res.Stdout)
	}
	for _, what := range [][]string{{"containers", "ls", "-q"}, {"tasks", "ls", "-q"}} {
		out, err := e.d.Ctr(ctx, e.ns, what...)
		if err != nil || strings.TrimSpace(out.Stdout) != "" {
			t.Errorf("ctr %s after ctr run --rm: %q, %v; want nothing", strings.Join(what, " "), out.Stdout, err)
		}
	}
}

// TestStartCheckPassesRunc: the same wrapper without the leak: the
// container starts, holds stdio only, and the shim logged that it inspected
// the created init process (root and working directory inside the
// container after runc's pivot_root) and let it start.
func TestStartCheckPassesRunc(t *testing.T) {
	e := newEnv(t)
	_, pol := e.leakyRunc("plain-runc", "")
	_, off := e.d.LogSince(0)
	id := e.id("clean")
	res := e.run(harness.Spec{ID: id, Runtime: harness.Hardened(pol), Args: sh("ls -l /proc/self/fd/")})
	if res.ExitCode != 0 {
		t.Fatalf("container failed:\n%s", res.Output())
	}
	assertStdioOnly(t, id, openFds(res.Stdout), res.Stdout)
	log, _ := e.d.LogSince(off)
	var passed string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "start check passed") && strings.Contains(l, id) {
			passed = l
		}
	}
	if passed == "" {
		t.Errorf("no \"start check passed\" line for %s in the log:\n%s", id, log)
	}
	t.Logf("%s", passed)
}

// TestLeakyRuncLeaksWithStockShim is the control: containerd's own runc
// shim driving the same leaky runc starts the container, and its process
// holds the host directory on fd 3.
func TestLeakyRuncLeaksWithStockShim(t *testing.T) {
	e := newEnv(t)
	dir := e.leakDir()
	w, _ := e.leakyRunc("leaky-runc", dir)
	res := e.run(harness.Spec{ID: e.id("stock-leak"), Runtime: harness.StockRunc(w), Args: sh("ls -l /proc/self/fd/")})
	fds := openFds(res.Stdout)
	t.Logf("fds of the container's process under the stock shim: %v", fds)
	if fds["3"] != dir {
		t.Errorf("fd 3 = %q, want the leaked %s (the injection does not work, so the refusal tests prove nothing):\n%s", fds["3"], dir, res.Output())
	}
}
