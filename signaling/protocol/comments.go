package protocol

// Comment threads on the collab channel: a thread is anchored to a range
// of a document [Start, End) in code points at revision Rev, and moves
// with every op as another participant's cursor does. The server sends a
// document's threads after each opened, and every changed thread to
// everyone who has the document open.
const (
	// client -> server
	DocTypeCommentCreate  = "commentCreate"  // CommentRequest{Doc, Rev, Start, End, Text}
	DocTypeCommentReply   = "commentReply"   // CommentRequest{Doc, Thread, Text}
	DocTypeCommentEdit    = "commentEdit"    // CommentRequest{Doc, Thread, Comment, Text}: your own comment
	DocTypeCommentResolve = "commentResolve" // CommentRequest{Doc, Thread, Resolved}

	// server -> client
	DocTypeComments = "comments" // CommentList: a document's threads, after opened
	DocTypeThread   = "thread"   // ThreadUpdate: a thread made or changed; ReqID for its requester
)

// Comment error codes (DocError.Code), beside the documents' codes.
const (
	DocErrLimit       = "limit"        // a comment too long, or too many threads or comments
	DocErrRateLimited = "rate_limited" // comment requests faster than the server allows
)

// CommentRequest is every comment request.
type CommentRequest struct {
	Type     string `json:"type"`
	ReqID    string `json:"reqId,omitempty"`
	Doc      string `json:"doc"`
	Rev      *int64 `json:"rev,omitempty"`
	Start    *int   `json:"start,omitempty"`
	End      *int   `json:"end,omitempty"`
	Thread   string `json:"thread,omitempty"`
	Comment  string `json:"comment,omitempty"`
	Text     string `json:"text,omitempty"`
	Resolved bool   `json:"resolved,omitempty"`
}

// Comment is one message of a thread. Author is the identity, Name the
// display name; times are RFC 3339.
type Comment struct {
	ID      string `json:"id"`
	Author  string `json:"author"`
	Name    string `json:"name"`
	Text    string `json:"text"`
	Created string `json:"created"`
	Edited  string `json:"edited,omitempty"`
}

// CommentThread is a thread with its range at revision Rev.
type CommentThread struct {
	ID       string    `json:"id"`
	Rev      int64     `json:"rev"`
	Start    int       `json:"start"`
	End      int       `json:"end"`
	Resolved bool      `json:"resolved,omitempty"`
	Created  string    `json:"created"`
	Comments []Comment `json:"comments"`
}

// CommentList is a document's threads.
type CommentList struct {
	Type    string          `json:"type"`
	Doc     string          `json:"doc"`
	Threads []CommentThread `json:"threads"`
}

// ThreadUpdate carries one thread as it is now.
type ThreadUpdate struct {
	Type   string        `json:"type"`
	ReqID  string        `json:"reqId,omitempty"`
	Doc    string        `json:"doc"`
	Thread CommentThread `json:"thread"`
}
