//go:build integration

package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// critestFocus selects the specs run: "" is every spec of critest's
// validation suite (critest itself skips the benchmarks, --ginkgo.skip
// benchmark, and so does critestSkip). $HARDENED_CRITEST_FOCUS replaces it
// for a run by hand (for example "Streaming|Networking").
//
// Of the groups, SELinux has no spec on this machine (cri-tools registers
// them only when SELinux is enabled where critest runs) and Windows-only
// specs are not compiled into a Linux critest; the AppArmor specs skip
// themselves ("AppArmor is disabled on this host": not in this kernel) and
// are reported as such; make test-vm's kernel has AppArmor but no CRI
// suite run of critest.
const critestFocus = ``

// specPullWithTag pulls gcr.io/k8s-staging-cri-tools/test-image-tag:test
// after removing it: from the test registry.
const specPullWithTag = "[k8s.io] Image Manager public image with tag should be pulled and removed [Conformance] [Serial]"

// critestSkip is always skipped: the benchmarks (critest adds the same);
// runCritest adds the [[offline]] specs of critest-deviations.toml
// (offlineSkip).
const critestSkip = `benchmark`

// cmpOr is a, or b when a is empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// critestRun is a finished critest run.
type critestRun struct {
	Handler  string
	Specs    map[string]specResult
	Duration time.Duration
	Log      string
	// Requests to the test registry during the run: manifests and blobs
	// served, and 404s ("GET /v2/...?ns=... 404" -> count).
	Pulled   int
	NotFound map[string]int
	// All is every spec of critest's report, run or not.
	All map[string]bool
}

// registryDelta counts the registry's requests between two Hits.
func registryDelta(before, after map[string]int) (served int, notFound map[string]int) {
	notFound = map[string]int{}
	for k, n := range after {
		n -= before[k]
		switch {
		case n <= 0:
		case strings.HasSuffix(k, " 200"):
			served += n
		case strings.HasSuffix(k, " 404"):
			notFound[k] = n
		}
	}
	return served, notFound
}

var critestRuns = map[string]*critestRun{}

