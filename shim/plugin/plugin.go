// Package plugin registers the hardened task service as the shim's TTRPC
// "task" plugin, the way containerd's runc shim registers its own (its
// task/plugin package must not be imported alongside: same plugin ID).
package plugin

import (
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	hshim "github.com/hardened-dev/hardened/shim"
)

func init() {
	registry.Register(&plugin.Registration{
		Type: plugins.TTRPCPlugin,
		ID:   "task",
		Requires: []plugin.Type{
			plugins.EventPlugin,
			plugins.InternalPlugin,
		},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			inner, err := task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			// The shim runs in the bundle of the container it was
			// started for (its working directory): that Create's inputs
			// are read ahead.
			bundle, _ := os.Getwd()
			ns, _ := namespaces.Namespace(ic.Context)
			return hshim.NewService(inner, hshim.Config{
				GRPCAddress: ic.Properties[plugins.PropertyGRPCAddress],
				Publisher:   pp.(shim.Publisher),
				// The shim's reaper collects every child: the probes the
				// shim runs must wait through it.
				RunCommand: hshim.RunThroughReaper,
				Bundle:     bundle,
				Namespace:  ns,
			}), nil
		},
	})
}
