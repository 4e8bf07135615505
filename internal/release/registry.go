package release

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Keychain is how release finds credentials for registry host: a user name
// and token in $TUG_REGISTRY_USER and $TUG_REGISTRY_TOKEN (for that host
// only), else docker's config.json and its credential helpers
// (authn.DefaultKeychain), else anonymous. Credentials travel only in
// request headers; they are never printed or written anywhere.
func Keychain(host string) authn.Keychain {
	return authn.NewMultiKeychain(envKeychain{host: host}, authn.DefaultKeychain)
}

type envKeychain struct{ host string }

func (k envKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	user, token := os.Getenv(UserEnv), os.Getenv(TokenEnv)
	switch {
	case user == "" && token == "":
		return authn.Anonymous, nil
	case user == "" || token == "":
		return nil, fmt.Errorf("release: set both $%s and $%s, or neither (to use docker's config.json)", UserEnv, TokenEnv)
	case target.RegistryStr() != k.host:
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: token}), nil
}

// loopbackOnlyHTTP refuses plain-http requests to anything but a loopback
// host: go-containerregistry falls back to http for private and .local
// addresses too, where credentials would cross the network in clear.
type loopbackOnlyHTTP struct{ next http.RoundTripper }

func (t loopbackOnlyHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain http to %s: only loopback registries are used without TLS", req.URL.Host)
	}
	return t.next.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
