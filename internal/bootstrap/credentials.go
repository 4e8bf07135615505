package bootstrap

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"github.com/argoproj/argo-cd/v3/util/password"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Keys of argocd-secret, as Argo CD's util/settings (accounts.go, settings.go)
// reads them in v3.2.
const (
	KeyServerSecret     = "server.secretkey"
	KeyOperatorPassword = "accounts." + OperatorAccount + ".password"
	KeyOperatorMtime    = "accounts." + OperatorAccount + ".passwordMtime"
	KeyDeployerTokens   = "accounts." + DeployerAccount + ".tokens"
	// KeyWebhookSecret is the shared secret argocd-server checks a Gitea
	// or Gogs push webhook against (util/webhook: the X-Gogs-Event
	// header selects the Gogs parser, which verifies X-Gogs-Signature,
	// the HMAC-SHA256 of the body; Gitea sends both headers).
	KeyWebhookSecret = "webhook.gogs.secret"
)

// Keys of the tug-credentials Secret: the only place plaintext credentials
// live.
const (
	CredOperatorPassword = "operator-password"
	CredDeployerToken    = "deployer-token"
	// CredWebhookSecret is the forge webhook's secret, to paste into the
	// forge's webhook settings (argocd-secret holds the same value).
	CredWebhookSecret = "forge-webhook-secret"
)

// Account names; infra/argocd/patches/argocd-cm.yaml declares them
// (accounts.operator: login, accounts.deployer: apiKey).
const (
	OperatorAccount = "operator"
	DeployerAccount = "deployer"
)

// tokenIssuer is the JWT issuer argocd-server sets and expects
// (util/session.SessionManagerClaimsIssuer).
const tokenIssuer = "argocd"

// Token is one entry of accounts.<name>.tokens, shaped like Argo CD's
// settings.Token so argocd-server and `argocd account get` read it.
type Token struct {
	ID        string `json:"id"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp,omitempty"`
}

// Generator supplies randomness and time; the zero value uses crypto/rand
// and the wall clock.
type Generator struct {
	Rand io.Reader
	Now  func() time.Time
}

func (g Generator) rand() io.Reader {
	if g.Rand != nil {
		return g.Rand
	}
	return rand.Reader
}

func (g Generator) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

// CredentialPlan says what to write so that Argo CD's secret and
// tug-credentials agree. Empty maps mean nothing to change.
type CredentialPlan struct {
	// ArgoCDSecret holds the argocd-secret keys to set (merged, other keys
	// are kept).
	ArgoCDSecret map[string]string
	// TugSecret is the full desired content of tug-credentials, or nil when
	// it is already right.
	TugSecret map[string]string
	// Actions describe each change for the plan/progress output (no values).
	Actions []string
}

// Changed reports whether the plan writes anything.
func (p CredentialPlan) Changed() bool { return len(p.ArgoCDSecret) > 0 || p.TugSecret != nil }

// PlanCredentials compares the live argocd-secret and tug-credentials data
// (either may be empty) and decides what to generate. Existing credentials
// are never replaced while they still work: a second run plans nothing.
func PlanCredentials(argocd, tug map[string][]byte, g Generator) (CredentialPlan, error) {
	plan := CredentialPlan{ArgoCDSecret: map[string]string{}}
	wantTug := map[string]string{}
	for k, v := range tug {
		wantTug[k] = string(v)
	}

	// The JWT signing key. argocd-server generates one at start if missing;
	// we need it first to sign the deployer token.
	key := string(argocd[KeyServerSecret])
	if key == "" {
		b := make([]byte, 32)
		if _, err := io.ReadFull(g.rand(), b); err != nil {
			return plan, fmt.Errorf("generate %s: %w", KeyServerSecret, err)
		}
		key = base64.StdEncoding.EncodeToString(b) // as Argo CD's util.MakeSignature
		plan.ArgoCDSecret[KeyServerSecret] = key
		plan.Actions = append(plan.Actions, "generate server.secretkey (JWT signing key) in Secret/argocd/argocd-secret")
	}

	if err := planOperator(&plan, argocd, wantTug, g); err != nil {
		return plan, err
	}
	if err := planDeployer(&plan, argocd, wantTug, key, g); err != nil {
		return plan, err
	}
	if err := planWebhook(&plan, argocd, wantTug, g); err != nil {
		return plan, err
	}

	if !sameStrings(wantTug, tug) {
		plan.TugSecret = wantTug
	}
	return plan, nil
}

func planOperator(plan *CredentialPlan, argocd map[string][]byte, wantTug map[string]string, g Generator) error {
	hash := string(argocd[KeyOperatorPassword])
	plain := wantTug[CredOperatorPassword]
	switch {
	case hash != "" && plain != "":
		if ok, _ := password.VerifyPassword(plain, hash); ok {
			return nil
		}
		// The password was changed through Argo CD: the hash is the truth and
		// our copy is stale. Drop it rather than keep a wrong secret.
		delete(wantTug, CredOperatorPassword)
		plan.Actions = append(plan.Actions, "operator password was changed in Argo CD: drop the stale copy from tug-credentials")
		return nil
	case hash != "":
		return nil // set outside tug (e.g. `argocd account update-password`): leave it
	case plain == "":
		p, err := randomPassword(g.rand(), 24)
		if err != nil {
			return fmt.Errorf("generate operator password: %w", err)
		}
		plain = p
		wantTug[CredOperatorPassword] = p
		plan.Actions = append(plan.Actions, "generate the operator password (bcrypt hash in argocd-secret, plaintext in Secret/argocd/tug-credentials)")
	default:
		plan.Actions = append(plan.Actions, "restore the operator password hash in argocd-secret from tug-credentials")
	}
	h, err := password.HashPassword(plain)
	if err != nil {
		return fmt.Errorf("hash operator password: %w", err)
	}
	plan.ArgoCDSecret[KeyOperatorPassword] = h
	plan.ArgoCDSecret[KeyOperatorMtime] = g.now().Format(time.RFC3339)
	return nil
}

