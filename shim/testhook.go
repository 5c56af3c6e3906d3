package shim

import "context"

// testHookAfterPin, when set, runs in Create after the mount sources are
// pinned and staged and the bundle files written, right before the stock
// Create: the moment a swapped source would do the most harm. An error
// refuses the container (the staging is removed). It is nil in every
// build but one with the hardened_testhook tag (testhook_on.go), which
// the integration tests' shim is built with; unit tests set it directly.
// Nothing in a spec or a request reaches it.
var testHookAfterPin func(ctx context.Context, id, bundle string) error
