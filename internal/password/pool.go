package password

import (
	"context"
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs hashing and verification on a bounded set of worker goroutines
// with a bounded queue, so that a flood of logins cannot starve the rest of
// the API: a job that finds no free worker and no room in the queue is
// refused at once with ErrBusy. A Pool is safe for concurrent use.
type Pool struct {
	params Params
	dummy  string // argon2id hash of a random password, made with params

	// verify is Verify; tests replace it to observe the work done.
	verify func(hash, pw string, want Params) (ok, rehash bool, err error)

	mu      sync.RWMutex // guards closed and sending on jobs
	closed  bool
	jobs    chan *job
	wg      sync.WaitGroup
	workers int
	busy    atomic.Int64  // workers running a job
	maxWait time.Duration // MaxWait; tests shorten it
}

type job struct {
	ctx     context.Context
	fn      func()
	err     error // set by the worker before done is closed
	done    chan struct{}
	started atomic.Bool // set by the worker before it runs fn
	expired atomic.Bool // set by do when it stops waiting for a start
}

// QueuePerWorker is the default queue length per worker. A login waits in
// line rather than being refused while the queue has room, so a flood of
// logins that waits for its answers is slowed to the hashing rate instead
// of turning into a flood of cheap refusals that crowds out every other
// request; at about 25–50 ms a hash, the last in line waits about a second.
const QueuePerWorker = 32

// NewPool starts workers goroutines (<=0 means max(1, runtime.NumCPU()/2))
// with a queue of queue waiting jobs (<=0 means QueuePerWorker*workers),
// hashing with p.
// It precomputes once a dummy hash with p so that VerifyDummy costs what a
// real verification does. It panics if p is outside the bounds Verify accepts
// (a configuration error). Call Close to stop the workers.
func NewPool(workers, queue int, p Params) *Pool {
	if workers <= 0 {
		workers = max(1, runtime.NumCPU()/2)
	}
	if queue <= 0 {
		queue = QueuePerWorker * workers
	}
	dummy, err := Hash(rand.Text(), p)
	if err != nil {
		panic("password: NewPool: " + err.Error())
	}
	pool := &Pool{
		params:  p,
		dummy:   dummy,
		verify:  Verify,
		jobs:    make(chan *job, queue),
		workers: workers,
		maxWait: MaxWait,
	}
	pool.wg.Add(workers)
	for range workers {
		go pool.work()
	}
	return pool
}

func (p *Pool) work() {
	defer p.wg.Done()
	// Hashing is the one thing a flood of logins can make rolegate do
	// without end, so a worker runs on a thread of its own at a lower
	// scheduling priority. That covers only part of a hash: x/crypto/argon2
	// computes each segment on a goroutine of its own, which the runtime
	// runs on its ordinary threads (most of the CPU, measured); what bounds
	// a flood is the number of workers, each hash taking one CPU at a
	// time. The thread is never unlocked: it dies with the worker.
	runtime.LockOSThread()
	lowerPriority()
	for j := range p.jobs {
		if err := j.ctx.Err(); err != nil {
			// The caller gave up while the job was queued.
			j.err = err
		} else if j.started.Store(true); j.expired.Load() {
			// The caller stopped waiting for it to start (MaxWait).
			j.err = ErrBusy
		} else {
			p.busy.Add(1)
			j.fn()
			p.busy.Add(-1)
		}
		close(j.done)
	}
}

// MaxWait bounds how long a job waits in the queue for a worker: past it,
// it is refused with ErrBusy, as a job that finds the queue full is at once,
// so that a login under a flood is answered 503 with Retry-After within
// seconds rather than left waiting for as long as the client is willing to.
const MaxWait = 5 * time.Second

// do runs fn on a worker and waits for it. It returns ErrBusy at once if no
// worker is free and the queue is full, or if no worker has taken the job
// within MaxWait; ErrClosed if the Pool is closed; and ctx.Err() as soon as
// ctx is done (a job still queued then is skipped).
func (p *Pool) do(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, fn: fn, done: make(chan struct{})}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	select {
	case p.jobs <- j:
	default:
		p.mu.RUnlock()
		return ErrBusy
	}
	p.mu.RUnlock()
	wait := time.NewTimer(p.maxWait)
	defer wait.Stop()
	for {
		select {
		case <-j.done:
			return j.err
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			// Refused unless a worker has it already; a worker that takes
			// it from now on skips it.
			if j.expired.Store(true); !j.started.Load() {
				return ErrBusy
			}
		}
	}
}

// Hash is like the package's Hash with the Pool's Params, run on a worker. It
// returns ErrBusy at once when no worker is free and the queue is full,
// ErrClosed after Close, and ctx.Err() as soon as ctx is done.
func (p *Pool) Hash(ctx context.Context, pw string) (string, error) {
	var (
		hash string
		err  error
	)
	if perr := p.do(ctx, func() { hash, err = Hash(pw, p.params) }); perr != nil {
		return "", perr
	}
	return hash, err
}

// Verify is like the package's Verify with the Pool's Params as want, run on
// a worker. It returns ErrBusy at once when no worker is free and the queue
// is full, ErrClosed after Close, and ctx.Err() as soon as ctx is done.
func (p *Pool) Verify(ctx context.Context, hash, pw string) (ok, rehash bool, err error) {
	if perr := p.do(ctx, func() { ok, rehash, err = p.verify(hash, pw, p.params) }); perr != nil {
		return false, false, perr
	}
	return ok, rehash, err
}

// VerifyDummy does the work of a failed verification against a dummy hash and
// always reports false: call it for an unknown user, so that a login takes the
// same time whether or not the email exists. It returns nil once the work is
// done, or the error Verify would have returned for busy, closed or
// cancelled.
func (p *Pool) VerifyDummy(ctx context.Context, pw string) error {
	return p.do(ctx, func() { _, _, _ = p.verify(p.dummy, pw, p.params) })
}

// Saturated reports whether a job submitted now would be refused with
// ErrBusy: every worker busy and the queue full. It is a hint, for
// refusing early the work that would lead to a job.
func (p *Pool) Saturated() bool {
	return int(p.busy.Load()) >= p.workers && len(p.jobs) >= cap(p.jobs)
}

// Workers returns how many worker goroutines the Pool runs.
func (p *Pool) Workers() int { return p.workers }

// QueueSize returns how many jobs may wait for a worker before the Pool
// refuses more with ErrBusy.
func (p *Pool) QueueSize() int { return cap(p.jobs) }

// Busy returns how many workers are running a job now.
func (p *Pool) Busy() int { return int(p.busy.Load()) }

// Queued returns how many jobs are waiting for a worker now.
func (p *Pool) Queued() int { return len(p.jobs) }

// Close stops accepting jobs and stops the workers once the queued jobs are
// done (jobs whose ctx has ended are skipped); it waits for them to exit.
// Later calls return ErrClosed. Close may be called more than once.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.jobs)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
