//go:build integration

// Package integration tests the hardened shim against a real, private
// containerd (pinned v2.4.2), runc (v1.5.2) and runsc, all from
// .tools/bin. Every assertion reads what the kernel (or gVisor's Sentry)
// reports inside the container, mostly /proc/self/status.
//
// Run (as root, after `make tools`):
//
//	go test -tags integration -count=1 -v ./integration/
//
// Without root or the tools the tests skip, loudly; with
// HARDENED_REQUIRE_INTEGRATION=1 (CI) they fail instead.
package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
)

// suite is what TestMain prepares once: the binaries every test's private
// containerd runs.
var suite struct {
	repo     string
	toolsBin string
	bins     *harness.Binaries
	// err is why the suite cannot run (wraps harness.ErrUnavailable for
	// "not here", anything else is a real failure such as a build error).
	err error
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	suite.err = setupSuite()
	if suite.err != nil {
		verdict := "SKIPPING"
		if harness.Required() || !errors.Is(suite.err, harness.ErrUnavailable) {
			verdict = "FAILING"
		}
		fmt.Fprintf(os.Stderr, "\n"+
			"##########################################################################\n"+
			"## integration: %s every test: %v\n"+
			"## (%s=1 turns skips into failures)\n"+
			"##########################################################################\n\n",
			verdict, suite.err, harness.EnvRequire)
	}
	code := m.Run()
	if err := stopBenchDaemon(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: benchmark containerd cleanup: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if suite.bins != nil && os.Getenv(harness.EnvKeep) == "" {
		os.RemoveAll(suite.bins.Dir)
	}
	return code
}

func setupSuite() error {
	repo, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	suite.repo = repo
	suite.toolsBin = harness.ToolsBin(repo)
	if err := harness.CheckHost(suite.toolsBin); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hd-bin-")
	if err != nil {
		return err
	}
	start := time.Now()
	// The shim gets the test hook (TestPinnedSourceSwapped): inert unless
	// a test's containerd names a program in harness.TestHookEnv.
	bins, cliErr, err := harness.Build(repo, suite.toolsBin, dir, harness.TestHookTag)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	suite.bins = bins
	fmt.Fprintf(os.Stderr, "integration: built %s in %s (hardenctl: %v)\n", bins.Shim, time.Since(start).Round(time.Millisecond), errOr(cliErr, bins.CLI))
	if bins.StandIn {
		fmt.Fprintf(os.Stderr, "integration: WARNING: %s=runc: the stock runc shim stands in for the hardened shim; hardening assertions will fail\n", harness.EnvShimStandIn)
	}
	return nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// requireSuite skips (loudly) or fails the test when the suite cannot run.
func requireSuite(t testing.TB) {
	t.Helper()
	if suite.err == nil {
		return
	}
	if errors.Is(suite.err, harness.ErrUnavailable) && !harness.Required() {
		t.Skipf("SKIPPED: %v (set %s=1 to make this a failure)", suite.err, harness.EnvRequire)
	}
	t.Fatalf("integration suite setup failed: %v", suite.err)
}

// env is one test's private containerd with the test images imported into
// a namespace of its own.
type env struct {
	t   testing.TB
	d   *harness.Daemon
	ns  string
	ctx context.Context
	// n numbers container ids and files.
	n int
}

// newEnv starts a private containerd for the test (with extraEnv added to
// its environment, which its shims inherit) and registers a cleanup that
// first asserts the test left nothing behind (containers, mounts, staged
// mount sources, cgroups, shim and container processes), then stops
// everything.
func newEnv(t testing.TB, extraEnv ...string) *env {
	t.Helper()
	requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	d, err := harness.Start(ctx, harness.Options{ToolsBin: suite.toolsBin, Binaries: suite.bins, Env: extraEnv})
	if err != nil {
		cancel()
		t.Fatalf("failed to start the private containerd: %v", err)
	}
	e := &env{t: t, d: d, ns: d.Namespace(t.Name()), ctx: ctx}
	t.Cleanup(func() {
		defer cancel()
		if left := d.Leftovers(context.Background(), e.ns); len(left) > 0 {
			t.Errorf("test left behind in namespace %s (after deleting its containers):\n  %s", e.ns, strings.Join(left, "\n  "))
		}
		logTail := d.LogTail(150)
		if err := d.Stop(); err != nil {
			t.Errorf("cleanup of the private containerd found leaks or failed: %v", err)
		}
		if procs := harness.ProcessesNaming(d.Dir); len(procs) > 0 {
			t.Errorf("processes naming %s survive the cleanup:\n  %s", d.Dir, strings.Join(procs, "\n  "))
		}
		for _, cg := range harness.CgroupDirs(e.ns) {
			t.Errorf("cgroup of the test namespace survives the cleanup: %s", cg)
		}
		if t.Failed() {
			t.Logf("containerd (and shim) log, last lines (set %s=1 to keep %s):\n%s", harness.EnvKeep, d.Dir, logTail)
		}
	})
	t.Logf("private containerd %s (pid %d), namespace %s", d.Dir, d.Pid(), e.ns)
	if err := d.ImportImages(ctx, e.ns, harness.DefaultImages()); err != nil {
		t.Fatalf("failed to import the test images: %v", err)
	}
	return e
}

// id returns a fresh container id.
func (e *env) id(prefix string) string {
	e.n++
	return fmt.Sprintf("%s-%d", prefix, e.n)
}

// writeFile writes a file into the daemon's temp dir and returns its path.
func (e *env) writeFile(name, content string, mode os.FileMode) string {
	e.t.Helper()
	p := e.d.Dir + "/" + name
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		e.t.Fatalf("failed to write %s: %v", p, err)
	}
	return p
}

// policy writes a node policy file and returns its path.
func (e *env) policy(content string) string {
	e.n++
	return e.writeFile(fmt.Sprintf("policy-%d.toml", e.n), content, 0o644)
}

// start creates and starts a container; a failure is fatal. The container
// is deleted when the test ends (and may be deleted earlier).
func (e *env) start(s harness.Spec) *harness.Container {
	e.t.Helper()
	c, err := e.d.Create(e.ctx, e.ns, s)
	if err != nil {
		e.t.Fatalf("failed to create container %s: %v", s.ID, err)
	}
	e.t.Cleanup(func() {
		if err := c.Delete(context.Background()); err != nil {
			e.t.Errorf("failed to delete container %s: %v", s.ID, err)
		}
	})
	if err := c.Start(e.ctx); err != nil {
		e.t.Fatalf("failed to start container %s (runtime %s): %v", s.ID, s.Runtime.Name, err)
	}
	return c
}

// startRefused creates a container and expects the task creation (the
// shim's Create) to fail; it returns the error and deletes the container.
func (e *env) startRefused(s harness.Spec) error {
	e.t.Helper()
	c, err := e.d.Create(e.ctx, e.ns, s)
	if err != nil {
		e.t.Fatalf("failed to create container record %s (before the shim is involved): %v", s.ID, err)
	}
	defer func() {
		if err := c.Delete(context.Background()); err != nil {
			e.t.Errorf("failed to delete container %s: %v", s.ID, err)
		}
	}()
	err = c.Start(e.ctx)
	if err == nil {
		out, _ := c.Output()
		e.t.Fatalf("container %s started, want the shim to refuse it; its output so far:\n%s", s.ID, out)
	}
	if st := harness.Stage(err); st != "task" {
		e.t.Errorf("container %s failed at stage %q, want the task creation (the shim's Create) to refuse it: %v", s.ID, st, err)
	}
	return err
}

// run runs a container to completion; a failure to run is fatal.
func (e *env) run(s harness.Spec) harness.Result {
	e.t.Helper()
	res, err := e.d.Run(e.ctx, e.ns, s)
	if err != nil {
		e.t.Fatalf("failed to run container %s (runtime %s): %v\n%s", s.ID, s.Runtime.Name, err, res.Output())
	}
	return res
}

// sh is a container command line running script with busybox sh.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }
