package main

import (
	"fmt"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// builtinPolicy names the built-in policy on the command line.
const builtinPolicy = "builtin"

// loadPolicy loads the node policy from file ("" or "builtin": the
// built-in policy) and
// the profiles it makes available, and checks that they fit together.
func loadPolicy(file string) (*policy.Policy, *profiles.Set, error) {
	pol := policy.Default()
	if file != "" && file != builtinPolicy {
		var err error
		if pol, err = policy.Load(file); err != nil {
			return nil, nil, err
		}
	}
	set, err := hardening.LoadProfiles(pol.ProfilesDir)
	if err != nil {
		return nil, nil, err
	}
	if err := pol.Check(set); err != nil {
		return nil, nil, err
	}
	return pol, set, nil
}

func policyCmd() *cobra.Command {
	c := groupCmd("policy", "Work with node policies", "validate")
	var out string
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a node policy and the profiles it names (exit 2 when invalid)",
		Args:  args(1, 1, "one policy file"),
		RunE: func(c *cobra.Command, a []string) error {
			pol, set, err := loadPolicy(a[0])
			if err != nil {
				return err
			}
			// JSON and YAML name keys as the policy file does.
			data, err := toml.Marshal(pol)
			if err != nil {
				return err
			}
			var keyed map[string]any
			if err := toml.Unmarshal(data, &keyed); err != nil {
				return err
			}
			return emit(c.OutOrStdout(), out, keyed, func() error {
				fmt.Fprintf(c.OutOrStdout(), "%s: valid: mode %s, default profile %s, minimum %s, %d profiles, %d routes\n",
					a[0], pol.Mode, pol.DefaultProfile, pol.MinimumProfile, len(set.Names()), len(pol.Routes))
				return nil
			})
		},
	}
	outputFlag(validate, &out, "table", "json", "yaml")
	c.AddCommand(validate)
	return c
}
