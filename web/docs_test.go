package web_test

// The document tests against the real server's data-channel transport
// (package datachannel); bodies in docs_e2e_test.go.

import "testing"

func realDocsEnv(t *testing.T, room string) docsEnv {
	srv := startDocsServer(t)
	return docsEnv{pageURL: srv.URL() + "/", room: room}
}

// TestDocsConcurrentTyping: see testDocsConcurrentTyping.
func TestDocsConcurrentTyping(t *testing.T) {
	testDocsConcurrentTyping(t, realDocsEnv(t, "docs"))
}

// TestDocsLargeDocument: see testDocsLargeDocument.
func TestDocsLargeDocument(t *testing.T) {
	testDocsLargeDocument(t, realDocsEnv(t, "docs"))
}

// TestDocsReadOnly: see testDocsReadOnly.
func TestDocsReadOnly(t *testing.T) {
	testDocsReadOnly(t, realDocsEnv(t, "docs"))
}

// TestDocsListAndHistory: see testDocsListAndHistory.
func TestDocsListAndHistory(t *testing.T) {
	testDocsListAndHistory(t, realDocsEnv(t, "docs"))
}

// TestDocsRejoin: see testDocsRejoin.
func TestDocsRejoin(t *testing.T) {
	testDocsRejoin(t, realDocsEnv(t, "docs"), false)
}

// TestDocsRejoinResubmits: see testDocsRejoin; the page loses a submit,
// then an ack, before each re-join (docs_loss_test.go).
func TestDocsRejoinResubmits(t *testing.T) {
	testDocsRejoin(t, realDocsEnv(t, "docs"), true)
}

// TestDocsComposing: see testDocsComposing.
func TestDocsComposing(t *testing.T) {
	testDocsComposing(t, realDocsEnv(t, "docs"))
}
