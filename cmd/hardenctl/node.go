package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/hardened-dev/hardened/internal/nodeinstall"
)

// The node commands are the node installer's (deploy/installer/install.sh)
// checks and its few Kubernetes API calls.
func nodeCmd() *cobra.Command {
	c := groupCmd("node", "What the node installer checks and reports (containerd, the CRI handlers, running shims, node labels)",
		"preflight, verify, shims, label, unlabel or event")
	c.AddCommand(nodePreflightCmd(), nodeVerifyCmd(), nodeShimsCmd(), nodeLabelCmd(), nodeUnlabelCmd(), nodeEventCmd())
	return c
}

const defaultCRIAddress = "/run/containerd/containerd.sock"

func addressFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "address", defaultCRIAddress, "containerd's socket (its CRI and its API)")
}

func nodePreflightCmd() *cobra.Command {
	var address string
	c := &cobra.Command{
		Use:   "preflight",
		Short: "Check that the node runs containerd 2.3 or later (exit 3 when it does not)",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 30*time.Second)
			defer cancel()
			cri, err := nodeinstall.DialCRI(address)
			if err != nil {
				return err
			}
			defer cri.Close()
			v, err := cri.Preflight(ctx)
			if err != nil {
				return fmt.Errorf("%w: %v", errRefused, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "ok: %s %s\n", v.Name, v.Version)
			return nil
		},
	}
	addressFlag(c, &address)
	return c
}

func nodeVerifyCmd() *cobra.Command {
	var (
		address, image, logDir, hostRoot string
		podUID, container                string
		handlers, command                []string
		timeout                          time.Duration
	)
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check that the CRI lists each handler and runs one container to a clean exit under each (exit 3 when not)",
		Long: "verify asks containerd's CRI for its runtime handlers, then runs one pod with one container\n" +
			"under each handler given, waits for the container to exit 0 and removes the pod.\n" +
			"The image must already be in containerd's k8s.io image store: --image names it, or\n" +
			"--pod-uid and --container name a running container whose image to use (the installer's own).",
		Args: args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			if (image == "") == (podUID == "") {
				return fmt.Errorf("%w: give either --image or --pod-uid", errUsage)
			}
			if len(handlers) == 0 {
				return fmt.Errorf("%w: at least one --handler is required", errUsage)
			}
			ctx := c.Context()
			cri, err := nodeinstall.DialCRI(address)
			if err != nil {
				return err
			}
			defer cri.Close()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if image == "" {
				if image, err = cri.ImageOf(sctx, podUID, container); err != nil {
					return fmt.Errorf("finding the image of container %s of pod %s: %w", container, podUID, err)
				}
			}
			have, err := cri.Handlers(sctx)
			if err != nil {
				return fmt.Errorf("%w: the CRI's status: %v", errRefused, err)
			}
			w := c.OutOrStdout()
			var missing []string
			for _, h := range handlers {
				if !slices.Contains(have, h) {
					missing = append(missing, h)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%w: the CRI does not list handler(s) %s (it lists %s): containerd did not load the drop-in",
					errRefused, strings.Join(missing, ", "), strings.Join(quoteAll(have), ", "))
			}
			fmt.Fprintf(w, "ok: the CRI lists %s\n", strings.Join(handlers, ", "))
			var errs []error
			for _, h := range handlers {
				res, err := cri.Run(ctx, nodeinstall.Check{
					Handler: h, Image: image, Command: command,
					LogDir: logDir, HostRoot: hostRoot,
					Namespace: "hardened-system", Name: "hardened-verify",
					Timeout: timeout,
				})
				if err != nil {
					errs = append(errs, err)
					fmt.Fprintf(w, "FAIL: handler %s: %v\n", h, err)
					continue
				}
				fmt.Fprintf(w, "ok: handler %s ran a container to exit 0 in %s\n", h, res.Took.Round(time.Millisecond))
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("%w: %v", errRefused, err)
			}
			return nil
		},
	}
	addressFlag(c, &address)
	c.Flags().StringSliceVar(&handlers, "handler", nil, "a runtime handler to verify (repeat, or comma-separated)")
	c.Flags().StringVar(&image, "image", "", "the image the verification container runs (already in containerd's k8s.io store)")
	c.Flags().StringVar(&podUID, "pod-uid", "", "run the image of a container of this pod instead (the kubelet's pod UID)")
	c.Flags().StringVar(&container, "container", "install", "with --pod-uid: the container whose image to run")
	c.Flags().StringSliceVar(&command, "command", []string{"/bin/sh", "-c", "exit 0"}, "the command it runs (comma-separated); it must exit 0")
	c.Flags().StringVar(&logDir, "log-dir", "/var/log/pods", "where containerd writes the container's log (a node path)")
	c.Flags().StringVar(&hostRoot, "host-root", "", "where the node's / is mounted here (\"\" on the node itself)")
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long one handler's container may take")
	return c
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

