package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// StockSecure is what `ctr run --seccomp --read-only` adds to containerd's
// default spec: the default seccomp profile and a read-only rootfs. It is
// the fair baseline for the hardened shim's start cost.
func StockSecure() []oci.SpecOpts {
	return []oci.SpecOpts{seccomp.WithDefaultProfile(), oci.WithRootFSReadonly()}
}

// Variant is one side of a side-by-side measurement.
type Variant struct {
	Name string
	// Spec returns the container to run for iteration id.
	Spec func(id string) Spec
}

// Variants used by hardened-bench and the Go benchmarks.
func BenchVariants(toolsBin string) (hardened, stock, gvisor, stockRunsc Variant) {
	hardened = Variant{"hardened shim (restricted, runc)", func(id string) Spec {
		return Spec{ID: id, Runtime: Hardened(""), Args: []string{"/bin/true"}}
	}}
	stock = Variant{"stock runc shim (--seccomp --read-only)", func(id string) Spec {
		return Spec{ID: id, Runtime: StockRunc(""), Args: []string{"/bin/true"}, SpecOpts: StockSecure()}
	}}
	gvisor = Variant{"hardened shim (gVisor route)", func(id string) Spec {
		return Spec{ID: id, Runtime: Hardened(""), Args: []string{"/bin/true"},
			Annotations: map[string]string{AnnotationRuntime: "gvisor"}}
	}}
	stockRunsc = Variant{"stock runc shim, BinaryName=runsc (--seccomp --read-only)", func(id string) Spec {
		return Spec{ID: id, Runtime: StockRunc(filepath.Join(toolsBin, "runsc")), Args: []string{"/bin/true"}, SpecOpts: StockSecure()}
	}}
	return
}

// Sample is one timed run.
type Sample struct {
	Total  time.Duration
	Phases Phases
}

// TimeRun runs a container to completion (create, start, wait, delete:
// what `ctr run --rm` does) and returns the wall time and its phases.
func (d *Daemon) TimeRun(ctx context.Context, ns string, s Spec) (Sample, error) {
	start := time.Now()
	res, err := d.Run(ctx, ns, s)
	smp := Sample{Total: time.Since(start), Phases: res.Phases}
	if err != nil {
		return smp, err
	}
	if res.ExitCode != 0 {
		return smp, fmt.Errorf("%s exited %d: %s", s.ID, res.ExitCode, res.Output())
	}
	return smp, nil
}

// Alternate runs a and b in turn, n times each (after warmup untimed
// rounds), and returns their samples.
func (d *Daemon) Alternate(ctx context.Context, ns string, a, b Variant, n, warmup int) (sa, sb []Sample, err error) {
	for i := 0; i < n+warmup; i++ {
		// Alternate which one goes first, so that neither always runs
		// right after the other's teardown.
		order := []Variant{a, b}
		if i%2 == 1 {
			order = []Variant{b, a}
		}
		for j, v := range order {
			smp, err := d.TimeRun(ctx, ns, v.Spec(fmt.Sprintf("bench-%d-%d", i, j)))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", v.Name, err)
			}
			if i < warmup {
				continue
			}
			if v.Name == a.Name {
				sa = append(sa, smp)
			} else {
				sb = append(sb, smp)
			}
		}
	}
	return sa, sb, nil
}

// Totals returns the samples' total durations.
func Totals(ss []Sample) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		out = append(out, s.Total)
	}
	return out
}

// PhaseMedians returns the median of each phase (PhaseNames order).
func PhaseMedians(ss []Sample) []time.Duration {
	out := make([]time.Duration, len(PhaseNames))
	for i := range PhaseNames {
		var ds []time.Duration
		for _, s := range ss {
			ds = append(ds, s.Phases.List()[i])
		}
		out[i] = Median(ds)
	}
	return out
}

// IdleShimRSS starts a long-running container and returns the VmRSS (KiB)
// of the shim process serving it (binary: the shim's file name), sampled
// a few times after it settles (median). The container is deleted.
func (d *Daemon) IdleShimRSS(ctx context.Context, ns string, s Spec, binary string, settle time.Duration) (int64, error) {
	s.Args = []string{"sleep", "600"}
	c, err := d.Create(ctx, ns, s)
	if err != nil {
		return 0, err
	}
	defer c.Delete(context.WithoutCancel(ctx))
	if err := c.Start(ctx); err != nil {
		return 0, err
	}
	time.Sleep(settle)
	var pid int
	for _, p := range processes() {
		if len(p.args) == 0 || !strings.HasSuffix(p.args[0], binary) {
			continue
		}
		for i, a := range p.args {
			if a == "-id" && i+1 < len(p.args) && p.args[i+1] == s.ID && p.names(d.Dir, ns) {
				pid = p.pid
			}
		}
	}
	if pid == 0 {
		return 0, fmt.Errorf("no %s process serves %s", binary, s.ID)
	}
	var samples []int64
	for i := 0; i < 5; i++ {
		rss, err := VmRSS(pid)
		if err != nil {
			return 0, err
		}
		samples = append(samples, rss)
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return samples[len(samples)/2], nil
}

// Median of durations (0 for none).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianInt of integers (0 for none).
func MedianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Setup is what the commands need: the repository, the tools, the built
// binaries and a started daemon with the images imported into a
// namespace. Close stops everything.
type Setup struct {
	Repo     string
	ToolsBin string
	Bins     *Binaries
	D        *Daemon
	NS       string
	binDir   string
}

// NewSetup builds the binaries and starts a private containerd (for
// hardened-bench and hardened-demo).
func NewSetup(ctx context.Context, nsTag string) (*Setup, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	tools := ToolsBin(repo)
	if err := CheckHost(tools); err != nil {
		return nil, err
	}
	binDir, err := os.MkdirTemp("", "hd-bin-")
	if err != nil {
		return nil, err
	}
	s := &Setup{Repo: repo, ToolsBin: tools, binDir: binDir}
	bins, _, err := Build(repo, tools, binDir)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Bins = bins
	d, err := Start(ctx, Options{ToolsBin: tools, Binaries: bins})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.D = d
	s.NS = d.Namespace(nsTag)
	if err := d.ImportImages(ctx, s.NS, DefaultImages()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the daemon and removes the binaries.
func (s *Setup) Close() error {
	var err error
	if s.D != nil {
		err = s.D.Stop()
	}
	if s.binDir != "" && os.Getenv(EnvKeep) == "" {
		os.RemoveAll(s.binDir)
	}
	return err
}
