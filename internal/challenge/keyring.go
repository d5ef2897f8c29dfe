package challenge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// KV keys of the shared keyring. Every instance over one store signs with
// the same current key and verifies with the same previous keys.
const (
	keyringKey       = "challenge/keyring"
	rotateLockPrefix = "challenge/keyring/rotate/"
	rotateLockTTL    = 10 * time.Minute
	maxKeys          = 16 // bounds a keyring that somebody filled by hand
)

// signingKey is one Ed25519 key of the keyring, and the record MAC key
// derived from the same seed.
type signingKey struct {
	id      keyID
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
	mac     *recordMAC
	created time.Time
}

func newSigningKey(seed []byte, created time.Time) (signingKey, error) {
	if len(seed) != ed25519.SeedSize {
		return signingKey{}, fmt.Errorf("ed25519 seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	k := signingKey{priv: priv, pub: pub, mac: newRecordMAC(seed), created: created}
	copy(k.id[:], sum[:keyIDLen])
	return k, nil
}

// keyring is an immutable set of keys: keys[0] signs, all verify. A new
// keyring replaces the old one atomically.
type keyring struct {
	keys []signingKey
}

func (r *keyring) signer() signingKey { return r.keys[0] }

func (r *keyring) lookup(id keyID) (ed25519.PublicKey, bool) {
	if k, ok := r.lookupKey(id); ok {
		return k.pub, true
	}
	return nil, false
}

func (r *keyring) lookupKey(id keyID) (*signingKey, bool) {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i], true
		}
	}
	return nil, false
}

// storedKeyring is the KV encoding of a keyring, newest key first.
type storedKeyring struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	Seed    string    `json:"seed"` // base64 Ed25519 seed
	Created time.Time `json:"created"`
}

