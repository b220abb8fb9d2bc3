package mail

import "time"

// Backoff is the delay after the attempt-th failed attempt.
func (b *Outbox) Backoff(attempt int) time.Duration { return b.backoff(attempt) }

// ErrorText is the error text the outbox keeps.
var ErrorText = errorText

// Interval is d as a query's interval parameter.
var Interval = interval
