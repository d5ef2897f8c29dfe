// Package embedded is the default store: one bbolt file in the data
// directory, no server to run. Writes from all goroutines go through one
// writer that commits them in shared transactions (group commit), because
// each bbolt commit costs an fsync.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/fanout"
)

// FileName is the store file inside the data directory.
const FileName = "scrapedefense.db"

// PathIn returns the store file path for a data directory.
func PathIn(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Options tune the embedded store. The zero value gives the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file before failing with store.ErrLocked. Default 1 s.
	LockTimeout time.Duration
	// MaxAuditEntries caps the audit log; the oldest entries are dropped.
	// Default 100 000.
	MaxAuditEntries int
	// MaxDecisions caps the number of stored decisions: every edge holds
	// them all in memory. PutDecision of a new key beyond it fails with
	// store.ErrFull. Default 1 000 000.
	MaxDecisions int
	// WatchBuffer is the number of changes queued per watcher before it is
	// told to resync. Default 1024.
	WatchBuffer int
	// JanitorInterval is how often expired KV entries and counters are
	// deleted. Default 30 s.
	JanitorInterval time.Duration
	// JanitorBatch bounds the keys deleted per janitor transaction, so that
	// a mass expiry does not stall writers. Default 1000.
	JanitorBatch int
	// MaxBatch bounds the writes committed in one transaction. Default 512.
	MaxBatch int
	// QueueCapacity caps the messages each queue holds, leased or not;
	// Enqueue beyond it fails with store.ErrFull. Default 1 000 000.
	QueueCapacity int
	// MaxHistoryKeys caps the keys History holds (each up to
	// store.MaxHistoryPerKey records); the keys least recently appended to
	// are evicted. Default 100 000.
	MaxHistoryKeys int
	// NoSync skips fsync on commit: a crash can lose recent writes or
	// corrupt the file. For tests and benchmarks only.
	NoSync bool
	// Logger receives warnings (corrupt records, janitor failures).
	// Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.MaxAuditEntries <= 0 {
		o.MaxAuditEntries = 100_000
	}
	if o.MaxDecisions <= 0 {
		o.MaxDecisions = 1_000_000
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = fanout.DefaultBuffer
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = 30 * time.Second
	}
	if o.JanitorBatch <= 0 {
		o.JanitorBatch = 1000
	}
	if o.QueueCapacity <= 0 {
		o.QueueCapacity = 1_000_000
	}
	if o.MaxHistoryKeys <= 0 {
		o.MaxHistoryKeys = 100_000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Store is the embedded implementation of store.Store.
type Store struct {
	db   *bolt.DB
	path string
	opts Options
	log  *slog.Logger
	hub  *fanout.Hub

	// mu orders Close against writers handing ops to the writer loop:
	// senders hold it for reading, Close for writing, so that the writes
	// channel is closed only when nobody can send on it.
	mu       sync.RWMutex
	closed   atomic.Bool
	writes   chan *writeOp
	writerWG sync.WaitGroup

	stopJanitor chan struct{}
	janitorWG   sync.WaitGroup
	// closing is closed by Close to wake waiting Dequeue calls.
	closing chan struct{}

	queuesMu sync.Mutex
	queues   map[string]*queueState // leases and wake-ups; bounded by store.MaxQueues

	corrupt          atomic.Int64
	commits          atomic.Int64
	writesDone       atomic.Int64
	historyEvictions atomic.Int64

	healthMu    sync.Mutex
	healthAt    time.Time
	healthCache store.Health
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path (see PathIn). If another
// process holds the file, Open fails after Options.LockTimeout with an error
// wrapping store.ErrLocked.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.LockTimeout,
		NoSync:         opts.NoSync,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (waited %v; is a scrapedefense server running?)", path, store.ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := initialize(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db:          db,
		path:        path,
		opts:        opts,
		log:         opts.Logger.With("component", "store", "backend", "embedded"),
		hub:         fanout.New(opts.WatchBuffer),
		writes:      make(chan *writeOp, opts.MaxBatch),
		stopJanitor: make(chan struct{}),
		closing:     make(chan struct{}),
		queues:      make(map[string]*queueState),
	}
	s.writerWG.Add(1)
	go s.writeLoop()
	if err := s.loadQueues(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.janitorWG.Add(1)
	go s.janitorLoop()
	return s, nil
}

// initialize creates the buckets and checks the schema version.
func initialize(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if raw := meta.Get(metaSchema); raw != nil {
			v, ok := decodeUint(raw)
			if !ok {
				return fmt.Errorf("%w: schema version", store.ErrCorrupt)
			}
			if v > schemaVersion {
				return fmt.Errorf("file has schema version %d, this binary understands up to %d: upgrade scrapedefense", v, schemaVersion)
			}
		}
		if err := meta.Put(metaSchema, encodeUint(schemaVersion)); err != nil {
			return err
		}
		for _, cnt := range []struct{ key, bucket []byte }{
			{metaAuditCount, bucketAudit},
			{metaDecisionCount, bucketDecisions},
			{metaHistoryKeys, bucketHistoryKeys},
			{metaHistoryRecords, bucketHistory},
		} {
			if _, ok := decodeUint(meta.Get(cnt.key)); ok {
				continue
			}
			// Missing or damaged: recount once.
			n := uint64(tx.Bucket(cnt.bucket).Stats().KeyN)
			if err := meta.Put(cnt.key, encodeUint(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// addCount adjusts a count kept in the meta bucket and returns the new value.
func addCount(tx *bolt.Tx, key []byte, delta int64) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	n, _ := decodeUint(meta.Get(key))
	switch {
	case delta < 0 && uint64(-delta) > n:
		n = 0
	default:
		n = uint64(int64(n) + delta)
	}
	return n, meta.Put(key, encodeUint(n))
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Stats are counters since Open, for metrics.
type Stats struct {
	Commits          int64 // write transactions committed
	Writes           int64 // write operations in them: Writes/Commits is the group-commit factor
	CorruptRecords   int64 // undecodable records skipped by reads
	HistoryEvictions int64 // history keys evicted to stay within MaxHistoryKeys
}

// Stats returns counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:          s.commits.Load(),
		Writes:           s.writesDone.Load(),
		CorruptRecords:   s.corrupt.Load(),
		HistoryEvictions: s.historyEvictions.Load(),
	}
}

// Close stops the janitor, commits queued writes, ends every watch and
// closes the file. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	close(s.writes)
	close(s.closing)
	s.mu.Unlock()

	close(s.stopJanitor)
	s.janitorWG.Wait()
	s.writerWG.Wait()
	s.hub.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// noteCorrupt counts and logs a record that could not be decoded.
func (s *Store) noteCorrupt(bucket []byte, key []byte, err error) {
	s.corrupt.Add(1)
	s.log.Warn("skipping corrupt record", "bucket", string(bucket), "key", fmt.Sprintf("%q", key), "err", err)
}

// healthCacheFor bounds how often Health walks the file to count keys.
const healthCacheFor = 5 * time.Second

// Health reports whether the file is readable, how many records it holds
// and its size. Key counts are cached for a few seconds because counting
// walks every page.
func (s *Store) Health(ctx context.Context) store.Health {
	h := store.Health{Backend: "embedded"}
	var queues []string // "name:length", at most store.MaxQueues
	if s.closed.Load() {
		h.Detail = store.ErrClosed.Error()
		return h
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if !s.healthAt.IsZero() && time.Since(s.healthAt) < healthCacheFor {
		return s.healthCache
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		for _, name := range dataBuckets {
			h.Keys += int64(tx.Bucket(name).Stats().KeyN)
		}
		historyRecords, _ := decodeUint(tx.Bucket(bucketMeta).Get(metaHistoryRecords))
		h.Keys += int64(historyRecords)
		queues = queues[:0]
		err := tx.Bucket(bucketQueueLen).ForEach(func(k, v []byte) error {
			n, _ := decodeUint(v)
			h.Keys += int64(n)
			queues = append(queues, fmt.Sprintf("%s:%d", k, n))
			return nil
		})
		h.SizeBytes = tx.Size()
		return err
	})
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	h.OK = true
	h.Detail = fmt.Sprintf("corrupt_records=%d watchers=%d history_evictions=%d queues=%s",
		s.corrupt.Load(), s.hub.Watchers(), s.historyEvictions.Load(), strings.Join(queues, ","))
	s.healthAt, s.healthCache = time.Now(), h
	return h
}
