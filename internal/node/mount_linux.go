package node

import "syscall"

// detachMount lazily unmounts m: a mount still in use is detached now and
// released when its last user goes.
func detachMount(m string) { _ = syscall.Unmount(m, syscall.MNT_DETACH) }
