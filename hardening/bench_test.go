package hardening

import "testing"

// BenchmarkHarden is the whole rewrite of a typical CRI container spec
// under the default profile: the shim pays it on every container create.
func BenchmarkHarden(b *testing.B) {
	in := loadSpec(b, "cri-container")
	cfg := cfgFor(b, "hardened")
	if _, _, err := Harden(in, cfg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Harden(in, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHardenKeptFilter rewrites a spec that already has containerd's
// default filter (a pod with seccompProfile RuntimeDefault): the filter is
// kept and the Deny list applied to it.
func BenchmarkHardenKeptFilter(b *testing.B) {
	in := loadSpec(b, "cri-container")
	cfg := cfgFor(b, "hardened")
	out, _, err := Harden(in, cfgFor(b, "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	in.Linux.Seccomp = out.Linux.Seccomp
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Harden(in, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateUncached is the cost of checking a filter the way runc
// compiles it, without the cache (a filter never seen before).
func BenchmarkCompileLikeRuncUncached(b *testing.B) {
	out, _, err := Harden(loadSpec(b, "cri-container"), cfgFor(b, "hardened"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := compileLikeRuncUncached(out.Linux.Seccomp); err != nil {
			b.Fatal(err)
		}
	}
}
