// Command tug validates, bootstraps, promotes and verifies Argo CD GitOps
// repositories. This package only wires flags to the library packages under
// internal/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1 // findings, or the operation failed
	exitUsage   = 2 // misuse: bad flags or arguments
)

// errFindings marks a command that ran fine but found problems (exit 1, no extra message).
var errFindings = errors.New("findings")

// usageError wraps misuse so main exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int { return runWith(args, os.Stdout, os.Stderr) }

// runWith runs tug with args, the commands writing to stdout and stderr,
// and returns the exit code.
func runWith(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFindings):
		return exitFailure
	case errors.As(err, new(usageError)) || cobraUsage(err):
		fmt.Fprintln(stderr, "Error:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "Error:", err)
		return exitFailure
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tug",
		Short: "Validate, bootstrap, promote and verify Argo CD GitOps repositories",
		Long: `tug is a CLI for people who run Argo CD.

It validates a GitOps repository offline before merge, bootstraps Argo CD
securely onto a cluster, promotes a release from dev to prod by pull request,
waits until applications are Synced and Healthy at a commit, and proves
self-heal by causing drift. "tug lab up" runs a real Kubernetes control plane
and Argo CD as local processes, with no container engine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCmd())
	root.AddCommand(newValidateCmd())
	root.AddCommand(newDiffCmd())
	root.AddCommand(newLabCmd())
	root.AddCommand(newReleaseCmd())
	root.AddCommand(newPromoteCmd())
	root.AddCommand(newBootstrapCmd())
	root.AddCommand(newStatusCmd())
	root.AddCommand(newWaitCmd())
	root.AddCommand(newVerifyCmd())
	return root
}

// cobraUsage recognises the misuse errors cobra itself returns (unknown
// command, wrong number of arguments), which carry no type to match.
func cobraUsage(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command ", "accepts ", "requires at least ", "requires at most ", "invalid argument "} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