func planDeployer(plan *CredentialPlan, argocd map[string][]byte, wantTug map[string]string, key string, g Generator) error {
	var tokens []Token
	if raw := argocd[KeyDeployerTokens]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &tokens); err != nil {
			return fmt.Errorf("argocd-secret %s is not a JSON token list (fix or delete the key): %w", KeyDeployerTokens, err)
		}
	}
	if tok := wantTug[CredDeployerToken]; tok != "" {
		claims, err := VerifyToken(tok, []byte(key))
		if err == nil && claims.Subject == DeployerAccount+":apiKey" {
			if slices.ContainsFunc(tokens, func(t Token) bool { return t.ID == claims.ID }) {
				return nil
			}
			// Signed by the current key but unknown to Argo CD (argocd-secret
			// was recreated): register it again instead of minting another.
			tokens = append(tokens, Token{ID: claims.ID, IssuedAt: claims.IssuedAt.Unix()})
			return setTokens(plan, tokens, "register the existing deployer token in argocd-secret again")
		}
		// Signed with another key or revoked: it cannot work any more.
	}
	tok, id, iat, err := SignToken([]byte(key), DeployerAccount+":apiKey", g)
	if err != nil {
		return err
	}
	wantTug[CredDeployerToken] = tok
	tokens = append(tokens, Token{ID: id, IssuedAt: iat.Unix()})
	return setTokens(plan, tokens, "generate a deployer API token (id in argocd-secret, token in Secret/argocd/tug-credentials)")
}

// planWebhook makes argocd-secret and tug-credentials hold the same forge
// webhook secret: one set in argocd-secret by hand wins (copied), one
// only in tug-credentials is restored, and none is generated.
func planWebhook(plan *CredentialPlan, argocd map[string][]byte, wantTug map[string]string, g Generator) error {
	live, copied := string(argocd[KeyWebhookSecret]), wantTug[CredWebhookSecret]
	switch {
	case live != "" && live == copied:
		return nil
	case live != "":
		wantTug[CredWebhookSecret] = live
		plan.Actions = append(plan.Actions, "copy the forge webhook secret set in argocd-secret into tug-credentials")
		return nil
	case copied != "":
		plan.Actions = append(plan.Actions, "restore the forge webhook secret ("+KeyWebhookSecret+") in argocd-secret from tug-credentials")
	default:
		b := make([]byte, 32)
		if _, err := io.ReadFull(g.rand(), b); err != nil {
			return fmt.Errorf("generate the forge webhook secret: %w", err)
		}
		copied = hex.EncodeToString(b)
		wantTug[CredWebhookSecret] = copied
		plan.Actions = append(plan.Actions, "generate the forge webhook secret ("+KeyWebhookSecret+" in argocd-secret, "+CredWebhookSecret+" in Secret/argocd/tug-credentials)")
	}
	plan.ArgoCDSecret[KeyWebhookSecret] = copied
	return nil
}

func setTokens(plan *CredentialPlan, tokens []Token, action string) error {
	b, err := json.Marshal(tokens)
	if err != nil {
		return err
	}
	plan.ArgoCDSecret[KeyDeployerTokens] = string(b)
	plan.Actions = append(plan.Actions, action)
	return nil
}

// SignToken mints an API token the way argocd-server's account service does
// (server/account CreateToken → util/session SessionManager.Create): HS256
// over server.secretkey, subject "<account>:apiKey", a random jti that must
// also be listed in accounts.<account>.tokens, no expiry.
func SignToken(key []byte, subject string, g Generator) (token, id string, issued time.Time, err error) {
	u, err := uuid.NewRandomFromReader(g.rand())
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	now := g.now().Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Issuer:    tokenIssuer,
		Subject:   subject,
		ID:        u.String(),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, u.String(), now, nil
}

// VerifyToken checks an Argo CD API token's signature against key and
// returns its claims.
func VerifyToken(token string, key []byte) (*jwt.RegisteredClaims, error) {
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return key, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(tokenIssuer))
	if err != nil {
		return nil, err
	}
	if claims.IssuedAt == nil || claims.ID == "" {
		return nil, errors.New("token has no iat or jti")
	}
	return claims, nil
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

func randomPassword(r io.Reader, n int) (string, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range out {
		k, err := rand.Int(r, max)
		if err != nil {
			return "", err
		}
		out[i] = passwordAlphabet[k.Int64()]
	}
	return string(out), nil
}

func sameStrings(a map[string]string, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || string(bv) != v {
			return false
		}
	}
	return true
}
