package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/internal/version"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hardenctl's version, commit and the versions it was tested with",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(c.OutOrStdout(), version.String("hardenctl"))
			return nil
		},
	}
}
