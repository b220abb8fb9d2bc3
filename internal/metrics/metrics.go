// Package metrics gives rolegate's Prometheus metrics: requests and their
// latency by operation id, logins by outcome, throttled requests, the
// password hashing pool, the cache of verified tokens, the database pool
// and the revocation feed, on a registry of its own.
//
// Requests are labelled by the spec's operation id (which the gate records
// through httplog.SetOperation), never by their path, so that the label set
// stays bounded: the spec's operations plus Unrouted. The metrics are
// served by Handler, which `rolegate serve` puts on a listener of its own
// (ROLEGATE_METRICS_ADDR), never on the API's.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/token"
)

// Unrouted is the operation label of requests that matched no operation
// of the spec: 404 and 405 from the router, and CORS preflights.
const Unrouted = "unrouted"

// LoginOperation is the operation id of the token endpoint, whose answers
// are counted as logins by outcome.
const LoginOperation = "createToken"

// The outcomes of logins (every grant of the token endpoint): success, an
// error code of RFC 6749 section 5.2, or one of these.
const (
	OutcomeSuccess     = "success"
	OutcomeThrottled   = "throttled"   // 429: too many attempts
	OutcomeUnavailable = "unavailable" // 503: the hashing pool is full, or the database is away
	OutcomeError       = "error"       // any other 5xx
)

// oauthCodes are the error codes a login may answer with (RFC 6749
// section 5.2); the outcome of a body with another is its status's.
var oauthCodes = []string{
	oauth.InvalidRequest, oauth.InvalidClient, oauth.InvalidGrant,
	oauth.UnauthorizedClient, oauth.UnsupportedGrantType, oauth.InvalidScope,
	oauth.MFARequired,
}

// Deps are what the metrics observe; a nil one is left out.
type Deps struct {
	// Operations are the spec's operation ids, the values of the operation
	// label besides Unrouted. An id recorded for a request that is not
	// among them counts as Unrouted.
	Operations []string
	// Pool is the database pool.
	Pool *pgxpool.Pool
	// Hasher is the password hashing pool.
	Hasher *password.Pool
	// Tokens holds the cache of verified tokens.
	Tokens *token.Manager
	// Revocations is the replica's revocation state and its feed.
	Revocations *revocation.List
}

// Metrics holds rolegate's collectors on a registry of its own. Its zero
// value is not usable: make one with New.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	ops      map[string]*opMetrics // read-only after New
	unrouted *opMetrics
	logins   map[string]prometheus.Counter // by outcome; read-only after New
	stepUps  *prometheus.CounterVec
}

// opMetrics are one operation's collectors, looked up once per request.
type opMetrics struct {
	name      string
	duration  prometheus.Observer
	throttled prometheus.Counter

	// byStatus maps a status code to its request counter. It is replaced
	// whole (under mu) when a status is first seen, so that counting
	// takes no lock: an operation answers with a handful of statuses.
	byStatus atomic.Pointer[map[int]prometheus.Counter]
	mu       sync.Mutex
}

