// Command hardened-bench measures the hardened shim side by side with
// containerd's stock runc shim, in one run, on the same image, alternating
// the two so that drift on the machine hits both alike:
//
//   - start-to-exit of /bin/true (create, start, wait, delete: `ctr run
//     --rm`) through the hardened shim (restricted profile, runc) vs the
//     stock runc shim with the default seccomp profile and a read-only
//     rootfs (`ctr run --seccomp --read-only`);
//   - the same through the hardened shim's gVisor route vs the stock runc
//     shim with BinaryName=runsc;
//   - resident memory (VmRSS) of one idle hardened shim vs one idle stock
//     shim, each serving a `sleep` container.
//
// It prints medians and ratios against the targets (start <= 1.05, gVisor
// <= 1.05, memory <= 1.10). Needs root and the tools of
// hack/install-tools.sh; -strict exits 1 when a target is missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
}

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

	if !skipGVisor {
		ga, gb, err := d.Alternate(ctx, ns, gvisor, stockRunsc, n, warmup)
		if err != nil {
			return 0, err
		}
		ratio("start to exit (gVisor)", "ms", ms(harness.Median(harness.Totals(ga))), ms(harness.Median(harness.Totals(gb))), 1.05, gvisor.Name, stockRunsc.Name)
		phaseLine(gvisor, ga)
		phaseLine(stockRunsc, gb)
	}

	var ra, rb []int64
	for i := 0; i < memRounds; i++ {
		h := hardened.Spec(fmt.Sprintf("idle-h-%d", i))
		st := stock.Spec(fmt.Sprintf("idle-s-%d", i))
		rh, err := d.IdleShimRSS(ctx, ns, h, harness.ShimBinary, time.Second)
		if err != nil {
			return 0, fmt.Errorf("idle hardened shim: %w", err)
		}
		rs, err := d.IdleShimRSS(ctx, ns, st, "containerd-shim-runc-v2", time.Second)
		if err != nil {
			return 0, fmt.Errorf("idle stock shim: %w", err)
		}
		ra, rb = append(ra, rh), append(rb, rs)
	}
	ratio("idle shim VmRSS", "MiB", float64(harness.MedianInt(ra))/1024, float64(harness.MedianInt(rb))/1024, 1.10, "hardened shim", "stock runc shim")

	code := 0
	fmt.Printf("%-24s %12s %12s %8s %8s  %s\n", "measure", "hardened", "stock", "ratio", "target", "")
	for _, r := range results {
		verdict := "ok"
		if !r.met {
			verdict = "MISSED"
			if strict {
				code = 1
			}
		}
		fmt.Printf("%-24s %9.1f %-2s %9.1f %-2s %8.3f %8s  %s\n", r.name, r.ma, r.unit, r.mb, r.unit, r.ratio, fmt.Sprintf("<=%.2f", r.target), verdict)
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("  %s: %s vs %s\n", r.name, r.a, r.b)
	}
	fmt.Println("\nmedian phases (ms): create = NewContainer, task = NewTask (shim start + its Create), start, run = until exit, delete")
	for _, l := range phases {
		fmt.Println(l)
	}
	return code, nil
}
