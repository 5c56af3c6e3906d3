// Command hardened-runsc is the runsc wrapper of containerd-shim-hardened-v2
// (package shim/runscwrap). Install it next to the shim binary: the shim
// runs gVisor containers through it and refuses them when it is missing.
//
// The shim does not run it by this path: it hands the runc shim code a
// symlink to it, in a directory per runsc configuration (runsc.json) under
// the shim's run directory, and the wrapper reads its configuration next to
// argv[0]. Run directly, it fails with a message naming the missing file.
package main

import "github.com/hardened-dev/hardened/shim/runscwrap"

func main() {
	runscwrap.Main()
}
