package node

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// ca is the lab's certificate authority, read from its files.
type ca struct {
	certPath string
	cert     *x509.Certificate
	key      crypto.Signer
}

func loadCA(certPath, keyPath string) (*ca, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	c, _ := pem.Decode(cb)
	k, _ := pem.Decode(kb)
	if c == nil || k == nil {
		return nil, errors.New("lab CA: not PEM")
	}
	cert, err := x509.ParseCertificate(c.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(k.Bytes)
	if err != nil {
		return nil, err
	}
	return &ca{certPath: certPath, cert: cert, key: key}, nil
}

// cert is one identity the node needs.
type cert struct {
	name  string // file stem
	cn    string
	orgs  []string
	ips   []net.IP // a serving certificate when set
	names []string
}

// issue writes dir/<name>.crt and .key, signed by the CA, unless they exist.
func (c *ca) issue(dir string, id cert) (crtPath, keyPath string, err error) {
	crtPath, keyPath = filepath.Join(dir, id.name+".crt"), filepath.Join(dir, id.name+".key")
	if _, err1 := os.Stat(crtPath); err1 == nil {
		if _, err2 := os.Stat(keyPath); err2 == nil {
			return crtPath, keyPath, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.cn, Organization: id.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(id.ips) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses, tmpl.DNSNames = id.ips, id.names
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return "", "", fmt.Errorf("issue %s: %w", id.name, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := fsutil.WriteFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return crtPath, keyPath, fsutil.WriteFileAtomic(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// kubeconfig writes a kubeconfig for a client certificate.
func kubeconfig(path, server, caPath, crt, key string) error {
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: node
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: lab
  context:
    cluster: lab
    user: node
current-context: lab
`, server, caPath, crt, key)
	return fsutil.WriteFileAtomic(path, []byte(data), 0o600)
}
