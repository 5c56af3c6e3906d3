//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
)

// The benchmarks share one private containerd (started on first use,
// stopped by TestMain) so that b.N's ramp-up does not restart it.
var bench struct {
	once sync.Once
	d    *harness.Daemon
	ns   string
	err  error
	n    int
}

func benchDaemon(b *testing.B) (*harness.Daemon, string) {
	b.Helper()
	requireSuite(b)
	bench.once.Do(func() {
		ctx := context.Background()
		bench.d, bench.err = harness.Start(ctx, harness.Options{ToolsBin: suite.toolsBin, Binaries: suite.bins})
		if bench.err != nil {
			return
		}
		bench.ns = bench.d.Namespace("bench")
		bench.err = bench.d.ImportImages(ctx, bench.ns, harness.DefaultImages())
	})
	if bench.err != nil {
		b.Fatalf("benchmark containerd: %v", bench.err)
	}
	return bench.d, bench.ns
}

// stopBenchDaemon is called by TestMain after the run.
func stopBenchDaemon() error {
	if bench.d == nil {
		return nil
	}
	return bench.d.Stop()
}

func benchID(prefix string) string {
	bench.n++
	return fmt.Sprintf("%s-%d", prefix, bench.n)
}

func benchRun(b *testing.B, v harness.Variant) {
	d, ns := benchDaemon(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.TimeRun(ctx, ns, v.Spec(benchID("b"))); err != nil {
			b.Fatalf("%s: %v", v.Name, err)
		}
	}
}

// BenchmarkStart* time one container from creation to deletion, running
// /bin/true (what `ctr run --rm` does).
func BenchmarkStartHardened(b *testing.B) {
	h, _, _, _ := harness.BenchVariants(suite.toolsBin)
	benchRun(b, h)
}

func BenchmarkStartStockRuncSecure(b *testing.B) {
	_, s, _, _ := harness.BenchVariants(suite.toolsBin)
	benchRun(b, s)
}

func BenchmarkStartHardenedGVisor(b *testing.B) {
	_, _, g, _ := harness.BenchVariants(suite.toolsBin)
	benchRun(b, g)
}

func BenchmarkStartStockRunsc(b *testing.B) {
	_, _, _, r := harness.BenchVariants(suite.toolsBin)
	benchRun(b, r)
}

// BenchmarkSideBySide alternates the hardened shim and its stock
// counterpart within each iteration and reports both medians and their
// ratio (targets: 1.05).
func BenchmarkSideBySide(b *testing.B) {
	h, s, g, r := harness.BenchVariants(suite.toolsBin)
	for _, pair := range []struct {
		name string
		a, b harness.Variant
	}{{"runc", h, s}, {"gvisor", g, r}} {
		b.Run(pair.name, func(b *testing.B) {
			d, ns := benchDaemon(b)
			b.ResetTimer()
			sa, sb, err := d.Alternate(context.Background(), ns, pair.a, pair.b, b.N, 0)
			if err != nil {
				b.Fatal(err)
			}
			ma, mb := harness.Median(harness.Totals(sa)), harness.Median(harness.Totals(sb))
			b.ReportMetric(float64(ma.Microseconds())/1000, "hardened-ms")
			b.ReportMetric(float64(mb.Microseconds())/1000, "stock-ms")
			b.ReportMetric(float64(ma)/float64(mb), "ratio")
		})
	}
}

// BenchmarkIdleShimRSS reports the resident memory of one idle hardened
// shim and one idle stock runc shim (target ratio: 1.10), both binaries
// read from disk (harness.EvictPageCache).
func BenchmarkIdleShimRSS(b *testing.B) {
	h, s, _, _ := harness.BenchVariants(suite.toolsBin)
	d, ns := benchDaemon(b)
	ctx := context.Background()
	var ra, rb []int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := harness.EvictPageCache(suite.bins.Shim, filepath.Join(suite.toolsBin, "containerd-shim-runc-v2")); err != nil {
			b.Fatal(err)
		}
		x, err := d.IdleShimRSS(ctx, ns, h.Spec(benchID("idle-h")), harness.ShimBinary, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		y, err := d.IdleShimRSS(ctx, ns, s.Spec(benchID("idle-s")), "containerd-shim-runc-v2", time.Second)
		if err != nil {
			b.Fatal(err)
		}
		ra, rb = append(ra, x), append(rb, y)
	}
	ma, mb := harness.MedianInt(ra), harness.MedianInt(rb)
	b.ReportMetric(float64(ma)/1024, "hardened-MiB")
	b.ReportMetric(float64(mb)/1024, "stock-MiB")
	b.ReportMetric(float64(ma)/float64(mb), "ratio")
}
