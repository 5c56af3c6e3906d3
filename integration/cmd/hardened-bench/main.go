// Command hardened-bench measures the hardened shim side by side with
// containerd's stock runc shim, in one run, on the same image, alternating
// the two so that drift on the machine hits both alike:
//
//   - start-to-exit of /bin/true (create, start, wait, delete: `ctr run
//     --rm`) through the hardened shim (restricted profile, runc) vs the
//     stock runc shim with the default seccomp profile and a read-only
//     rootfs (`ctr run --seccomp --read-only`);
//   - the same through the hardened shim's gVisor route vs the stock runc
//     shim with BinaryName=runsc, the same spec, and runsc enforcing its
//     seccomp filter as it does on the gVisor route (runsc's own
//     dev.gvisor.flag.oci-seccomp annotation);
//   - the seccomp listener (seccomp_notify = "report") against none, both
//     through the hardened shim: start-to-exit of /bin/true (runc compiles
//     the larger filter on every start; target <= 1.02, the condition for
//     turning it on by default) and the run of a syscall-heavy program
//     whose syscalls the filter allows, which never reach the listener
//     (target <= 1.01);
//   - resident memory (VmRSS) of one idle hardened shim vs one idle stock
//     shim, each serving a `sleep` container, both binaries read from disk
//     (their page cache dropped first).
//
// It prints medians and ratios against the targets (start <= 1.05, gVisor
// <= 1.05, memory <= 1.10), and reference lines without a target: the
// gVisor route against the stock shim driving runsc that ignores the
// filter (what enforcing it costs), and the idle shims' private memory.
// Needs root and the tools of hack/install-tools.sh; -strict exits 1 when
// a target is missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
)

func main() {
	n := flag.Int("n", 20, "timed iterations of each variant")
	warmup := flag.Int("warmup", 2, "untimed rounds before measuring")
	memRounds := flag.Int("mem-rounds", 3, "idle-shim memory samples (a new container each)")
	strict := flag.Bool("strict", false, "exit 1 when a ratio misses its target")
	skipGVisor := flag.Bool("skip-gvisor", false, "skip the gVisor comparison")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	code, err := run(ctx, *n, *warmup, *memRounds, *skipGVisor, *strict)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hardened-bench: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

type result struct {
	name   string
	a, b   string
	ma, mb float64
	unit   string
	target float64
	ratio  float64
	met    bool
	info   bool // no target: context for another ratio
}

// run is the benchmark's script: setup, the start rounds per variant, the
// memory rounds, the table (long on purpose: a sequence of phases read top
// to bottom).
func run(ctx context.Context, n, warmup, memRounds int, skipGVisor, strict bool) (int, error) {
	s, err := harness.NewSetup(ctx, "bench")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "hardened-bench: cleanup: %v\n", err)
		}
	}()
	d, ns := s.D, s.NS
	hardened, stock, gvisor, stockRunsc := harness.BenchVariants(s.ToolsBin)
	fmt.Printf("hardened-bench: %d iterations each, alternating, %d warm-up rounds; containerd %s, tools %s\n\n", n, warmup, d.Dir, s.ToolsBin)

	var results []result
	ratio := func(name, unit string, a, b float64, target float64, an, bn string) {
		r := result{name: name, a: an, b: bn, ma: a, mb: b, unit: unit, target: target, ratio: a / b}
		r.met = r.ratio <= target
		results = append(results, r)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

	var phases []string
	phaseLine := func(v harness.Variant, ss []harness.Sample) {
		line := fmt.Sprintf("  %-58s", v.Name)
		for i, p := range harness.PhaseMedians(ss) {
			line += fmt.Sprintf(" %s %6.1f", harness.PhaseNames[i], ms(p))
		}
		phases = append(phases, line)
	}

	da, db, err := d.Alternate(ctx, ns, hardened, stock, n, warmup)
	if err != nil {
		return 0, err
	}
	ratio("start to exit (runc)", "ms", ms(harness.Median(harness.Totals(da))), ms(harness.Median(harness.Totals(db))), 1.05, hardened.Name, stock.Name)
	phaseLine(hardened, da)
	phaseLine(stock, db)

	if err := notifyRounds(ctx, d, ns, n, warmup, ratio, phaseLine); err != nil {
		return 0, err
	}
	if !skipGVisor {
		ga, gb, err := d.Alternate(ctx, ns, gvisor, stockRunsc, n, warmup)
		if err != nil {
			return 0, err
		}
		ratio("start to exit (gVisor)", "ms", ms(harness.Median(harness.Totals(ga))), ms(harness.Median(harness.Totals(gb))), 1.05, gvisor.Name, stockRunsc.Name)
		phaseLine(gvisor, ga)
		phaseLine(stockRunsc, gb)
	}
	if !skipGVisor {
		ref := harness.StockRunscUnfiltered(s.ToolsBin)
		ga, gb, err := d.Alternate(ctx, ns, gvisor, ref, n, warmup)
		if err != nil {
			return 0, err
		}
		ratio("gVisor vs no filter", "ms", ms(harness.Median(harness.Totals(ga))), ms(harness.Median(harness.Totals(gb))), 0, gvisor.Name, ref.Name)
		results[len(results)-1].info = true
		phaseLine(gvisor, ga)
		phaseLine(ref, gb)
	}

	var ma, mb []harness.ShimMemory
	stockShim := filepath.Join(s.ToolsBin, "containerd-shim-runc-v2")
	for i := 0; i < memRounds; i++ {
		if err := harness.EvictPageCache(s.Bins.Shim, stockShim); err != nil {
			return 0, err
		}
		h := hardened.Spec(fmt.Sprintf("idle-h-%d", i))
		st := stock.Spec(fmt.Sprintf("idle-s-%d", i))
		mh, err := d.IdleShimMemory(ctx, ns, h, harness.ShimBinary, time.Second)
		if err != nil {
			return 0, fmt.Errorf("idle hardened shim: %w", err)
		}
		msk, err := d.IdleShimMemory(ctx, ns, st, "containerd-shim-runc-v2", time.Second)
		if err != nil {
			return 0, fmt.Errorf("idle stock shim: %w", err)
		}
		ma, mb = append(ma, mh), append(mb, msk)
	}
	mib := func(ms []harness.ShimMemory, f func(harness.ShimMemory) int64) float64 {
		var v []int64
		for _, m := range ms {
			v = append(v, f(m))
		}
		return float64(harness.MedianInt(v)) / 1024
	}
	vmRSS := func(m harness.ShimMemory) int64 { return m.VmRSS }
	anon := func(m harness.ShimMemory) int64 { return m.RssAnon }
	ratio("idle shim VmRSS", "MiB", mib(ma, vmRSS), mib(mb, vmRSS), 1.10, "hardened shim", "stock runc shim")
	ratio("  of which RssAnon", "MiB", mib(ma, anon), mib(mb, anon), 0, "private (heap, stacks, runtime)", "the same")
	results[len(results)-1].info = true
	memLine := func(name string, ms []harness.ShimMemory) string {
		return fmt.Sprintf("  %-58s VmRSS %5.1f RssAnon %4.1f RssFile %5.1f (FilePmdMapped %4.1f)", name,
			mib(ms, vmRSS), mib(ms, anon), mib(ms, func(m harness.ShimMemory) int64 { return m.RssFile }),
			mib(ms, func(m harness.ShimMemory) int64 { return m.FilePmdMapped }))
	}
	memLines := []string{memLine(hardened.Name, ma), memLine(stock.Name, mb)}

	code := 0
	fmt.Printf("%-24s %12s %12s %8s %8s  %s\n", "measure", "hardened", "baseline", "ratio", "target", "")
	for _, r := range results {
		verdict, target := "ok", fmt.Sprintf("<=%.2f", r.target)
		if r.info {
			verdict, target = "(reference)", "-"
		} else if !r.met {
			verdict = "MISSED"
			if strict {
				code = 1
			}
		}
		fmt.Printf("%-24s %9.1f %-2s %9.1f %-2s %8.3f %8s  %s\n", r.name, r.ma, r.unit, r.mb, r.unit, r.ratio, target, verdict)
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("  %s: %s vs %s\n", r.name, r.a, r.b)
	}
	fmt.Println("\nmedian phases (ms): create = NewContainer, task = NewTask (shim start + its Create), start, run = until exit, delete")
	for _, l := range phases {
		fmt.Println(l)
	}
	fmt.Println("\nidle shims, median MiB, both binaries read from disk (page cache dropped before each round): RssFile is mapped page")
	fmt.Println("cache, shared between processes; FilePmdMapped of it is mapped in 2 MiB pages")
	for _, l := range memLines {
		fmt.Println(l)
	}
	return code, nil
}

