package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// ContextName is the context `lab up` adds to the user's kubeconfig.
func ContextName(labName string) string {
	if labName == "default" {
		return "tug-lab"
	}
	return "tug-lab-" + labName
}

// writeKubeconfig writes a kubeconfig for one identity of the lab: either a
// client certificate (certFile/keyFile) or a bearer token.
func writeKubeconfig(path, server, caFile, certFile, keyFile, token, namespace, contextName string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile}
	user := &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile, Token: token}
	cfg.AuthInfos[contextName] = user
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: contextName, Namespace: namespace}
	cfg.CurrentContext = contextName
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// mergeIntoUserKubeconfig adds (or replaces) the lab's cluster, user and
// context in the user's kubeconfig and makes it current, as kind does. It
// embeds the certificate data so the entry keeps working wherever the
// file is read from.
func mergeIntoUserKubeconfig(userPath, labKubeconfig, contextName string, makeCurrent bool) error {
	userPath, unlock, err := lockKubeconfig(userPath)
	if err != nil {
		return err
	}
	defer unlock()
	lab, err := clientcmd.LoadFromFile(labKubeconfig)
	if err != nil {
		return err
	}
	if err := clientcmdapi.FlattenConfig(lab); err != nil {
		return err
	}
	user := clientcmdapi.NewConfig()
	if fileExists(userPath) {
		if user, err = clientcmd.LoadFromFile(userPath); err != nil {
			return fmt.Errorf("read %s: %w (fix or move it, or pass --no-kubeconfig-update)", userPath, err)
		}
	}
	src := lab.Contexts[lab.CurrentContext]
	user.Clusters[contextName] = lab.Clusters[src.Cluster]
	user.AuthInfos[contextName] = lab.AuthInfos[src.AuthInfo]
	user.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: contextName, Namespace: src.Namespace}
	if makeCurrent || user.CurrentContext == "" {
		user.CurrentContext = contextName
	}
	data, err := clientcmd.Write(*user)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(userPath), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(userPath, data, 0o600)
}

// removeFromUserKubeconfig deletes the lab's entries; it leaves the file
// alone when they are not there. A file left with nothing in it (the one
// the lab's `up` created where there was none) is removed, and so is its
// folder once that is empty (~/.kube, which `up` made on a host without
// one), so the host is as it was; a symlink's target is kept.
func removeFromUserKubeconfig(userPath, contextName string) error {
	fi, err := os.Lstat(userPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to remove, and no folder to make for a lock
	}
	linked := err == nil && fi.Mode()&os.ModeSymlink != 0
	userPath, unlock, err := lockKubeconfig(userPath)
	if err != nil {
		return err
	}
	removed := false
	defer func() {
		unlock() // the lock file is in the folder
		if removed {
			_ = os.Remove(filepath.Dir(userPath)) // refused while anything is in it
		}
	}()
	if !fileExists(userPath) {
		return nil
	}
	user, err := clientcmd.LoadFromFile(userPath)
	if err != nil {
		return err
	}
	if _, ok := user.Contexts[contextName]; !ok {
		return nil
	}
	delete(user.Clusters, contextName)
	delete(user.AuthInfos, contextName)
	delete(user.Contexts, contextName)
	if user.CurrentContext == contextName {
		user.CurrentContext = ""
	}
	if emptyKubeconfig(user) && !linked { // a link's target is the user's, not the lab's
		if err := os.Remove(userPath); err != nil {
			return err
		}
		removed = true
		return nil
	}
	data, err := clientcmd.Write(*user)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(userPath, data, 0o600)
}

// emptyKubeconfig says whether c holds nothing a user could have written.
func emptyKubeconfig(c *clientcmdapi.Config) bool {
	return len(c.Clusters) == 0 && len(c.AuthInfos) == 0 && len(c.Contexts) == 0 && c.CurrentContext == "" &&
		len(c.Extensions) == 0 && len(c.Preferences.Extensions) == 0 && !c.Preferences.Colors
}

// UserKubeconfigPath is the first file of $KUBECONFIG, or ~/.kube/config.
func UserKubeconfigPath() string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return rules.GetDefaultFilename()
}

// lockKubeconfig resolves the user's kubeconfig through symlinks (a
// ~/.kube/config linked into a dotfiles repository stays a link: the file
// it points at is rewritten) and locks it against another tug doing the
// same read-modify-write; the lock is the file kubectl itself uses
// (<file>.lock, created exclusively), so a kubectl writing it waits too.
func lockKubeconfig(path string) (resolved string, unlock func(), err error) {
	resolved = path
	if target, err := filepath.EvalSymlinks(path); err == nil {
		resolved = target
	} else if link, lerr := os.Readlink(path); lerr == nil {
		// A dangling link: write where it points.
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		resolved = link
	}
	if err := os.MkdirAll(filepath.Dir(resolved), 0o700); err != nil {
		return "", nil, err
	}
	lock := resolved + ".lock"
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return resolved, func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", nil, fmt.Errorf("lock %s: %w", resolved, err)
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("%s is locked (%s exists for 10 s): another program is writing it; if none is, delete the .lock file", resolved, lock)
		}
		time.Sleep(100 * time.Millisecond) // polling the lock file with a deadline
	}
}
