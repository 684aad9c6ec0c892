package sandbox

// cleanup is a stack of undo steps for a multi-step setup: a failure at step N runs the undos of
// steps N-1..1 in reverse order; success calls release and keeps everything (gvisor's pkg/cleanup).
type cleanup struct {
	fns []func()
}

// add pushes the undo of a step that just succeeded.
func (c *cleanup) add(fn func()) { c.fns = append(c.fns, fn) }

// run undoes every recorded step, newest first. It is a no-op after release.
func (c *cleanup) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// release forgets the undo steps: the setup succeeded.
func (c *cleanup) release() { c.fns = nil }

// async starts fn on a goroutine of its own and returns a function that waits for its result
// (any number of times): work a setup needs later, begun where its inputs are known.
func async[T any](fn func() (T, error)) func() (T, error) {
	var v T
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = fn()
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}
