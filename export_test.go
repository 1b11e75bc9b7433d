package ext4pack

import "github.com/ext4pack/ext4pack/imagesrc"

// SetFetchTune adjusts the options of every registry fetch until the
// function it returns is called: the tests fetch small images in small
// pieces, with short waits.
func SetFetchTune(f func(*imagesrc.Options)) (restore func()) {
	old := fetchTune
	fetchTune = f
	return func() { fetchTune = old }
}
