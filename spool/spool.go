// Package spool holds a stream that is written ahead of its reading:
// in memory up to a cap, then, given a directory, in a temporary file
// there, read back in order. One goroutine writes, another reads.
//
// ext4pack inflates image layers ahead of their turn into spools, so that
// a later layer decompresses on another core while an earlier one is
// built, without holding the later one in memory (SPEC "Fetching, the
// blob cache and faults").
//
// The temporary file is unlinked as soon as it is made, where the system
// allows it (not Windows): the data lives only as long as the open file,
// so nothing is left behind on failure, cancellation or a kill, not even
// by a process that never gets to Close.
package spool

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
)

// ErrClosed is returned to the writer once the reader has closed the
// spool.
var ErrClosed = errors.New("spool: closed by its reader")

// Spool is a stream buffer between one writer and one reader.
type Spool struct {
	mu   sync.Mutex
	cond sync.Cond

	memCap  int64
	fileCap int64  // the most the file holds unread; then the writer waits
	dir     string // "": no file, the writer waits for room instead

	chunks   [][]byte // in memory, read first, in order
	memBytes int64
	free     [][]byte // chunks read, for the writer to reuse: no garbage a chunk

	// Once the memory is full, every later byte goes to the file:
	// the reader reads the chunks, then the file from fr to fw.
	file   *os.File
	name   string // the file's name, while it still has one (Windows)
	onDisk bool
	fw, fr int64

	wdone  bool  // the writer is done
	werr   error // and why: io.EOF when it finished
	closed bool  // the reader is gone
	ferr   error // the file's own error, for both sides
}

// New returns a spool holding up to memCap bytes in memory. Beyond that
// it writes to a temporary file in dir, up to fileCap bytes not yet read;
// with dir "" (or fileCap 0), and beyond fileCap, the writer waits until
// the reader makes room instead. A bound on the file keeps a stream that
// decompresses to far more than it should (a bomb) from filling the disk
// before its reader gets to it.
func New(memCap, fileCap int64, dir string) *Spool {
	if fileCap <= 0 {
		dir = ""
	}
	s := &Spool{memCap: memCap, fileCap: fileCap, dir: dir}
	s.cond.L = &s.mu
	return s
}

// Write copies p into the spool. It blocks only when the spool is full:
// its memory, and its file if it has one.
func (s *Spool) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	for {
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, ErrClosed
		case s.ferr != nil:
			s.mu.Unlock()
			return 0, s.ferr
		case !s.onDisk && (s.memBytes+int64(len(p)) <= s.memCap || s.memBytes == 0):
			var c []byte
			if n := len(s.free); n > 0 && cap(s.free[n-1]) >= len(p) {
				c, s.free = s.free[n-1][:len(p)], s.free[:n-1]
			} else {
				c = make([]byte, len(p))
			}
			copy(c, p)
			s.chunks = append(s.chunks, c)
			s.memBytes += int64(len(p))
			s.cond.Broadcast()
			s.mu.Unlock()
			return len(p), nil
		case !s.onDisk && s.dir == "":
			s.cond.Wait()
			continue
		case !s.onDisk:
			if err := s.createFile(); err != nil {
				s.ferr = err
				s.cond.Broadcast()
				s.mu.Unlock()
				return 0, err
			}
			s.onDisk = true
		case s.fw-s.fr+int64(len(p)) > s.fileCap && s.fw > s.fr:
			s.cond.Wait()
			continue
		}
		break
	}
	// Only this writer moves fw, and the reader reads below it: the
	// write needs no lock.
	f, at := s.file, s.fw
	s.mu.Unlock()
	n, err := f.WriteAt(p, at)
	s.mu.Lock()
	s.fw += int64(n)
	if err != nil && s.ferr == nil {
		s.ferr = err
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	return n, err
}

// createFile makes the temporary file, and unlinks it at once where an
// open file can lose its name.
func (s *Spool) createFile() error {
	f, err := os.CreateTemp(s.dir, "ext4pack-spool-*")
	if err != nil {
		return err
	}
	s.file, s.name = f, f.Name()
	if runtime.GOOS != "windows" {
		if err := os.Remove(s.name); err != nil {
			f.Close()
			return err
		}
		s.name = ""
	}
	return nil
}

// CloseWrite ends the stream: the reader gets err after the bytes
// written, or io.EOF when err is nil.
func (s *Spool) CloseWrite(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = io.EOF
	}
	if !s.wdone {
		s.wdone, s.werr = true, err
	}
	s.cond.Broadcast()
}

// Read reads the stream in order, waiting for the writer when it has
// caught up with it.
func (s *Spool) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.closed:
			return 0, ErrClosed
		case len(s.chunks) > 0:
			c := s.chunks[0]
			n := copy(p, c)
			if n == len(c) {
				if len(s.free) < 8 {
					s.free = append(s.free, c[:0:cap(c)])
				}
				s.chunks[0] = nil
				s.chunks = s.chunks[1:]
			} else {
				s.chunks[0] = c[n:]
			}
			s.memBytes -= int64(n)
			s.cond.Broadcast()
			return n, nil
		case s.fr < s.fw:
			f, at := s.file, s.fr
			n := int(min(int64(len(p)), s.fw-s.fr))
			s.mu.Unlock()
			n, err := f.ReadAt(p[:n], at)
			s.mu.Lock()
			s.fr += int64(n)
			s.cond.Broadcast() // room in the file for a writer at its cap
			if err != nil && !(err == io.EOF && n > 0) {
				return n, err
			}
			return n, nil
		case s.ferr != nil:
			return 0, s.ferr
		case s.wdone:
			return 0, s.werr
		}
		s.cond.Wait()
	}
}

// Spilled is how many bytes went to the file.
func (s *Spool) Spilled() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fw
}

// Close releases the spool: its memory, and its file, closed (and
// removed where it still has a name). A writer still writing gets
// ErrClosed. Close is the reader's to call, once.
func (s *Spool) Close() error {
	s.mu.Lock()
	s.closed = true
	s.chunks, s.memBytes, s.free = nil, 0, nil
	f, name := s.file, s.name
	s.file, s.name = nil, ""
	s.cond.Broadcast()
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f.Close()
	if name != "" {
		err = errors.Join(err, os.Remove(name))
	}
	return err
}
