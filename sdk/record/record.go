// Package record writes every track a bot receives to disk, one file per
// track and publisher, in formats standard tools play: Opus in Ogg, VP8,
// VP9 and AV1 in IVF, H.264 as an Annex B byte stream. A manifest.json
// beside them says who published what, when, and for how long.
//
// It uses only the public SDK: hand Recorder.OnTrack to sdk.Join, and call
// Close after the room has been left.
//
//	rec, err := record.New("out", record.Options{})
//	room, err := sdk.Join(ctx, url, token, sdk.Options{OnTrack: rec.OnTrack})
//	<-ctx.Done()
//	room.Leave()
//	err = rec.Close() // finishes the files and writes the manifest
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/huddle-rtc/huddle/sdk"
)

// ManifestFile is the manifest's name inside the output directory.
const ManifestFile = "manifest.json"

// Manifest describes a recording.
type Manifest struct {
	Room    string    `json:"room,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Tracks  []Track   `json:"tracks"`
}

// Track is one recorded file.
type Track struct {
	File          string    `json:"file"` // relative to the manifest
	ParticipantID string    `json:"participantId"`
	Identity      string    `json:"identity"`
	Name          string    `json:"name,omitempty"`
	TrackID       string    `json:"trackId"`
	Kind          string    `json:"kind"`
	Source        string    `json:"source"`
	Codec         string    `json:"codec"`
	Started       time.Time `json:"started"`         // when the first packet was written
	Ended         time.Time `json:"ended,omitzero"`  // when the track ended or the recording stopped
	Frames        int       `json:"frames"`          // video frames or audio packets written
	DurationMS    int64     `json:"durationMs"`      // media time from the first frame to the last
	Error         string    `json:"error,omitempty"` // why the file stopped early
}

// Options tune a Recorder. Every field is optional.
type Options struct {
	Logger *slog.Logger
	Room   string // written into the manifest
	// KeyframeRetry is how often a video track that has not yet sent a
	// keyframe is asked again [1s].
	KeyframeRetry time.Duration
	// ManifestInterval is how often the manifest on disk is brought up to
	// date while recording [2s], so that a killed recorder leaves one that
	// is at most this old (the files themselves are written as packets
	// arrive).
	ManifestInterval time.Duration
}

// Recorder writes tracks into one directory.
type Recorder struct {
	dir  string
	opts Options
	log  *slog.Logger

	stop     chan struct{} // ends the manifest ticker
	ticker   sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup // one per track being written
	manifest Manifest
	names    map[string]int
}

// reorderLimit bounds the packets held per track while waiting for a
// repair: about a second of 1 Mbit/s video.
const reorderLimit = 128

// New makes the directory if needed. It refuses a directory that already
// holds a manifest, so that a second recording never mixes with the first.
func New(dir string, opts Options) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("recording directory %s already holds a recording (%s): choose another --out", dir, ManifestFile)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeyframeRetry <= 0 {
		opts.KeyframeRetry = time.Second
	}
	if opts.ManifestInterval <= 0 {
		opts.ManifestInterval = 2 * time.Second
	}
	r := &Recorder{dir: dir, opts: opts, log: opts.Logger, names: map[string]int{}, stop: make(chan struct{}),
		manifest: Manifest{Room: opts.Room, Started: time.Now().UTC(), Tracks: []Track{}}}
	if err := r.writeManifest(); err != nil {
		return nil, err
	}
	r.ticker.Add(1)
	go r.refreshManifest()
	return r, nil
}

// refreshManifest rewrites the manifest every ManifestInterval until Close.
func (r *Recorder) refreshManifest() {
	defer r.ticker.Done()
	t := time.NewTicker(r.opts.ManifestInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.writeManifest(); err != nil {
				r.log.Warn("write manifest", "err", err)
			}
		}
	}
}

// OnTrack records one remote track until it ends; pass it as
// sdk.Options.OnTrack. Tracks that arrive after Close are read and dropped.
func (r *Recorder) OnTrack(t *sdk.RemoteTrack) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		drain(t)
		return
	}
	r.wg.Add(1)
	defer r.wg.Done()
	entry, path, idx := r.newEntryLocked(t)
	r.mu.Unlock()

	if err := r.record(t, path, idx); err != nil {
		r.log.Warn("recording stopped early", "file", entry.File, "err", err)
		r.update(idx, func(e *Track) { e.Error = err.Error() })
		drain(t)
	}
	if err := r.writeManifest(); err != nil {
		r.log.Warn("write manifest", "err", err)
	}
}

// newEntryLocked names the track's file and adds it to the manifest.
func (r *Recorder) newEntryLocked(t *sdk.RemoteTrack) (Track, string, int) {
	ext, err := Extension(t.Track.Codec().MimeType)
	if err != nil {
		ext = ".unsupported"
	}
	base := safeName(t.Participant.Identity) + "-" + safeName(t.Info.Source)
	if t.Info.Source == "" {
		base = safeName(t.Participant.Identity) + "-" + t.Track.Kind().String()
	}
	r.names[base]++
	file := fmt.Sprintf("%s-%d%s", base, r.names[base], ext)
	e := Track{
		File: file, ParticipantID: t.Participant.ID, Identity: t.Participant.Identity, Name: t.Participant.Name,
		TrackID: t.Info.ID, Kind: t.Track.Kind().String(), Source: t.Info.Source, Codec: t.Track.Codec().MimeType,
	}
	r.manifest.Tracks = append(r.manifest.Tracks, e)
	return e, filepath.Join(r.dir, file), len(r.manifest.Tracks) - 1
}

// record is one track's loop: read, reorder, write; it finishes the file
// when the track ends (its publisher left, or the room was left).
func (r *Recorder) record(t *sdk.RemoteTrack, path string, idx int) (err error) {
	codec := t.Track.Codec()
	w, err := openWriter(path, codec.MimeType, codec.Channels)
	if err != nil {
		return err
	}
	f := &trackFile{w: w, mime: codec.MimeType, audio: t.Track.Kind().String() == "audio", clock: codec.ClockRate}
	if f.clock == 0 {
		f.clock = 90000
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("finish %s: %w", path, cerr)
		}
		r.update(idx, func(e *Track) { e.Ended = time.Now().UTC() })
	}()
	if !f.audio {
		_ = t.RequestKeyframe()
	}
	asked := time.Now()
	order := newReorder(reorderLimit)
	out := func(p *rtp.Packet) error {
		wasStarted := f.started
		if err := f.write(p); err != nil {
			return err
		}
		if !wasStarted && f.started {
			r.update(idx, func(e *Track) { e.Started = time.Now().UTC() })
		}
		return nil
	}
	buf := make([]byte, 1600)
	for {
		n, _, rerr := t.Track.Read(buf)
		if rerr != nil {
			break // the track ended
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			continue
		}
		if err := order.push(p, out); err != nil {
			return err
		}
		if !f.started && time.Since(asked) > r.opts.KeyframeRetry {
			_ = t.RequestKeyframe()
			asked = time.Now()
		}
		r.update(idx, func(e *Track) { e.Frames, e.DurationMS = f.frames, f.elapsed*1000/int64(f.clock) })
	}
	if err := order.flush(out); err != nil {
		return err
	}
	r.update(idx, func(e *Track) { e.Frames, e.DurationMS = f.frames, f.elapsed*1000/int64(f.clock) })
	return nil
}

func (r *Recorder) update(idx int, change func(*Track)) {
	r.mu.Lock()
	change(&r.manifest.Tracks[idx])
	r.mu.Unlock()
}

// Manifest is a copy of the recording's manifest as it is now.
func (r *Recorder) Manifest() Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.manifest
	m.Tracks = append([]Track(nil), m.Tracks...)
	return m
}

// Close waits for every track to end, which happens once the room has
// been left, then writes the final manifest. Call it after Room.Leave.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("recorder already closed")
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	r.ticker.Wait()
	r.wg.Wait()
	r.mu.Lock()
	r.manifest.Ended = time.Now().UTC()
	r.mu.Unlock()
	return r.writeManifest()
}

// writeManifest replaces the manifest atomically, so that a reader (or a
// crash) never sees half of one.
func (r *Recorder) writeManifest() error {
	m := r.Manifest()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	tmp, err := os.CreateTemp(r.dir, ".manifest-*")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	r.mu.Lock() // one rename at a time, so the newest wins
	defer r.mu.Unlock()
	if err := os.Rename(tmp.Name(), filepath.Join(r.dir, ManifestFile)); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// ReadManifest loads a recording's manifest from its directory.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

func safeName(s string) string {
	s = strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			return c
		}
		return '_'
	}, s)
	s = strings.TrimLeft(s, ".")
	if len(s) > 48 {
		s = s[:48]
	}
	if s == "" {
		s = "anonymous"
	}
	return s
}

func drain(t *sdk.RemoteTrack) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Track.Read(buf); err != nil {
			return
		}
	}
}
