package forge

import (
	"context"
	"fmt"
	"strings"
)

// UpsertComment keeps one "sticky" comment on a pull request: the first
// comment whose body contains marker is edited to body, or, when there is
// none, body is posted. marker is put at the top of body when body does
// not hold it, so the next run finds the comment again and never posts a
// second one. created says whether a new comment was posted.
func UpsertComment(ctx context.Context, f Forge, number int64, marker, body string) (c *Comment, created bool, err error) {
	if strings.TrimSpace(marker) == "" {
		return nil, false, fmt.Errorf("sticky comment: empty marker")
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	comments, err := f.ListComments(ctx, number)
	if err != nil {
		return nil, false, err
	}
	for _, old := range comments {
		if !strings.Contains(old.Body, marker) {
			continue
		}
		if old.Body == body {
			return &old, false, nil
		}
		c, err := f.EditComment(ctx, old.ID, body)
		return c, false, err
	}
	c, err = f.CreateComment(ctx, number, body)
	return c, err == nil, err
}
