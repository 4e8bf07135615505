package lab

import (
	"fmt"
	"os"
	"path/filepath"

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
// alone when they are not there.
func removeFromUserKubeconfig(userPath, contextName string) error {
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
	data, err := clientcmd.Write(*user)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(userPath, data, 0o600)
}

// UserKubeconfigPath is the first file of $KUBECONFIG, or ~/.kube/config.
func UserKubeconfigPath() string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return rules.GetDefaultFilename()
}
