package rolegate

import (
	"github.com/rolegate/rolegate/accounts"
	"github.com/rolegate/rolegate/migrate"
)

// SchemaHooks returns the Go code that belongs to Schema's steps, for
// migrate.Apply: step 3 gives existing accounts their canonical email.
func SchemaHooks() migrate.Hooks {
	return migrate.Hooks{3: accounts.AssignCanonicalEmails}
}
