package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// purgeChunk bounds the decisions deleted in one transaction by
// PurgeExpiredDecisions.
const purgeChunk = 1000

// PutDecision implements store.Decisions.
func (s *Store) PutDecision(ctx context.Context, d decision.Decision) error {
	if err := store.CheckDecision(d); err != nil {
		return err
	}
	p, err := d.Prefix()
	if err != nil {
		return fmt.Errorf("%w: decision: %w", store.ErrInvalid, err)
	}
	d.SetPrefix(p) // store and publish the canonical form
	key := []byte(p.String())
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode decision: %w", err)
	}
	limit := uint64(s.opts.MaxDecisions)
	var full bool
	err = s.update(ctx, func(t *txn) error {
		full = false
		b := t.Bucket(bucketDecisions)
		if b.Get(key) == nil {
			n, _ := decodeUint(t.Bucket(bucketMeta).Get(metaDecisionCount))
			if n >= limit {
				full = true
				return nil
			}
			if _, err := addCount(t.Tx, metaDecisionCount, 1); err != nil {
				return err
			}
		}
		if err := b.Put(key, data); err != nil {
			return fmt.Errorf("put decision %s: %w", key, err)
		}
		t.emit(store.Change{Op: store.OpPut, Decision: d})
		return nil
	})
	if err == nil && full {
		err = fmt.Errorf("put decision %s: %w: %d decisions stored (limit)", key, store.ErrFull, limit)
	}
	return err
}

// DeleteDecision implements store.Decisions.
func (s *Store) DeleteDecision(ctx context.Context, key string) (bool, error) {
	k, err := store.DecisionKey(key)
	if err != nil {
		return false, err
	}
	var existed bool
	err = s.update(ctx, func(t *txn) error {
		existed = false
		b := t.Bucket(bucketDecisions)
		raw := b.Get([]byte(k))
		if raw == nil {
			return nil
		}
		// A corrupt record is removed too, and counts as existing.
		if d, err := decodeDecision(raw); err != nil || !d.Expired(time.Now()) {
			existed = true
		}
		if err := b.Delete([]byte(k)); err != nil {
			return fmt.Errorf("delete decision %s: %w", k, err)
		}
		if _, err := addCount(t.Tx, metaDecisionCount, -1); err != nil {
			return err
		}
		t.emit(deleted(k))
		return nil
	})
	if err != nil {
		return false, err // fn may still be running: do not read existed
	}
	return existed, nil
}

// GetDecision implements store.Decisions. A corrupt record is an error
// wrapping store.ErrCorrupt.
func (s *Store) GetDecision(ctx context.Context, key string) (decision.Decision, bool, error) {
	k, err := store.DecisionKey(key)
	if err != nil {
		return decision.Decision{}, false, err
	}
	var (
		d     decision.Decision
		found bool
	)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDecisions).Get([]byte(k))
		if raw == nil {
			return nil
		}
		var err error
		if d, err = decodeDecision(raw); err != nil {
			s.noteCorrupt(bucketDecisions, []byte(k), err)
			return err
		}
		found = !d.Expired(time.Now())
		return nil
	})
	if err != nil || !found {
		return decision.Decision{}, false, err
	}
	return d, true, nil
}

// ListDecisions implements store.Decisions. Corrupt records are skipped,
// logged and counted (see CorruptRecords).
func (s *Store) ListDecisions(ctx context.Context) ([]decision.Decision, error) {
	var out []decision.Decision
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := time.Now()
		return tx.Bucket(bucketDecisions).ForEach(func(k, v []byte) error {
			d, err := decodeDecision(v)
			if err != nil {
				s.noteCorrupt(bucketDecisions, k, err)
				return nil
			}
			if !d.Expired(now) {
				out = append(out, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WatchDecisions implements store.Decisions.
func (s *Store) WatchDecisions(ctx context.Context) (<-chan store.Change, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	return s.hub.Subscribe(ctx)
}

// PurgeExpiredDecisions implements store.Decisions. It finds candidates in
// a read transaction and deletes them in bounded write transactions,
// re-checking each one, since it may have been replaced meanwhile.
func (s *Store) PurgeExpiredDecisions(ctx context.Context, now time.Time) (int, error) {
	total := 0
	var after []byte // resume point, so a pass never rereads what it has seen
	for {
		var keys [][]byte
		err := s.view(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketDecisions).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(keys) < purgeChunk; k, v = c.Next() {
				if d, err := decodeDecision(v); err == nil && d.Expired(now) {
					keys = append(keys, append([]byte(nil), k...))
				}
				after = append(after[:0], k...)
			}
			if k == nil {
				after = nil
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if len(keys) > 0 {
			n := 0
			err = s.update(ctx, func(t *txn) error {
				n = 0
				b := t.Bucket(bucketDecisions)
				for _, k := range keys {
					d, err := decodeDecision(b.Get(k))
					if err != nil || !d.Expired(now) {
						continue
					}
					if err := b.Delete(k); err != nil {
						return fmt.Errorf("purge decision %s: %w", k, err)
					}
					t.emit(deleted(string(k)))
					n++
				}
				_, err := addCount(t.Tx, metaDecisionCount, -int64(n))
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
		}
		if after == nil {
			return total, nil
		}
	}
}

// deleted is the change published when the decision stored under key goes.
func deleted(key string) store.Change {
	var d decision.Decision
	if p, err := decision.ParsePrefix(key); err == nil {
		d.SetPrefix(p)
	} else {
		d.Value = key // a damaged key; watchers will find nothing to delete
	}
	return store.Change{Op: store.OpDelete, Decision: d}
}
