package main

import (
	"fmt"
	"io"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// loadPolicy loads the node policy from file ("" = the built-in policy) and
// the profiles it makes available, and checks that they fit together.
func loadPolicy(file string) (*policy.Policy, *profiles.Set, error) {
	pol := policy.Default()
	if file != "" {
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

func cmdPolicy(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		return fmt.Errorf("%w: policy validate FILE", errUsage)
	}
	pol, set, err := loadPolicy(args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid: mode %s, default profile %s, minimum %s, %d profiles, %d routes\n",
		args[1], pol.Mode, pol.DefaultProfile, pol.MinimumProfile, len(set.Names()), len(pol.Routes))
	return nil
}
