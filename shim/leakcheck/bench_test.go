package leakcheck

import "testing"

// BenchmarkInspect is the start-time check's cost per container: hold,
// inspect and release a process in a state like runc init's in the created
// state (pivoted into its root in a mount namespace of its own, stdio plus
// close-on-exec descriptors: a directory, a pipe, a socket pair, an O_PATH
// handle outside its root, the Go runtime's own).
func BenchmarkInspect(b *testing.B) {
	needRoot(b)
	root, outside := dirs(b)
	h := startHelper(b, "pivot", root, outside)
	want := Expect{Root: root}
	b.ReportAllocs()
	for b.Loop() {
		p, err := Open(h.pid())
		if err != nil {
			b.Fatal(err)
		}
		found, err := p.Inspect(want)
		p.Close()
		if err != nil || len(found) != 0 {
			b.Fatalf("findings %v, error %v", found, err)
		}
	}
}