// runCritest runs cri-tools' critest against handler in the test's
// namespaces (its HostNetwork, HostIpc and mount propagation specs compare
// what the container sees with what critest sets up next to containerd).
func (e *Env) runCritest(t *testing.T, handler string) *critestRun {
	t.Helper()
	report := filepath.Join(e.Dir, "critest-"+handler+".xml")
	logPath := filepath.Join(e.Dir, "critest-"+handler+".log")
	off, err := loadOffline(deviationsFile)
	if err != nil {
		t.Fatal(err)
	}
	skip := critestSkip
	if o := offlineSkip(off); o != "" {
		skip += "|" + o
	}
	args := []string{
		"--runtime-endpoint", "unix://" + e.Sock,
		"--image-endpoint", "unix://" + e.Sock,
		"--config", e.CrictlConfig,
		"--runtime-handler", handler,
		"--ginkgo.skip", skip,
		"--ginkgo.junit-report", report,
		"--ginkgo.no-color",
		"--ginkgo.timeout", "40m",
	}
	if focus := cmpOr(os.Getenv("HARDENED_CRITEST_FOCUS"), critestFocus); focus != "" {
		args = append(args, "--ginkgo.focus", focus)
	}
	// $HARDENED_CRITEST_ARGS adds critest flags for a run by hand
	// (for example "--websocket-exec --websocket-attach --websocket-portforward").
	args = append(args, strings.Fields(os.Getenv("HARDENED_CRITEST_ARGS"))...)
	c, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := e.inNS(c, filepath.Join(e.Tools, "critest"), args...)
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	shmBefore := shmSegments()
	hitsBefore := e.Registry.Hits()
	start := time.Now()
	runErr := cmd.Run()
	run := &critestRun{Handler: handler, Duration: time.Since(start), Log: logPath}
	run.Pulled, run.NotFound = registryDelta(hitsBefore, e.Registry.Hits())
	e.noteCritestShm(shmBefore)
	e.removeCritestShm() // now, not at teardown: a shorter window for a concurrent run
	specs, suite, err := parseJUnit(report)
	if err != nil {
		t.Fatalf("critest (%v) wrote no report: %v\n--- %s (tail) ---\n%s", runErr, err, logPath, tail(logPath, 60))
	}
	for _, s := range suite {
		t.Errorf("critest suite node %s %s: %s", s.Name, s.Status, s.Message)
	}
	run.Specs = specs
	critestRuns[handler] = run
	// The offline specs: in critest's report (the name is right) and not
	// run; said on every run, apart from the results.
	all, err := junitNames(report)
	if err != nil {
		t.Fatal(err)
	}
	run.All = all
	for _, o := range off {
		switch s, ran := specs[o.Spec]; {
		case !all[o.Spec]:
			t.Errorf("[[offline]] spec of %s is not in critest's report (renamed?): %s", deviationsFile, o.Spec)
		case ran:
			t.Errorf("[[offline]] spec of %s ran (%s): --ginkgo.skip did not match it: %s", deviationsFile, s.Status, o.Spec)
		}
	}
	t.Logf("!!! %d spec(s) NOT RUN under %s, they cannot run offline ([[offline]] in %s):", len(off), handler, deviationsFile)
	for _, o := range off {
		t.Logf("!!!   %s\n        %s", o.Spec, o.Reason)
	}
	var passed, failed, skipped int
	for _, s := range specs {
		switch {
		case s.failed():
			failed++
		case s.Status == "passed":
			passed++
		default:
			skipped++
		}
	}
	t.Logf("critest --runtime-handler %s --ginkgo.skip %q: %d specs, %d passed, %d failed, %d skipped by critest, %d not run (offline) in %s (exit: %v; log %s)",
		handler, skip, len(specs), passed, failed, skipped, len(off), run.Duration.Round(time.Second), runErr, logPath)
	t.Logf("test registry (%s): %d requests served during the run, %d kinds not found %v", e.Registry.Addr, run.Pulled, len(run.NotFound), run.NotFound)
	if len(specs) == 0 {
		t.Fatalf("critest ran no spec; log tail:\n%s", tail(logPath, 60))
	}
	// The Image specs pull for real: over HTTP from the test registry.
	if s, ran := specs[specPullWithTag]; ran && s.Status == "passed" && run.Pulled == 0 {
		t.Errorf("%q passed but nothing was pulled from the test registry: the image was there already?", specPullWithTag)
	}
	return run
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sortedNames(m map[string]specResult) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// TestCritest runs critest's specs, every one but the benchmarks and the
// [[offline]] ones, against the stock runc handler (the control: every spec
// must pass there) and against the hardened handler, where every spec must
// pass except the ones in critest-deviations.toml. A listed spec that passes under hardened fails
// the test too: every deviation is a tightening, so a deviation that went
// away means a protection went away (or the spec changed) - either way the
// list must be looked at and updated, never silently go stale.
func TestCritest(t *testing.T) {
	e := env(t)
	t.Run("runc", func(t *testing.T) {
		run := e.runCritest(t, handlerRunc)
		for _, name := range sortedNames(run.Specs) {
			if s := run.Specs[name]; s.failed() {
				t.Errorf("FAILED under runc (the control: the harness or an image is wrong): %s\n    %s", name, firstLine(s.Message))
			} else if s.Status != "passed" {
				t.Logf("%s under runc: %s: %s", s.Status, name, firstLine(s.Message))
			}
		}
	})
	t.Run("hardened", func(t *testing.T) {
		needShim(t, e)
		devs, err := loadDeviations(deviationsFile)
		if err != nil {
			t.Fatal(err)
		}
		run := e.runCritest(t, handlerHardened)
		control := critestRuns[handlerRunc]
		var expected, limits, unexpected, stale []string
		for _, name := range sortedNames(run.Specs) {
			s := run.Specs[name]
			dv, listed := devs[name]
			switch {
			case s.failed() && listed && dv.Rule == ruleLimitation:
				limits = append(limits, fmt.Sprintf("%s\n    %s\n    critest: %s", name, dv.Reason, firstLine(s.Message)))
			case s.failed() && listed:
				expected = append(expected, fmt.Sprintf("%s\n    rule %s: %s\n    critest: %s", name, dv.Rule, dv.Reason, firstLine(s.Message)))
			case s.failed():
				unexpected = append(unexpected, fmt.Sprintf("%s\n    %s", name, firstLine(s.Message)))
			case listed:
				stale = append(stale, fmt.Sprintf("%s (%s; listed for rule %s)", name, s.Status, dv.Rule))
			case s.Status != "passed" && control != nil && control.Specs[name].Status == "passed":
				// Skipped under hardened but run under runc: a feature the
				// hardened handler does not report. List it or fix it.
				unexpected = append(unexpected, fmt.Sprintf("%s\n    %s under hardened, passed under runc: %s", name, s.Status, firstLine(s.Message)))
			case s.Status != "passed":
				t.Logf("%s under hardened (as under runc): %s: %s", s.Status, name, firstLine(s.Message))
			}
		}
		handFocus := os.Getenv("HARDENED_CRITEST_FOCUS") != ""
		for name, dv := range devs {
			if _, ran := run.Specs[name]; !ran && !(handFocus && run.All[name]) {
				// (A hand focus may leave listed specs out.)
				stale = append(stale, fmt.Sprintf("%s (not in the report; listed for rule %s)", name, dv.Rule))
			}
		}
		slices.Sort(stale)
		for _, name := range sortedNames(run.Specs) {
			if strings.Contains(name, "UserNamespaces") {
				t.Logf("under hardened: %s: %s", run.Specs[name].Status, name)
			}
		}
		t.Logf("%d specs fail under hardened as listed in %s (tightenings):\n  %s", len(expected), deviationsFile, strings.Join(expected, "\n  "))
		for _, l := range limits {
			t.Logf("!!! KNOWN LIMITATION (fails under hardened, NOT a tightening; listed in %s):\n  %s", deviationsFile, l)
		}
		for _, u := range unexpected {
			t.Errorf("FAILED under hardened and not listed in %s:\n  %s", deviationsFile, u)
		}
		for _, s := range stale {
			t.Errorf("!!! LISTED IN %s BUT DID NOT FAIL: %s\n  a tightening the list promises is gone, or the spec changed: look, then update the list", deviationsFile, s)
		}
	})
}

// System V shared memory: critest's HostIpc specs create a segment on the
// host (`ipcmk -M 1048576`) and never remove it.
type shmSeg struct {
	id, size, nattch, cpid string
}

func shmSegments() map[string]shmSeg {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return nil
	}
	out := map[string]shmSeg{}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		// key shmid perms size cpid lpid nattch ...
		out[f[1]] = shmSeg{id: f[1], size: f[3], cpid: f[4], nattch: f[6]}
	}
	return out
}

var critestShm []string

// noteCritestShm records the segments critest's run made: new since
// before, ipcmk's size, not attached.
func (e *Env) noteCritestShm(before map[string]shmSeg) {
	for id, s := range shmSegments() {
		if _, old := before[id]; !old && s.size == "1048576" && s.nattch == "0" {
			critestShm = append(critestShm, id)
		}
	}
}

func (e *Env) removeCritestShm() {
	for _, id := range critestShm {
		n, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		_ = shmRemove(n)
	}
	critestShm = nil
}

func shmRemove(id int) error {
	_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	return err
}
