package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Client bundles the clients tug needs against one cluster. Its RESTMapper
// caches discovery; call ResetMapper after creating CRDs.
type Client struct {
	Config  *rest.Config
	Dynamic dynamic.Interface
	Typed   kubernetes.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	// crdsEstablished is when this client last saw CRDs it applied become
	// Established. For a while after, discovery may still lack some of
	// their kinds (the API server publishes them asynchronously, one group
	// version list at a time), so later applies keep retrying a missing
	// kind instead of failing at once.
	crdsEstablished time.Time
}

// discoveryLag bounds how long after CRDs are Established a missing kind is
// retried rather than reported.
const discoveryLag = 15 * time.Second

// NewClient builds the dynamic and typed clients and a lazily filled,
// resettable RESTMapper for cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &Client{
		Config:  cfg,
		Dynamic: dyn,
		Typed:   typed,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
	}, nil
}

// Mapper returns the client's RESTMapper.
func (c *Client) Mapper() meta.RESTMapper { return c.mapper }

// ResetMapper drops cached discovery so newly established CRDs resolve.
func (c *Client) ResetMapper() { c.mapper.Reset() }

// Mapping resolves a GroupVersionKind. A kind that is not served yet (a CRD
// just established, discovery not caught up) is retried with a fresh mapper
// until ctx ends or settle passes.
func (c *Client) Mapping(ctx context.Context, gvk schema.GroupVersionKind, settle time.Duration) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) || settle <= 0 {
		return m, err
	}
	pollErr := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, settle, true, func(context.Context) (bool, error) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil && !meta.IsNoMatchError(err) {
			return false, err
		}
		return err == nil, nil
	})
	if pollErr != nil && err == nil {
		err = pollErr
	}
	return m, err
}

// ResourceFor returns the dynamic resource interface for obj, scoped to its
// namespace when the kind is namespaced.
func (c *Client) ResourceFor(ctx context.Context, obj *unstructured.Unstructured) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	m, err := c.Mapping(ctx, obj.GroupVersionKind(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", Ref(obj), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, nil, fmt.Errorf("%s: namespaced kind without metadata.namespace", Ref(obj))
		}
		return c.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), m, nil
	}
	return c.Dynamic.Resource(m.Resource), m, nil
}

// Ref names an object for messages: Kind/namespace/name or Kind/name.
func Ref(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + "/" + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetName()
}

// errNoMatch reports whether err is a RESTMapper miss (kind not served).
func errNoMatch(err error) bool {
	var nm *meta.NoKindMatchError
	return errors.As(err, &nm) || meta.IsNoMatchError(err)
}
