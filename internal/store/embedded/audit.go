package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// maxTrimPerAppend bounds how many old entries one append drops, so that
// lowering MaxAuditEntries on a big log converges over several appends
// instead of stalling one.
const maxTrimPerAppend = 64

// AppendAudit implements store.Audit. When the log holds more than
// Options.MaxAuditEntries, the oldest entries are dropped.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if err := store.CheckAuditEntry(e); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	limit := uint64(s.opts.MaxAuditEntries)
	return s.update(ctx, func(t *txn) error {
		b, meta := t.Bucket(bucketAudit), t.Bucket(bucketMeta)
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		if err := b.Put(auditKey(e.Time, seq), data); err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		count, _ := decodeUint(meta.Get(metaAuditCount))
		count++
		c := b.Cursor()
		for i := 0; count > limit && i < maxTrimPerAppend; i++ {
			if k, _ := c.First(); k == nil {
				break
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("trim audit: %w", err)
			}
			count--
		}
		return meta.Put(metaAuditCount, encodeUint(count))
	})
}

// ListAudit implements store.Audit. Entries are kept in time order, so
// since is a seek, not a scan.
func (s *Store) ListAudit(ctx context.Context, since time.Time, limit int) ([]store.AuditEntry, error) {
	limit = store.AuditLimit(limit)
	var out []store.AuditEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(auditKey(since, 0)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeAudit(v)
			if err != nil {
				s.noteCorrupt(bucketAudit, k, err)
				continue
			}
			if e.Time.Before(since) {
				continue // only possible for times before the epoch
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
