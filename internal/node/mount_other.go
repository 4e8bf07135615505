//go:build !linux

package node

// detachMount does nothing where a real node cannot run (Linux only).
func detachMount(string) {}