// notifyRounds measures the seccomp listener: start to exit of /bin/true,
// and the run phase of a syscall-heavy program, with and without it.
func notifyRounds(ctx context.Context, d *harness.Daemon, ns string, n, warmup int,
	ratio func(name, unit string, a, b, target float64, an, bn string), phaseLine func(harness.Variant, []harness.Sample)) error {
	write := func(name, body string) (string, error) {
		p := filepath.Join(d.Dir, name)
		return p, os.WriteFile(p, []byte(body), 0o644)
	}
	report, err := write("bench-notify-report.toml", "seccomp_notify = \"report\"\n")
	if err != nil {
		return err
	}
	off, err := write("bench-notify-off.toml", "seccomp_notify = \"off\"\n")
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	on, none := harness.NotifyVariants(report, off, []string{"/bin/true"})
	a, b, err := d.Alternate(ctx, ns, on, none, n, warmup)
	if err != nil {
		return err
	}
	ratio("start to exit (notify)", "ms", ms(harness.Median(harness.Totals(a))), ms(harness.Median(harness.Totals(b))), 1.02, on.Name, none.Name)
	phaseLine(on, a)
	phaseLine(none, b)
	on, none = harness.NotifyVariants(report, off, harness.SyscallHeavy)
	a, b, err = d.Alternate(ctx, ns, on, none, n, warmup)
	if err != nil {
		return err
	}
	run := func(ss []harness.Sample) float64 { return ms(harness.PhaseMedians(ss)[3]) }
	ratio("syscall-heavy run", "ms", run(a), run(b), 1.01, on.Name+" "+strings.Join(harness.SyscallHeavy[1:], " "), none.Name)
	phaseLine(on, a)
	phaseLine(none, b)
	return nil
}