// durationBuckets span a cached-token GET (well under 1 ms) to a PDF
// operation at its default timeout (30 s).
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New registers the collectors of d on a new registry.
func New(d Deps) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolegate_http_requests_total",
			Help: "HTTP requests answered, by operation id of the spec (unrouted: none matched) and status code.",
		}, []string{"operation", "status"}),
		ops:    make(map[string]*opMetrics, len(d.Operations)+1),
		logins: make(map[string]prometheus.Counter),
		stepUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolegate_stepups_required_total",
			Help: "Requests refused with 401 insufficient_user_authentication (x-acr, RFC 9470), by operation id.",
		}, []string{"operation"}),
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rolegate_http_request_duration_seconds",
		Help:    "Time from a request's arrival to its handler's return, by operation id.",
		Buckets: durationBuckets,
	}, []string{"operation"})
	throttled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rolegate_throttled_requests_total",
		Help: "Requests refused with 429 Too Many Requests, by operation id.",
	}, []string{"operation"})
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rolegate_logins_total",
		Help: "Answers of the token endpoint (every grant), by outcome: success, an RFC 6749 error code, throttled, unavailable or error.",
	}, []string{"outcome"})
	reg.MustRegister(m.requests, duration, throttled, logins, m.stepUps,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	for _, id := range append([]string{Unrouted}, d.Operations...) {
		o := &opMetrics{name: id, duration: duration.WithLabelValues(id), throttled: throttled.WithLabelValues(id)}
		o.byStatus.Store(&map[int]prometheus.Counter{})
		m.ops[id] = o
	}
	m.unrouted = m.ops[Unrouted]
	for _, outcome := range append([]string{OutcomeSuccess, OutcomeThrottled, OutcomeUnavailable, OutcomeError}, oauthCodes...) {
		m.logins[outcome] = logins.WithLabelValues(outcome)
	}

	if h := d.Hasher; h != nil {
		reg.MustRegister(
			gauge("rolegate_password_hash_workers", "Workers of the password hashing pool.", func() float64 { return float64(h.Workers()) }),
			gauge("rolegate_password_hash_workers_busy", "Workers of the password hashing pool running a hash now.", func() float64 { return float64(h.Busy()) }),
			gauge("rolegate_password_hash_queue_capacity", "Logins that may wait for a hashing worker; beyond them /token answers 503.", func() float64 { return float64(h.QueueSize()) }),
			gauge("rolegate_password_hash_queue_length", "Logins waiting for a hashing worker now.", func() float64 { return float64(h.Queued()) }),
		)
	}
	if t := d.Tokens; t != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "rolegate_token_cache_hits_total",
				Help: "Bearer tokens answered from the cache of verified tokens.",
			}, func() float64 { hits, _ := t.CacheStats(); return float64(hits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "rolegate_token_cache_misses_total",
				Help: "Bearer tokens not in the cache of verified tokens, verified in full.",
			}, func() float64 { _, misses := t.CacheStats(); return float64(misses) }),
		)
	}
	if l := d.Revocations; l != nil {
		reg.MustRegister(
			gauge("rolegate_revocation_feed_lag_seconds", "Time since the revocation state last caught up with the revocation log; revocations made on other replicas within it may not be seen yet.",
				func() float64 { return l.Lag().Seconds() }),
			gauge("rolegate_revocation_feed_up", "1 while the revocation feed follows the log, 0 while it is down (the replica is not ready then).",
				func() float64 {
					if l.Err() != nil {
						return 0
					}
					return 1
				}),
		)
	}
	if d.Pool != nil {
		reg.MustRegister(newPoolCollector(d.Pool))
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg, // counts its own errors
		ErrorHandling: promhttp.ContinueOnError,
	}))
	m.handler = mux
	return m
}

func gauge(name, help string, f func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}

// Registry returns the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// StepUp counts a step-up the gate asked of a request of operation.
func (m *Metrics) StepUp(operation string) {
	if _, ok := m.ops[operation]; !ok {
		operation = Unrouted
	}
	m.stepUps.WithLabelValues(operation).Inc()
}

// Handler serves the metrics in Prometheus's formats at GET /metrics, and
// 404 at any other path.
func (m *Metrics) Handler() http.Handler { return m.handler }

// operation returns the collectors of the operation id.
func (m *Metrics) operation(id string) *opMetrics {
	if o, ok := m.ops[id]; ok {
		return o
	}
	return m.unrouted
}

// requestsWith returns o's request counter for status.
func (m *Metrics) requestsWith(o *opMetrics, status int) prometheus.Counter {
	if c, ok := (*o.byStatus.Load())[status]; ok {
		return c
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.byStatus.Load()
	if c, ok := old[status]; ok {
		return c
	}
	c := m.requests.WithLabelValues(o.name, strconv.Itoa(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[status] = c
	o.byStatus.Store(&next)
	return c
}

// observe counts one answered request of the operation id.
func (m *Metrics) observe(id string, status int, elapsed time.Duration, body []byte) {
	o := m.operation(id)
	m.requestsWith(o, status).Inc()
	o.duration.Observe(elapsed.Seconds())
	if status == http.StatusTooManyRequests {
		o.throttled.Inc()
	}
	if o.name == LoginOperation {
		m.logins[loginOutcome(status, body)].Inc()
	}
}
