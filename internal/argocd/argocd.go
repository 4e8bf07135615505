// Package argocd names the Argo CD objects tug reads and writes, so that
// every package (bootstrap, status and wait, drift, promote, validate, the
// lab) agrees on them.
package argocd

import "k8s.io/apimachinery/pkg/runtime/schema"

// Namespace is where Argo CD runs and keeps its Applications, unless a
// command is told otherwise (--namespace, or an Application's declared
// metadata.namespace).
const Namespace = "argocd"

// ApplicationsGVR is the Application resource (applications.argoproj.io).
var ApplicationsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
