package session

import (
	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// requestHandlers answers every collab request but submit (submit.go) and
// open (stream.go), by type. A handler returns a refusal, or nil once it
// has answered.
var requestHandlers map[string]func(*Session, *protocol.DocRequest) *docErr

func init() {
	requestHandlers = map[string]func(*Session, *protocol.DocRequest) *docErr{
		protocol.DocTypeList:    (*Session).list,
		protocol.DocTypeCreate:  (*Session).create,
		protocol.DocTypeRename:  (*Session).rename,
		protocol.DocTypeDelete:  (*Session).delete,
		protocol.DocTypeLock:    (*Session).lock,
		protocol.DocTypeOpen:    (*Session).open,
		protocol.DocTypeClose:   (*Session).closeDoc,
		protocol.DocTypeUndo:    (*Session).edit,
		protocol.DocTypeRedo:    (*Session).edit,
		protocol.DocTypeRestore: (*Session).edit,
		protocol.DocTypeName:    (*Session).nameVersion,
		protocol.DocTypeHistory: (*Session).history,
	}
}

func (s *Session) list(req *protocol.DocRequest) *docErr {
	docs, err := s.srv.docList(s.ctx, s.p.Room)
	if err != nil {
		return serviceErr(err)
	}
	s.send(&protocol.DocList{Type: protocol.DocTypeDocs, ReqID: req.ReqID, Docs: docs})
	return nil
}

func (s *Session) create(req *protocol.DocRequest) *docErr {
	if !s.p.CanEdit {
		return refuse(protocol.DocErrForbidden, "creating documents needs the editDocs grant")
	}
	title := req.Title
	if title == "" {
		title = "Untitled"
	}
	meta, err := s.srv.svc.CreateDoc(s.ctx, collab.CreateRequest{Room: s.p.Room, Title: title, Text: req.Text})
	if err != nil {
		return serviceErr(err)
	}
	return s.changed(req, meta.ID)
}

func (s *Session) rename(req *protocol.DocRequest) *docErr {
	if req.Title == "" {
		return refuse(protocol.DocErrBadMessage, "missing title")
	}
	if e := s.mayManage(req.Doc); e != nil {
		return e
	}
	if err := s.srv.svc.RenameDoc(s.ctx, req.Doc, req.Title); err != nil {
		return serviceErr(err)
	}
	return s.changed(req, req.Doc)
}

func (s *Session) delete(req *protocol.DocRequest) *docErr {
	if e := s.mayManage(req.Doc); e != nil {
		return e
	}
	if err := s.srv.svc.DeleteDoc(s.ctx, req.Doc); err != nil {
		return serviceErr(err)
	}
	s.srv.forgetDoc(req.Doc)
	return s.changed(req, req.Doc)
}

func (s *Session) lock(req *protocol.DocRequest) *docErr {
	if e := s.checkDoc(req.Doc); e != nil {
		return e
	}
	if !s.p.IsAdmin {
		return refuse(protocol.DocErrForbidden, "locking documents needs the roomAdmin grant")
	}
	if err := s.srv.svc.SetReadOnly(s.ctx, req.Doc, req.ReadOnly); err != nil {
		return serviceErr(err)
	}
	return s.changed(req, req.Doc)
}

func (s *Session) closeDoc(req *protocol.DocRequest) *docErr {
	if req.Doc == "" {
		return refuse(protocol.DocErrBadMessage, "missing doc")
	}
	s.srv.mu.Lock()
	od := s.docs[req.Doc]
	delete(s.docs, req.Doc)
	s.srv.mu.Unlock()
	if od == nil {
		return refuse(protocol.DocErrNotOpen, "the document is not open")
	}
	s.retire(od)
	s.send(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc})
	s.srv.broadcastPresence(od.room, od.id)
	s.broadcastCursorGone(od.room, od.id)
	return nil
}

// edit runs undo, redo and restore: ops the server makes for the author.
// Their done follows the op in the document's stream.
func (s *Session) edit(req *protocol.DocRequest) *docErr {
	if e := s.checkDoc(req.Doc); e != nil {
		return e
	}
	if !s.p.CanEdit {
		return refuse(protocol.DocErrReadOnly, "editing needs the editDocs grant")
	}
	svc, who := s.srv.svc, s.p.Identity
	var ack collab.Ack
	var err error
	switch {
	case req.Type == protocol.DocTypeUndo:
		ack, err = svc.Undo(s.ctx, req.Doc, who)
	case req.Type == protocol.DocTypeRedo:
		ack, err = svc.Redo(s.ctx, req.Doc, who)
	case req.Name != "":
		ack, err = svc.RestoreVersion(s.ctx, req.Doc, who, req.Name)
	case req.Rev != nil:
		ack, err = svc.RestoreRevision(s.ctx, req.Doc, who, *req.Rev)
	default:
		return refuse(protocol.DocErrBadMessage, "restore needs a name or a rev")
	}
	if err != nil {
		return serviceErr(err)
	}
	s.doneAfter(req.Doc, ack.Rev, mustEncode(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc, Rev: ack.Rev}))
	return nil
}

func (s *Session) nameVersion(req *protocol.DocRequest) *docErr {
	if req.Name == "" {
		return refuse(protocol.DocErrBadMessage, "missing name")
	}
	if e := s.checkDoc(req.Doc); e != nil {
		return e
	}
	if !s.p.CanEdit {
		return refuse(protocol.DocErrForbidden, "naming versions needs the editDocs grant")
	}
	rev := int64(-1)
	if req.Rev != nil {
		rev = *req.Rev
	}
	v, err := s.srv.svc.NameVersion(s.ctx, req.Doc, req.Name, s.p.Identity, rev)
	if err != nil {
		return serviceErr(err)
	}
	s.send(&protocol.DocDone{Type: protocol.DocTypeDone, ReqID: req.ReqID, Doc: req.Doc, Rev: v.Rev})
	return nil
}

func (s *Session) history(req *protocol.DocRequest) *docErr {
	if e := s.checkDoc(req.Doc); e != nil {
		return e
	}
	versions, err := s.srv.svc.Versions(s.ctx, req.Doc)
	if err != nil {
		return serviceErr(err)
	}
	snaps, err := s.srv.svc.Snapshots(s.ctx, req.Doc)
	if err != nil {
		return serviceErr(err)
	}
	out := &protocol.DocHistory{Type: protocol.DocTypeHistoryR, ReqID: req.ReqID, Doc: req.Doc,
		Versions: []protocol.DocVersion{}, Snapshots: []protocol.DocVersion{}}
	for _, v := range versions {
		out.Versions = append(out.Versions, protocol.DocVersion{Name: v.Name, Rev: v.Rev, Author: v.Author, Created: rfc3339(v.Time)})
	}
	for _, sn := range snaps {
		out.Snapshots = append(out.Snapshots, protocol.DocVersion{Rev: sn.Rev, Created: rfc3339(sn.Time)})
	}
	s.send(out)
	return nil
}

// mayManage checks a rename or delete.
func (s *Session) mayManage(doc string) *docErr {
	if e := s.checkDoc(doc); e != nil {
		return e
	}
	if !s.p.CanEdit {
		return refuse(protocol.DocErrForbidden, "managing documents needs the editDocs grant")
	}
	return nil
}

// changed tells the room about a changed document list.
func (s *Session) changed(req *protocol.DocRequest, doc string) *docErr {
	if err := s.srv.broadcastDocs(s.ctx, s.p.Room, s, req.ReqID, doc); err != nil {
		return serviceErr(err)
	}
	return nil
}
