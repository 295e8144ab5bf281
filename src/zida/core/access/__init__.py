"""Access: app credentials, access tokens, scopes, the org-level token, app actors."""
