// Command containerd-shim-hardened-v2 is the hardened containerd shim
// (runtime type io.containerd.hardened.v2). Invoked as hardened-runsc (a
// symlink the shim creates), it is the runsc wrapper instead.
package main

import (
	"context"
	"os"

	"github.com/containerd/containerd/v2/pkg/shim"

	hshim "github.com/hardened-dev/hardened/shim"
	_ "github.com/hardened-dev/hardened/shim/plugin"
)

func main() {
	if hshim.IsRunscWrapper(os.Args[0]) {
		hshim.RunscWrapperMain()
	}
	shim.RunShim(context.Background(), hshim.NewManager("io.containerd.hardened.v2"))
}
