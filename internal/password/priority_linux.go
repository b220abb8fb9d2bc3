package password

import "syscall"

// workerNice is the nice value of hashing threads: a thread at nice 10
// gets about a tenth of the CPU that one at nice 0 gets when both want it.
const workerNice = 10

// lowerPriority lowers the calling OS thread's scheduling priority; on
// Linux, PRIO_PROCESS with a thread id applies to that thread alone. A
// failure (a seccomp policy, say) leaves the priority as it was.
func lowerPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), workerNice)
}
