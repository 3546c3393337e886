package sdktest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// BigText is size bytes of mixed text (quotes, markup, accents, emoji,
// CJK, tabs) in lines, cut on a rune boundary.
func BigText(size int) string {
	line := "\"Quoted\" <b>Ünïcödé</b> line with emoji 🎉, CJK 文字 and a tab\t.\n"
	return strings.ToValidUTF8(strings.Repeat(line, size/len(line)+1)[:size], "")
}

// TypeAtTop inserts "[n]" at the start of doc every interval until the
// returned stop is called; stop waits and returns how many were typed.
// An insert that fails fails the test.
func TypeAtTop(t testing.TB, doc *sdk.Document, every time.Duration) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	typed := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
			}
			if err := doc.Insert(0, fmt.Sprintf("[%d]", typed)); err != nil {
				t.Error(err)
				return
			}
			typed++
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		return typed
	}
}
