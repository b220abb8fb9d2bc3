package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads the database pool's statistics at each scrape.
type poolCollector struct {
	pool *pgxpool.Pool

	acquired, idle, total, constructing, max          *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires, canceled *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("rolegate_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:           pool,
		acquired:       d("acquired_connections", "Database connections in use now."),
		idle:           d("idle_connections", "Database connections idle in the pool now."),
		total:          d("total_connections", "Database connections open now: acquired, idle and being made."),
		constructing:   d("constructing_connections", "Database connections being made now."),
		max:            d("max_connections", "The most database connections the pool opens."),
		acquires:       d("acquires_total", "Connections taken from the pool."),
		acquireSeconds: d("acquire_duration_seconds_total", "Time spent waiting for a connection from the pool."),
		emptyAcquires:  d("empty_acquires_total", "Connections taken from the pool when none was idle, so that the caller waited for one."),
		canceled:       d("canceled_acquires_total", "Waits for a connection from the pool that ended with the caller's context."),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.constructing, c.max, c.acquires, c.acquireSeconds, c.emptyAcquires, c.canceled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.constructing, float64(s.ConstructingConns()))
	gauge(c.max, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.canceled, float64(s.CanceledAcquireCount()))
}
