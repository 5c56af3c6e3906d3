// Command containerd-shim-hardened-v2 is the hardened containerd shim
// (runtime type io.containerd.hardened.v2). Its runsc wrapper is a separate
// binary, hardened-runsc (cmd/hardened-runsc), installed next to it.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/hardened-dev/hardened/internal/version"
	hshim "github.com/hardened-dev/hardened/shim"
	_ "github.com/hardened-dev/hardened/shim/plugin"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func main() {
	// Shims before the wrapper was its own binary symlinked this binary as
	// hardened-runsc; containers they created still name such a symlink
	// (their `delete` runs it), so this binary keeps answering to it.
	if runscwrap.IsWrapper(os.Args[0]) {
		runscwrap.Main()
	}
	// containerd's shim code answers -v with containerd's version: answer
	// with this shim's own.
	if len(os.Args) == 2 && (os.Args[1] == "-v" || os.Args[1] == "--v" || os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(version.String("containerd-shim-hardened-v2"))
		os.Exit(0)
	}
	// A shim lives as long as its pod, idle nearly all of it; the heap
	// profiler's samples of its Creates (a bucket per sampled stack, in a
	// 1.4 MiB hash table touched where they land) would stay resident for
	// that long, and nothing reads them: this binary serves no pprof.
	runtime.MemProfileRate = 0
	shim.RunShim(context.Background(), hshim.NewManager("io.containerd.hardened.v2"))
}
