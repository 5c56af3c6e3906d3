package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

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

// GVisorOCISeccompAnnotation is runsc's own switch for the spec's seccomp
// filter (the annotation form of --oci-seccomp, which runsc accepts
// without --allow-flag-override because it only turns enforcement on).
const GVisorOCISeccompAnnotation = "dev.gvisor.flag.oci-seccomp"

// Variants used by hardened-bench and the Go benchmarks. Each stock variant
// enforces what its hardened counterpart enforces, with stock parts only:
// runc gets containerd's default seccomp filter and a read-only rootfs
// (`ctr run --seccomp --read-only`); runsc gets the same spec and, through
// the annotation, enforces its seccomp filter as the hardened shim's gVisor
// route always does (without it runsc ignores the filter: see
// StockRunscUnfiltered).
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
	stockRunsc = Variant{"stock runc shim, BinaryName=runsc (--seccomp --read-only, filter enforced)", func(id string) Spec {
		return Spec{ID: id, Runtime: StockRunc(filepath.Join(toolsBin, "runsc")), Args: []string{"/bin/true"}, SpecOpts: StockSecure(),
			Annotations: map[string]string{GVisorOCISeccompAnnotation: "true"}}
	}}
	return
}

// StockRunscUnfiltered is a reference for the gVisor comparison: the stock
// runc shim driving runsc with the same spec, which runsc runs without its
// seccomp filter. Against it, the gVisor route's ratio includes what
// enforcing the filter costs: runsc compiles it (gVisor's BPF optimiser)
// when the container starts.
func StockRunscUnfiltered(toolsBin string) Variant {
	return Variant{"stock runc shim, BinaryName=runsc (--seccomp --read-only, filter ignored)", func(id string) Spec {
		return Spec{ID: id, Runtime: StockRunc(filepath.Join(toolsBin, "runsc")), Args: []string{"/bin/true"}, SpecOpts: StockSecure()}
	}}
}

// EvictPageCache writes back and drops the page cache of files (fsync,
// then POSIX_FADV_DONTNEED): binaries compared by their resident memory are
// then both read from disk, as on a freshly booted node, whatever way each
// was written. A binary just written by the linker sits in the page cache
// in large folios that are mapped whole, up to 2 MiB at a time, where one
// read back from disk is mapped as its pages are touched.
func EvictPageCache(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("failed to drop the page cache of %s: %w", p, err)
		}
	}
	return nil
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

// ShimMemory is an idle shim's resident memory, in KiB.
type ShimMemory struct {
	// VmRSS is what the comparison uses.
	VmRSS int64
	// RssAnon is the private part: heap, stacks, runtime metadata.
	RssAnon int64
	// RssFile is the mapped part of its binary and libraries: page cache,
	// shared with every process mapping the same file, and larger when the
	// file sits in the page cache in large folios mapped whole
	// (FilePmdMapped: 2 MiB at a time), as a freshly written binary can.
	RssFile, FilePmdMapped int64
}

// IdleShimRSS starts a long-running container and returns the VmRSS (KiB)
// of the shim process serving it (binary: the shim's file name), sampled
// a few times after it settles (median). The container is deleted.
func (d *Daemon) IdleShimRSS(ctx context.Context, ns string, s Spec, binary string, settle time.Duration) (int64, error) {
	m, err := d.IdleShimMemory(ctx, ns, s, binary, settle)
	return m.VmRSS, err
}

// IdleShimMemory is IdleShimRSS with the parts of VmRSS (each a median).
func (d *Daemon) IdleShimMemory(ctx context.Context, ns string, s Spec, binary string, settle time.Duration) (ShimMemory, error) {
	s.Args = []string{"sleep", "600"}
	c, err := d.Create(ctx, ns, s)
	if err != nil {
		return ShimMemory{}, err
	}
	defer c.Delete(context.WithoutCancel(ctx))
	if err := c.Start(ctx); err != nil {
		return ShimMemory{}, err
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
		return ShimMemory{}, fmt.Errorf("no %s process serves %s", binary, s.ID)
	}
	var samples []ShimMemory
	for i := 0; i < 5; i++ {
		m, err := shimMemory(pid)
		if err != nil {
			return ShimMemory{}, err
		}
		samples = append(samples, m)
		time.Sleep(100 * time.Millisecond)
	}
	med := func(f func(ShimMemory) int64) int64 {
		var v []int64
		for _, m := range samples {
			v = append(v, f(m))
		}
		return MedianInt(v)
	}
	return ShimMemory{
		VmRSS:         med(func(m ShimMemory) int64 { return m.VmRSS }),
		RssAnon:       med(func(m ShimMemory) int64 { return m.RssAnon }),
		RssFile:       med(func(m ShimMemory) int64 { return m.RssFile }),
		FilePmdMapped: med(func(m ShimMemory) int64 { return m.FilePmdMapped }),
	}, nil
}

func shimMemory(pid int) (ShimMemory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ShimMemory{}, err
	}
	st := ParseStatus(string(data))
	var m ShimMemory
	if m.VmRSS, err = st.Int("VmRSS"); err != nil {
		return m, err
	}
	m.RssAnon, _ = st.Int("RssAnon")
	m.RssFile, _ = st.Int("RssFile")
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		m.FilePmdMapped, _ = ParseStatus(string(data)).Int("FilePmdMapped")
	}
	return m, nil
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

// SyscallHeavy is a workload that makes about 2 syscalls per byte copied,
// every one of them allowed: dd one byte at a time.
var SyscallHeavy = []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=300000"}

// NotifyVariants compare the hardened shim with its seccomp listener
// (policy file reportPolicy: seccomp_notify = "report") and without it
// (offPolicy), both under the restricted profile on runc, running args.
func NotifyVariants(reportPolicy, offPolicy string, args []string) (report, off Variant) {
	report = Variant{"hardened shim, seccomp_notify report: " + args[0], func(id string) Spec {
		return Spec{ID: id, Runtime: Hardened(reportPolicy), Args: args}
	}}
	off = Variant{"hardened shim, seccomp_notify off: " + args[0], func(id string) Spec {
		return Spec{ID: id, Runtime: Hardened(offPolicy), Args: args}
	}}
	return
}
