package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/tug-gitops/tug/internal/appstatus"
)

var (
	deploymentGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	serviceGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

// fieldManager marks tug's own drift edits in managedFields.
const fieldManager = "tug-drift-check"

// Options configure Verify.
type Options struct {
	// Namespace of the Application (default argocd).
	Namespace string
	App       string
	// Timeout per drift for Argo CD to heal it (default 60s).
	Timeout time.Duration
	// Kinds of drift to cause (default AllKinds), each Repeat times in a row
	// (default 1; repeats show Argo CD's self-heal backoff).
	Kinds  []string
	Repeat int
	// PollInterval for observing the live object (default 100ms).
	PollInterval time.Duration
	// Progress receives a line per drift caused and healed (nil: none).
	Progress io.Writer
}

// Check is the outcome of one drift.
type Check struct {
	Kind   string `json:"kind"`
	Target string `json:"target"` // Kind/namespace/name
	Change string `json:"change"` // what was changed, e.g. "replicas 1 → 2"
	Healed bool   `json:"healed"`
	// Seconds from the drift until Argo CD had put it back (when Healed).
	Seconds float64 `json:"seconds,omitempty"`
	// RestoredByTug: Argo CD did not heal in time and tug put it back.
	RestoredByTug bool   `json:"restoredByTug,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Report is every check of one Verify.
type Report struct {
	App    string  `json:"app"`
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Verify causes each drift on the app's resources and times the healing.
// An error means the check could not run (app missing, not synced, …);
// drifts that were not healed in time are Report.OK == false.
func Verify(ctx context.Context, dyn dynamic.Interface, opts Options) (*Report, error) {
	if opts.Namespace == "" {
		opts.Namespace = appstatus.DefaultNamespace
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = AllKinds
	}
	if opts.Repeat < 1 {
		opts.Repeat = 1
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	v := &verifier{dyn: dyn, opts: opts}
	app, err := v.application(ctx)
	if err != nil {
		return nil, err
	}
	if err := Preconditions(app); err != nil {
		return nil, err
	}
	targets, err := ChooseTargets(app)
	if err != nil {
		return nil, err
	}
	rep := &Report{App: opts.App, OK: true}
	for _, kind := range opts.Kinds {
		for range opts.Repeat {
			if err := v.waitSynced(ctx); err != nil {
				return rep, err
			}
			var c Check
			switch kind {
			case Scale:
				c = v.scale(ctx, targets.Deployment)
			case Image:
				c = v.image(ctx, targets.Deployment)
			case DeleteService:
				if targets.Service.IsZero() {
					c = Check{Kind: kind, Error: "the app manages no Service"}
				} else {
					c = v.deleteService(ctx, targets.Service)
				}
			default:
				return rep, fmt.Errorf("unknown drift kind %q (want one of %v)", kind, AllKinds)
			}
			v.report(c)
			rep.Checks = append(rep.Checks, c)
			if !c.Healed {
				rep.OK = false
			}
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	return rep, nil
}

// Preconditions: an app must heal itself and be in sync for a drift to be
// meaningful.
func Preconditions(app *v1alpha1.Application) error {
	p := app.Spec.SyncPolicy
	if p == nil || p.Automated == nil || !p.Automated.SelfHeal {
		return fmt.Errorf("Application %s does not have syncPolicy.automated.selfHeal: true, so Argo CD will not undo drift; enable it in Git first", app.Name)
	}
	if p.Automated.Enabled != nil && !*p.Automated.Enabled {
		return fmt.Errorf("Application %s has automated sync disabled (syncPolicy.automated.enabled: false)", app.Name)
	}
	return nil
}

type verifier struct {
	dyn  dynamic.Interface
	opts Options
}

func (v *verifier) application(ctx context.Context) (*v1alpha1.Application, error) {
	u, err := v.dyn.Resource(appstatus.ApplicationGVR).Namespace(v.opts.Namespace).Get(ctx, v.opts.App, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read Application %s/%s: %w", v.opts.Namespace, v.opts.App, err)
	}
	var app v1alpha1.Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app); err != nil {
		return nil, fmt.Errorf("Application %s: %w", v.opts.App, err)
	}
	return &app, nil
}

// waitSynced waits (up to Timeout) for the app to be Synced with no sync
// running, so one drift's healing does not overlap the next drift.
func (v *verifier) waitSynced(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, v.opts.PollInterval, v.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		app, err := v.application(ctx)
		if err != nil {
			return false, err
		}
		last = string(app.Status.Sync.Status)
		running := app.Status.OperationState != nil && app.Status.OperationState.Phase == "Running"
		return app.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && !running, nil
	})
	if err != nil {
		return fmt.Errorf("Application %s is not Synced (%s) after %s; a drift check needs a synced app (tug wait %s): %w", v.opts.App, last, v.opts.Timeout, v.opts.App, err)
	}
	return nil
}

func (v *verifier) deployments(ns string) dynamic.ResourceInterface {
	return v.dyn.Resource(deploymentGVR).Namespace(ns)
}

func (v *verifier) scale(ctx context.Context, ref Ref) Check {
	c := Check{Kind: Scale, Target: "Deployment/" + ref.String()}
	dep, err := v.deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		c.Error = err.Error()
		return c
	}
	p := planScale(dep)
	c.Change = fmt.Sprintf("replicas %d → %d", p.From, p.To)
	return v.run(ctx, c,
		func(ctx context.Context) error { return v.patch(ctx, ref, types.MergePatchType, p.Drift) },
		func(ctx context.Context) (bool, error) {
			live, err := v.deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			return err == nil && healedScale(p, live), ignoreTransient(err)
		},
		func(ctx context.Context) error { return v.patch(ctx, ref, types.MergePatchType, p.Undo) })
}

func (v *verifier) image(ctx context.Context, ref Ref) Check {
	c := Check{Kind: Image, Target: "Deployment/" + ref.String()}
	dep, err := v.deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		c.Error = err.Error()
		return c
	}
	p, err := planImage(dep)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Change = fmt.Sprintf("container %s image %s → %s", p.Container, p.From, p.To)
	return v.run(ctx, c,
		func(ctx context.Context) error { return v.patch(ctx, ref, types.StrategicMergePatchType, p.Drift) },
		func(ctx context.Context) (bool, error) {
			live, err := v.deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			return err == nil && containerImage(live, p.Container) == p.From, ignoreTransient(err)
		},
		func(ctx context.Context) error { return v.patch(ctx, ref, types.StrategicMergePatchType, p.Undo) })
}

func (v *verifier) deleteService(ctx context.Context, ref Ref) Check {
	c := Check{Kind: DeleteService, Target: "Service/" + ref.String(), Change: "deleted"}
	svcs := v.dyn.Resource(serviceGVR).Namespace(ref.Namespace)
	orig, err := svcs.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		c.Error = err.Error()
		return c
	}
	uid := orig.GetUID()
	return v.run(ctx, c,
		func(ctx context.Context) error {
			return svcs.Delete(ctx, ref.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		},
		func(ctx context.Context) (bool, error) {
			live, err := svcs.Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil && live.GetUID() != uid && live.GetDeletionTimestamp() == nil, ignoreTransient(err)
		},
		func(ctx context.Context) error {
			_, err := svcs.Create(ctx, recreatable(orig), metav1.CreateOptions{FieldManager: fieldManager})
			if apierrors.IsAlreadyExists(err) {
				return nil // Argo CD got there after all
			}
			return err
		})
}

// run causes a drift, times the healing and restores on any failure. The
// restore runs on a context of its own so an interrupted or timed-out check
// still cleans up.
func (v *verifier) run(ctx context.Context, c Check, cause func(context.Context) error, healed func(context.Context) (bool, error), restore func(context.Context) error) Check {
	fmt.Fprintf(v.opts.Progress, "%s %s: %s …\n", c.Kind, c.Target, c.Change)
	if err := cause(ctx); err != nil {
		c.Error = "cause drift: " + err.Error()
		return c
	}
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, v.opts.PollInterval, v.opts.Timeout, false, healed)
	if err == nil {
		c.Healed, c.Seconds = true, time.Since(start).Seconds()
		return c
	}
	c.Error = fmt.Sprintf("not healed by Argo CD within %s", v.opts.Timeout)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if done, _ := healed(rctx); done {
		return c // healed between the last poll and now: nothing to undo
	}
	if rerr := restore(rctx); rerr != nil {
		c.Error += "; RESTORE FAILED, fix by hand: " + rerr.Error()
		return c
	}
	c.RestoredByTug = true
	return c
}

func (v *verifier) patch(ctx context.Context, ref Ref, pt types.PatchType, body []byte) error {
	_, err := v.deployments(ref.Namespace).Patch(ctx, ref.Name, pt, body, metav1.PatchOptions{FieldManager: fieldManager})
	return err
}

func (v *verifier) report(c Check) {
	switch {
	case c.Healed:
		fmt.Fprintf(v.opts.Progress, "  healed by Argo CD in %.2fs\n", c.Seconds)
	case c.RestoredByTug:
		fmt.Fprintf(v.opts.Progress, "  NOT healed: %s (tug restored it)\n", c.Error)
	default:
		fmt.Fprintf(v.opts.Progress, "  NOT healed: %s\n", c.Error)
	}
}

// ignoreTransient keeps polling through read errors other than a cancelled
// context: a flaky read is not a verdict.
func ignoreTransient(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// WriteTable prints a report.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DRIFT\tTARGET\tCHANGE\tHEALED\tSECONDS")
	for _, c := range r.Checks {
		healed, secs := "yes", fmt.Sprintf("%.2f", c.Seconds)
		if !c.Healed {
			healed, secs = "NO", "-"
			if c.RestoredByTug {
				healed = "NO (restored by tug)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Target, c.Change, healed, secs)
	}
	return tw.Flush()
}
