package promote

import (
	"context"
	"errors"
	"os"

	"github.com/tug-gitops/tug/internal/diff"
	"github.com/tug-gitops/tug/internal/repo"
)

// manifestDiff renders the --to environment before and after the edit with
// tug diff's code (Argo CD's normalization and Secret masking, one unified
// diff per resource). The file is restored afterwards; the commit writes it
// again. A render failure is reported in the PR, not fatal: the reviewer
// should see it.
func manifestDiff(ctx context.Context, res *Result, r *repo.Repo, to envApp, path string, orig, edited []byte) {
	err := func() error {
		before := diff.RenderApplication(ctx, r, to.App)
		if before.Err != "" {
			return errors.New(before.Err)
		}
		if err := os.WriteFile(path, edited, 0o644); err != nil {
			return err
		}
		after := diff.RenderApplication(ctx, r, to.App)
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			return err
		}
		if after.Err != "" {
			return errors.New(after.Err)
		}
		ad, err := diff.CompareApp(before, after)
		if err != nil {
			return err
		}
		res.ManifestDiff, res.manifests = ad.Unified(), ad
		return nil
	}()
	if err != nil {
		_ = os.WriteFile(path, orig, 0o644)
		res.RenderError = err.Error()
		res.Warnings = append(res.Warnings, "the chart could not be rendered: "+err.Error())
	}
}
