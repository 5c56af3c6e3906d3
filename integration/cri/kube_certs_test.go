//go:build integration

package cri

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// kubePKI is the test cluster's certificate authority and the key pairs
// signed by it, written as PEM files into one directory.
type kubePKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newKubePKI(dir string) (*kubePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hardened-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &kubePKI{dir: dir, caCert: cert, caKey: key}
	if err := p.write("ca.crt", "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *kubePKI) path(name string) string { return filepath.Join(p.dir, name) }

func (p *kubePKI) write(name, typ string, der []byte) error {
	return os.WriteFile(p.path(name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// writeCAKey writes ca.key (the controller-manager signs CSRs with it).
func (p *kubePKI) writeCAKey() error {
	der, err := x509.MarshalECPrivateKey(p.caKey)
	if err != nil {
		return err
	}
	return p.write("ca.key", "EC PRIVATE KEY", der)
}

// issue writes name.crt and name.key: a certificate for cn in groups
// (organizations), for serving when ips or dns are given, else a client.
func (p *kubePKI) issue(name, cn string, groups []string, ips []net.IP, dns []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	if len(ips) > 0 || len(dns) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := p.write(name+".crt", "CERTIFICATE", der); err != nil {
		return err
	}
	return p.write(name+".key", "EC PRIVATE KEY", kder)
}

// serviceAccountKey writes sa.key and sa.pub: the key the apiserver signs
// service account tokens with (projected volumes) and verifies them by.
func (p *kubePKI) serviceAccountKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := p.write("sa.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return p.write("sa.pub", "PUBLIC KEY", pub)
}

// kubeconfig writes a kubeconfig for the client certificate name.crt that
// talks to server.
func (p *kubePKI) kubeconfig(file, server, name string) error {
	const tmpl = `apiVersion: v1
kind: Config
clusters:
- name: hardened-test
  cluster:
    certificate-authority: %[1]s
    server: %[2]s
users:
- name: %[3]s
  user:
    client-certificate: %[4]s
    client-key: %[5]s
contexts:
- name: hardened-test
  context:
    cluster: hardened-test
    user: %[3]s
current-context: hardened-test
`
	return os.WriteFile(file, []byte(fmt.Sprintf(tmpl, p.path("ca.crt"), server, name,
		p.path(name+".crt"), p.path(name+".key"))), 0o600)
}
