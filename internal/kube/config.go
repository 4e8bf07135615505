// Package kube holds the few Kubernetes client helpers tug's commands and the
// lab share: loading a kubeconfig the way kubectl does, server-side apply of
// rendered objects in dependency order, and waiting for CRDs.
package kube

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig loads a client configuration with kubectl's rules: an explicit
// kubeconfig path wins, else $KUBECONFIG, else ~/.kube/config, else the
// in-cluster service account. context selects a kubeconfig context ("" = the
// current one).
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (set --kubeconfig/--context or $KUBECONFIG): %w", err)
	}
	// Bootstrap and wait issue bursts of small requests; client-go's default
	// 5 QPS would make them crawl.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}
