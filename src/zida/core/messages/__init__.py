"""Work notifications: sends to users' inboxes (actions, queries), and the notifications of approvals."""
