// Package disttest holds the test of `make dist`, the release build: it
// runs the Makefile as a user would, from two copies of the source tree,
// and checks that both give the same bytes and that the binaries are what
// SPEC "CLI" asks of `ext4pack version`. It has no code of its own.
package disttest