func (s storedKeyring) decode() (*keyring, error) {
	if len(s.Keys) == 0 {
		return nil, errors.New("keyring has no keys")
	}
	if len(s.Keys) > maxKeys {
		s.Keys = s.Keys[:maxKeys]
	}
	r := &keyring{}
	for i, sk := range s.Keys {
		seed, err := base64.StdEncoding.DecodeString(sk.Seed)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		k, err := newSigningKey(seed, sk.Created)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func encodeKeyring(r *keyring) ([]byte, error) {
	var s storedKeyring
	for _, k := range r.keys {
		s.Keys = append(s.Keys, storedKey{
			Seed:    base64.StdEncoding.EncodeToString(k.priv.Seed()),
			Created: k.created.UTC(),
		})
	}
	return json.Marshal(s)
}

func generateKey(now time.Time) (signingKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return signingKey{}, fmt.Errorf("generate key: %w", err)
	}
	return newSigningKey(seed, now)
}

// loadKeyring reads the shared keyring, creating it if the store has none.
// SetNX makes creation safe when several instances start at once: one
// writes, the others read what it wrote.
func (s *Service) loadKeyring(ctx context.Context) (*keyring, error) {
	for range 3 {
		data, ok, err := s.kv.Get(ctx, keyringKey)
		if err != nil {
			return nil, fmt.Errorf("read keyring: %w", err)
		}
		if ok {
			var st storedKeyring
			if err := json.Unmarshal(data, &st); err != nil {
				return nil, fmt.Errorf("decode keyring: %w", err)
			}
			r, err := st.decode()
			if err != nil {
				return nil, fmt.Errorf("decode keyring: %w", err)
			}
			return r, nil
		}
		k, err := generateKey(s.now())
		if err != nil {
			return nil, err
		}
		r := &keyring{keys: []signingKey{k}}
		data, err = encodeKeyring(r)
		if err != nil {
			return nil, fmt.Errorf("encode keyring: %w", err)
		}
		won, err := s.kv.SetNX(ctx, keyringKey, data, 0)
		if err != nil {
			return nil, fmt.Errorf("create keyring: %w", err)
		}
		if won {
			s.logger.Info("challenge: generated signing key", "key_id", hex.EncodeToString(k.id[:]))
			return r, nil
		}
		// Another instance created it first: read theirs.
	}
	return nil, errors.New("keyring: store keeps losing it")
}

// maintainKeys reloads the shared keyring and rotates the signing key when
// it is older than KeyRotation. Only the instance that wins the rotation
// lock for the current key writes, so rotations do not race; a key that is
// no longer current stays for verification until every pass it could have
// signed has expired.
func (s *Service) maintainKeys(ctx context.Context) error {
	if s.staticKeys {
		return nil
	}
	r, err := s.loadKeyring(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	cur := r.signer()
	if s.cfg.KeyRotation > 0 && now.Sub(cur.created) >= s.cfg.KeyRotation {
		won, err := s.kv.SetNX(ctx, rotateLockPrefix+hex.EncodeToString(cur.id[:]), []byte("1"), rotateLockTTL)
		if err != nil {
			return fmt.Errorf("rotate keys: %w", err)
		}
		if won {
			k, err := generateKey(now)
			if err != nil {
				return err
			}
			next := &keyring{keys: append([]signingKey{k}, r.keys...)}
			next.prune(now, s.cfg.PassTTL)
			data, err := encodeKeyring(next)
			if err != nil {
				return fmt.Errorf("encode keyring: %w", err)
			}
			if err := s.kv.Set(ctx, keyringKey, data, 0); err != nil {
				return fmt.Errorf("store keyring: %w", err)
			}
			s.logger.Info("challenge: rotated signing key", "key_id", hex.EncodeToString(k.id[:]), "keys", len(next.keys))
			r = next
		}
	}
	s.keys.Store(r)
	return nil
}

// prune drops keys that cannot have signed a live pass: a key stops
// signing when its successor is created, and its passes last at most
// passTTL after that. An hour of slack covers instances that keep signing
// with the old key until their next reload.
func (r *keyring) prune(now time.Time, passTTL time.Duration) {
	const slack = time.Hour
	keep := 1
	for i := 1; i < len(r.keys) && i < maxKeys; i++ {
		successor := r.keys[i-1].created
		if now.Sub(successor) > passTTL+slack {
			break
		}
		keep = i + 1
	}
	r.keys = slices.Clip(r.keys[:keep])
}

// loadKeyFile reads Ed25519 keys from path: one or more PEM blocks (PKCS#8
// "PRIVATE KEY", as written by `openssl genpkey -algorithm ed25519`), or a
// single 32-byte seed, raw or in hex or base64. The first key signs; the
// others only verify, which is how an operator rotates with overlap.
func loadKeyFile(path string) (*keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	r := &keyring{}
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		rest := trimmed
		for len(r.keys) < maxKeys {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			k, err := pemKey(block)
			if err != nil {
				return nil, fmt.Errorf("key file %s: key %d: %w", path, len(r.keys)+1, err)
			}
			r.keys = append(r.keys, k)
		}
		if len(r.keys) == 0 {
			return nil, fmt.Errorf("key file %s: no PEM key", path)
		}
		return r, nil
	}
	seed, err := decodeSeed(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err := newSigningKey(seed, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	r.keys = append(r.keys, k)
	return r, nil
}

func pemKey(block *pem.Block) (signingKey, error) {
	if block.Type != "PRIVATE KEY" {
		return signingKey{}, fmt.Errorf("PEM block %q, want PRIVATE KEY (PKCS#8)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return signingKey{}, fmt.Errorf("parse PKCS#8: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return signingKey{}, fmt.Errorf("key is %T, want Ed25519", key)
	}
	return newSigningKey(priv.Seed(), time.Time{})
}

func decodeSeed(data []byte) ([]byte, error) {
	if len(data) == ed25519.SeedSize {
		return data, nil
	}
	text := string(bytes.TrimSpace(data))
	if b, err := hex.DecodeString(text); err == nil && len(b) == ed25519.SeedSize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == ed25519.SeedSize {
		return b, nil
	}
	return nil, fmt.Errorf("want PEM, or a %d-byte Ed25519 seed raw, in hex or in base64", ed25519.SeedSize)
}
