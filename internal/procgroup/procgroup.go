// Package procgroup runs a command and everything it starts as one group,
// so that cancelling the command stops its children too: the go command's
// compiler and linker, yarn's node processes.
package procgroup

import (
	"os/exec"
	"time"
)

// waitDelay bounds how long Wait waits for the output pipes after the
// group was killed.
const waitDelay = 5 * time.Second

// Own makes cmd the leader of a process group of its own, killed as a whole
// when cmd's context ends. Call it before cmd.Start.
func Own(cmd *exec.Cmd) {
	own(cmd)
	cmd.WaitDelay = waitDelay
}

// Kill kills whatever is left of the group of cmd, which Own set up, once
// cmd has ended: a child that outlived its parent.
func Kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		kill(cmd.Process.Pid)
	}
}
