package lab

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"code.gitea.io/sdk/gitea"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/bootstrap"
)

// WebhookPath is where argocd-server takes forge webhooks.
const WebhookPath = "/api/webhook"

// webhookURL is argocd-server's webhook endpoint in this lab. Gitea
// trusts the lab's CA (superviseForge sets SSL_CERT_FILE).
func (l *Lab) webhookURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(l.ports.lookup("argocd-server/https")) + WebhookPath
}

// ensureWebhook points the forge repository's push webhook at
// argocd-server, as a real installation has it: Gitea signs each delivery
// with the secret bootstrap generated (argocd-secret webhook.gogs.secret,
// copied in tug-credentials), and Argo CD refreshes the Applications on
// that repository at once instead of at its next poll. A hook from an
// earlier start (argocd-server's port may have changed) is replaced.
func (l *Lab) ensureWebhook(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	s, err := cs.CoreV1().Secrets(bootstrap.Namespace).Get(ctx, bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read the forge webhook secret: %w", err)
	}
	secret := string(s.Data[bootstrap.CredWebhookSecret])
	if secret == "" {
		// A lab state from before bootstrap generated it: Argo CD polls.
		l.opts.Log.Warn("no forge webhook: tug-credentials has no " + bootstrap.CredWebhookSecret + "; Argo CD notices pushes at its poll ('tug lab down --delete' and 'tug lab up' start afresh)")
		return nil
	}
	c, err := l.forge.Client(ctx)
	if err != nil {
		return err
	}
	hooks, _, err := c.ListRepoHooks(ForgeOwner, ForgeRepo, gitea.ListHooksOptions{})
	if err != nil {
		return fmt.Errorf("forge: list webhooks: %w", err)
	}
	url := l.webhookURL()
	for _, h := range hooks {
		if !strings.HasSuffix(h.Config["url"], WebhookPath) {
			continue
		}
		if _, err := c.DeleteRepoHook(ForgeOwner, ForgeRepo, h.ID); err != nil {
			return fmt.Errorf("forge: delete the old webhook to %s: %w", h.Config["url"], err)
		}
	}
	_, _, err = c.CreateRepoHook(ForgeOwner, ForgeRepo, gitea.CreateHookOption{
		Type:   gitea.HookTypeGitea,
		Config: map[string]string{"url": url, "content_type": "json", "secret": secret},
		Events: []string{"push"}, BranchFilter: "*", Active: true,
	})
	if err != nil {
		return fmt.Errorf("forge: create the push webhook to %s: %w", url, err)
	}
	l.opts.Log.Info("forge push webhook points at argocd-server", "url", url)
	return nil
}
