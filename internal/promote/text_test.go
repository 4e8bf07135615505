package promote

import "testing"

func TestBranchName(t *testing.T) {
	cases := map[string]string{
		"0.2.0":          "promote/backend-prod-0.2.0",
		"v1.2.3+build.4": "promote/backend-prod-v1.2.3-build.4",
		"sha256:abc":     "promote/backend-prod-sha256-abc",
		"a..b":           "promote/backend-prod-a-b",
	}
	for tag, want := range cases {
		if got := branchName("promote", "backend", "prod", tag); got != want {
			t.Errorf("%s: %s, want %s", tag, got, want)
		}
	}
}
