package nodeinstall

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The installer's node labels. ReadyLabel is what the RuntimeClasses
// schedule on (deploy/base/runtimeclasses.yaml); VersionLabel says which
// release proved itself there.
const (
	LabelPrefix  = "hardened.dev/"
	ReadyLabel   = LabelPrefix + "ready"
	VersionLabel = LabelPrefix + "version"
)

// The in-cluster defaults: the service account's token and CA, mounted
// into every pod that has automountServiceAccountToken (or a projected
// token volume at that path).
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// KubeConfig says how to reach the API server.
type KubeConfig struct {
	// Server is https://host:port; "" takes KUBERNETES_SERVICE_HOST and
	// KUBERNETES_SERVICE_PORT (set in every pod).
	Server string
	// TokenFile and CAFile default to the service account's.
	TokenFile, CAFile string
}

// Kube is a client for the few API calls the installer makes, with the
// installer's service account (deploy/base/rbac.yaml allows exactly
// these).
type Kube struct {
	server    string
	tokenFile string
	http      *http.Client
}

// NewKube makes a client from cfg.
func NewKube(cfg KubeConfig) (*Kube, error) {
	server := cfg.Server
	if server == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("no API server: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set and no server was given")
		}
		server = "https://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API server %q: want https://host[:port]", server)
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = DefaultTokenFile
	}
	if cfg.CAFile == "" {
		cfg.CAFile = DefaultCAFile
	}
	ca, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no PEM certificate", cfg.CAFile)
	}
	return &Kube{
		server:    strings.TrimRight(server, "/"),
		tokenFile: cfg.TokenFile,
		http: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

// APIError is a refusal from the API server: its status and message.
type APIError struct {
	Code    int
	Reason  string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("API server: %d %s: %s", e.Code, e.Reason, e.Message)
}

// do sends one request. The token is read for every request: the kubelet
// rotates projected tokens in place.
func (k *Kube) do(ctx context.Context, method, path, contentType string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.server+path, rd)
	if err != nil {
		return err
	}
	token, err := os.ReadFile(k.tokenFile)
	if err != nil {
		return fmt.Errorf("reading the service account token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hardened-installer")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var st metav1.Status
		if json.Unmarshal(data, &st) == nil && st.Message != "" {
			return &APIError{Code: resp.StatusCode, Reason: string(st.Reason), Message: st.Message}
		}
		return &APIError{Code: resp.StatusCode, Reason: resp.Status, Message: strings.TrimSpace(string(data))}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Node reads a node.
func (k *Kube) Node(ctx context.Context, name string) (*corev1.Node, error) {
	var n corev1.Node
	if err := k.do(ctx, http.MethodGet, "/api/v1/nodes/"+url.PathEscape(name), "", nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// SetLabels sets (a value) or removes (nil) labels on a node with a JSON
// merge patch: other labels are left alone. Every key must carry
// LabelPrefix: the admission policy of deploy/base refuses the
// installer's account anything else.
func (k *Kube) SetLabels(ctx context.Context, node string, labels map[string]*string) error {
	for key := range labels {
		if !strings.HasPrefix(key, LabelPrefix) {
			return fmt.Errorf("label %q: the installer sets only %s labels", key, LabelPrefix)
		}
	}
	patch := map[string]any{"metadata": map[string]any{"labels": labels}}
	return k.do(ctx, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(node), "application/merge-patch+json", patch, nil)
}

// Event records an event about node in namespace (it shows in `kubectl
// describe node`). eventType is corev1.EventTypeNormal or Warning.
func (k *Kube) Event(ctx context.Context, namespace, node, eventType, reason, message string) error {
	n, err := k.Node(ctx, node)
	if err != nil {
		return err
	}
	now := metav1.NewTime(time.Now())
	ev := corev1.Event{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: node + ".hardened-",
			Namespace:    namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "v1", Kind: "Node", Name: node, UID: n.UID,
		},
		Reason:              reason,
		Message:             truncate(message, 1024),
		Type:                eventType,
		Source:              corev1.EventSource{Component: "hardened-installer", Host: node},
		ReportingController: "hardened.dev/installer",
		ReportingInstance:   node,
		Action:              reason,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}
	return k.do(ctx, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/events", "application/json", ev, nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
