//go:build !linux

package password

// lowerPriority does nothing where threads have no priority of their own
// that rolegate knows how to set.
func lowerPriority() {}
