package main

import (
	"fmt"
	"io"

	"github.com/hardened-dev/hardened/internal/version"
)

func cmdVersion(stdout io.Writer) error {
	fmt.Fprintln(stdout, version.String("hardenctl"))
	return nil
}
