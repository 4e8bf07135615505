package giteaserver

import (
	"strings"
	"testing"
)

func TestTokenInFindsTheTokenAmongGiteaOutput(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef01234567"
	for _, out := range []string{
		"2026/11/26 ... [W] Running as root\nNew user 'tug-admin' has been successfully created!\nAccess token was successfully created... " + tok + "\n",
		tok + "\n",
	} {
		got, other := tokenIn([]byte(out))
		if got != tok {
			t.Errorf("token %q from %q", got, out)
		}
		for _, line := range other {
			if strings.Contains(line, tok) {
				t.Errorf("the token leaked into the other lines: %q", line)
			}
		}
	}
	if got, other := tokenIn([]byte("warning: no token here\n")); got != "" || len(other) != 1 {
		t.Errorf("tokenIn = %q, %q", got, other)
	}
}
