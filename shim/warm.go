package shim

// A shim process serves the containers of one pod, usually one container,
// and containerd's Create reaches it about a millisecond after it starts.
// The first Create then pays the process's cold costs: its label lookup
// dials containerd and initialises the protobuf types of its messages
// (about 3 ms, against 1.5 ms for its four calls once warm), and the node
// policy is parsed with its profiles. NewService starts both in the
// background (warm): the policy is the one Create will read unless
// the request or the container record names another (policyCache keeps it
// by file identity, so a file changed in between is read again), and the
// connection is the one the first lookup takes over (grpcLabels.warm).
// Measured: a Create's own work (before the stock Create) from about 9.5 ms
// to 7.5 ms.
func warm(labels labelSource, policies *policyCache) {
	if g, ok := labels.(*grpcLabels); ok {
		go g.warm()
	}
	_, _ = policies.get(nodePolicySource())
}
