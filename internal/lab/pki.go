package lab

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

// pki holds the lab's certificate authority and the files issued from it.
// ECDSA P-256 keys keep generation in the milliseconds (RSA-2048 takes
// ~100 ms a key on this class of machine, and the lab makes a dozen).
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
}

// identity is one certificate the lab issues.
type identity struct {
	name   string   // file stem under pki/
	cn     string   // user name for client certs
	orgs   []string // groups for client certs
	server bool     // serving certificate for 127.0.0.1/localhost
	extra  []string // extra DNS names for serving certs
}

func (p *pki) caPath() string           { return filepath.Join(p.dir, "ca.crt") }
func (p *pki) certPath(n string) string { return filepath.Join(p.dir, n+".crt") }
func (p *pki) keyPath(n string) string  { return filepath.Join(p.dir, n+".key") }

// loadOrCreatePKI reuses the CA in dir, or makes a new one.
func loadOrCreatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	certPEM, errC := os.ReadFile(p.caPath())
	keyPEM, errK := os.ReadFile(p.keyPath("ca"))
	if errC == nil && errK == nil {
		cert, key, err := parsePair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("lab CA in %s is damaged (%w): delete the lab with 'tug lab down --delete' and start again", dir, err)
		}
		p.caCert, p.caKey = cert, key
		return p, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tug-lab-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	p.caCert, p.caKey = cert, key
	if err := writeKey(p.keyPath("ca"), key); err != nil {
		return nil, err
	}
	return p, writePEM(p.caPath(), "CERTIFICATE", der, 0o644)
}

// issue writes id's certificate and key unless they already exist.
func (p *pki) issue(id identity) error {
	if fileExists(p.certPath(id.name)) && fileExists(p.keyPath(id.name)) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.cn, Organization: id.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if id.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}
		tmpl.DNSNames = append([]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}, id.extra...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return err
	}
	if err := writeKey(p.keyPath(id.name), key); err != nil {
		return err
	}
	return writePEM(p.certPath(id.name), "CERTIFICATE", der, 0o644)
}

// serviceAccountKey writes the key pair the API server signs tokens with.
func (p *pki) serviceAccountKey() (priv, pub string, err error) {
	priv, pub = p.keyPath("sa"), filepath.Join(p.dir, "sa.pub")
	if fileExists(priv) && fileExists(pub) {
		return priv, pub, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	if err := writeKey(priv, key); err != nil {
		return "", "", err
	}
	return priv, pub, writePEM(pub, "PUBLIC KEY", pubDER, 0o644)
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

// writePEM writes atomically: a crash never leaves half a key behind.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return fsutil.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
