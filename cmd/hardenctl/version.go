package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/hardened-dev/hardened/internal/version"
)

func cmdVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "hardenctl %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
