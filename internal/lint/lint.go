// Package lint holds repository-wide tests that keep the code base honest: every package has a package
// comment, and dependencies point the way docs/architecture.md says (registry imports no other package
// of ours; nothing imports cmd/ or e2e/; the data plane does not import the stream service).
package lint
