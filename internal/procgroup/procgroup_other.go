//go:build !unix

package procgroup

import "os/exec"

// Without Unix process groups, cancelling kills the command alone (exec's
// default) and its children end with their pipes.
func own(*exec.Cmd) {}

func kill(int) {}