func nodeShimsCmd() *cobra.Command {
	var address string
	c := &cobra.Command{
		Use:   "shims",
		Short: "List the containers still running on the hardened shim (exit 3 when there are any)",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 30*time.Second)
			defer cancel()
			running, err := nodeinstall.Shims(ctx, address)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			for _, r := range running {
				fmt.Fprintln(w, r)
			}
			if len(running) > 0 {
				return fmt.Errorf("%w: %d container(s) still run on the hardened shim", errRefused, len(running))
			}
			fmt.Fprintln(w, "none: no container runs on the hardened shim")
			return nil
		},
	}
	addressFlag(c, &address)
	return c
}

// kubeFlags are how the node commands reach the API server: in a pod, the
// defaults (the service account's token and CA, KUBERNETES_SERVICE_HOST)
// are right.
type kubeFlags struct {
	cfg  nodeinstall.KubeConfig
	node string
}

func (k *kubeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&k.cfg.Server, "server", "", "the API server, https://host:port (default: from KUBERNETES_SERVICE_HOST/PORT)")
	c.Flags().StringVar(&k.cfg.TokenFile, "token-file", nodeinstall.DefaultTokenFile, "the bearer token")
	c.Flags().StringVar(&k.cfg.CAFile, "ca-file", nodeinstall.DefaultCAFile, "the API server's CA")
	c.Flags().StringVar(&k.node, "node", os.Getenv("NODE_NAME"), "the node's name (default: $NODE_NAME)")
}

func (k *kubeFlags) client() (*nodeinstall.Kube, error) {
	if k.node == "" {
		return nil, fmt.Errorf("%w: --node (or $NODE_NAME) is required", errUsage)
	}
	return nodeinstall.NewKube(k.cfg)
}

func nodeLabelCmd() *cobra.Command {
	var (
		kf      kubeFlags
		version string
	)
	c := &cobra.Command{
		Use:   "label",
		Short: "Label the node ready for the hardened RuntimeClasses (" + nodeinstall.ReadyLabel + "=true, " + nodeinstall.VersionLabel + "=VERSION)",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			if version == "" {
				return fmt.Errorf("%w: --version is required", errUsage)
			}
			k, err := kf.client()
			if err != nil {
				return err
			}
			ready := "true"
			if err := k.SetLabels(c.Context(), kf.node, map[string]*string{nodeinstall.ReadyLabel: &ready, nodeinstall.VersionLabel: &version}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s labelled %s=true, %s=%s\n", kf.node, nodeinstall.ReadyLabel, nodeinstall.VersionLabel, version)
			return nil
		},
	}
	kf.add(c)
	c.Flags().StringVar(&version, "version", "", "the installed release (a label value: letters, digits, '-', '_', '.')")
	return c
}

func nodeUnlabelCmd() *cobra.Command {
	var kf kubeFlags
	c := &cobra.Command{
		Use:   "unlabel",
		Short: "Take the installer's labels off the node: no new pod is scheduled onto it for the hardened RuntimeClasses",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			k, err := kf.client()
			if err != nil {
				return err
			}
			if err := k.SetLabels(c.Context(), kf.node, map[string]*string{nodeinstall.ReadyLabel: nil, nodeinstall.VersionLabel: nil}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s: removed %s and %s\n", kf.node, nodeinstall.ReadyLabel, nodeinstall.VersionLabel)
			return nil
		},
	}
	kf.add(c)
	return c
}

func nodeEventCmd() *cobra.Command {
	var (
		kf                              kubeFlags
		namespace, typ, reason, message string
	)
	c := &cobra.Command{
		Use:   "event",
		Short: "Record an event on the node (kubectl describe node shows it)",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			if typ != corev1.EventTypeNormal && typ != corev1.EventTypeWarning {
				return fmt.Errorf("%w: --type must be Normal or Warning", errUsage)
			}
			if reason == "" || message == "" {
				return fmt.Errorf("%w: --reason and --message are required", errUsage)
			}
			k, err := kf.client()
			if err != nil {
				return err
			}
			return k.Event(c.Context(), namespace, kf.node, typ, reason, message)
		},
	}
	kf.add(c)
	c.Flags().StringVar(&namespace, "namespace", "default", "the namespace the event is recorded in (events about a node: default or kube-system)")
	c.Flags().StringVar(&typ, "type", corev1.EventTypeWarning, "Normal or Warning")
	c.Flags().StringVar(&reason, "reason", "", "a CamelCase reason (InstallFailed, Installed, ...)")
	c.Flags().StringVar(&message, "message", "", "what happened")
	return c
}
